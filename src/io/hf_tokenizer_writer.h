// Tokenizer files for an exported Hugging Face folder, from a GGUF-style vocabulary: a SentencePiece
// tokenizer.model for "llama" vocabularies, a tokenizer.json for byte-level BPE ("gpt2") ones, and
// tokenizer_config.json with the special tokens.
#pragma once

#include <string>
#include <vector>

#include "model/vocab.h"

namespace lowbit {

// Returns the paths written (none for an empty vocabulary). Throws Error for a vocabulary model it cannot write.
std::vector<std::string> write_hf_tokenizer(const Vocab& vocab, const std::string& folder);

// The SentencePiece ModelProto bytes for a "llama" vocabulary (pieces, scores, types, special ids).
std::string sentencepiece_model_proto(const Vocab& vocab);

}  // namespace lowbit
