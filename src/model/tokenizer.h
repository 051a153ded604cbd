// Text <-> token ids for a Vocab, giving the ids llama.cpp gives:
//  - "llama": SentencePiece BPE (merge the highest-scoring adjacent pair, byte fallback to <0xXX>),
//  - "gpt2": byte-level BPE (pre-tokenizer split per tokenizer.ggml.pre, GPT-2 byte map, merges by rank).
// Control / user-defined tokens written literally in the text are recognised first (llama.cpp's partitioning).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/pretokenize.h"
#include "model/vocab.h"

namespace lowbit {

class Tokenizer {
 public:
  // Throws Error for an empty vocabulary or a vocabulary model / pre-tokenizer this tokenizer does not implement.
  explicit Tokenizer(Vocab vocab);
  // add_special: BOS/EOS as the vocabulary says (add_bos / add_eos). parse_special: control tokens written in the
  // text ("<|im_start|>") become their ids; user-defined tokens are always recognised, as in llama.cpp.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = false) const;
  // The text of one token: control tokens -> "" (their text when `special`), byte tokens -> the byte,
  // SentencePiece U+2581 -> ' ', byte-level BPE characters -> their bytes.
  std::string token_to_piece(int32_t id, bool special = false) const;
  // Concatenated pieces (SentencePiece's dummy-prefix space stays, as llama.cpp's token_to_piece gives it).
  std::string decode(const std::vector<int32_t>& ids, bool special = false) const;
  // llama2.c's decode: as decode, but a piece right after BOS loses its leading space.
  std::string decode_llama2c(const std::vector<int32_t>& ids) const;
  const Vocab& vocab() const { return vocab_; }

 private:
  bool is_spm() const { return vocab_.model == "llama"; }
  void encode_fragment(std::string_view text, bool first, std::vector<int32_t>& out) const;
  void encode_spm(std::string_view text, std::vector<int32_t>& out) const;
  void encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const;
  int32_t id_of(std::string_view text) const;
  int32_t type_of(int32_t id) const;

  Vocab vocab_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<std::string, int32_t> merge_rank_;  // "a b" -> rank (gpt2)
  std::vector<int32_t> specials_;                         // control / user-defined / unknown, longest text first
  int32_t byte_ids_[256];
  PreSplit split_ = PreSplit::Gpt2;
  bool ignore_merges_ = false;
};

// GPT-2's reversible byte <-> printable-character map used by byte-level BPE vocabularies.
std::string bytes_to_bpe_chars(std::string_view bytes);

}  // namespace lowbit
