// Text <-> token ids for a Vocab. SentencePiece-style BPE ("llama": scores, byte fallback), with llama.cpp's
// merge order so ids equal llama.cpp's.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/vocab.h"

namespace lowbit {

class Tokenizer {
 public:
  // Throws Error for an empty vocabulary or a vocabulary model this tokenizer does not implement.
  explicit Tokenizer(Vocab vocab);
  // add_special: BOS/EOS as the vocabulary says (add_bos / add_eos).
  std::vector<int32_t> encode(std::string_view text, bool add_special) const;
  std::string token_to_piece(int32_t id) const;  // control tokens -> "", byte tokens -> the byte
  std::string decode(const std::vector<int32_t>& ids) const;
  const Vocab& vocab() const { return vocab_; }

 private:
  std::vector<int32_t> encode_spm(std::string_view text) const;
  Vocab vocab_;
  std::unordered_map<std::string, int32_t> ids_;
  int32_t byte_ids_[256];
};

}  // namespace lowbit
