// A tokenizer vocabulary as GGUF stores it (tokenizer.ggml.*), which is also what every other format is
// translated into: SentencePiece tokenizer.model, HF tokenizer.json, llama2.c tokenizer.bin.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

// GGUF token types (tokenizer.ggml.token_type), as llama.cpp defines them.
enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct Vocab {
  std::string model;                 // tokenizer.ggml.model: "llama" (SentencePiece BPE), "gpt2" (byte-level BPE), "" none
  std::string pre;                   // tokenizer.ggml.pre: "default", "llama-bpe", "qwen2", "gpt-2", ...
  std::vector<std::string> tokens;   // token text (SentencePiece uses U+2581 for spaces, byte-level BPE its byte map)
  std::vector<float> scores;         // empty if the format has none
  std::vector<int32_t> types;        // TokenType values; empty if unknown
  std::vector<std::string> merges;   // "a b" pairs for byte-level BPE
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;      // SentencePiece: prepend U+2581 to the text

  bool empty() const { return tokens.empty(); }
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

}  // namespace lowbit
