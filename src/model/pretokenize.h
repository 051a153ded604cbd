// Byte-level BPE pre-tokenizers: the regex splits of tokenizer.ggml.pre, written out by hand over Unicode
// categories (ICU) because std::regex has no \p{L} / \p{N}. Splitting is on the original bytes, so invalid
// UTF-8 passes through as single-byte pieces instead of being lost.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

enum class PreSplit { Gpt2, Default, DigitsGpt2, Llama3, Qwen2, Falcon, DeepseekLlm, DeepseekCoder };

// The splitter for a tokenizer.ggml.pre name; throws Error for names that are not implemented.
PreSplit pre_split_for(const std::string& pre);
// Splits text into the words that BPE merges are applied to; the pieces concatenate back to `text`.
std::vector<std::string_view> pretokenize(std::string_view text, PreSplit kind);

}  // namespace lowbit
