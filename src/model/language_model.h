// The one interface evaluation code uses: anything that turns tokens into next-token logits with a KV cache.
// The Llama-family engine implements it; tests implement it with tiny hand-made models.
#pragma once

#include <cstdint>
#include <span>

#include "model/config.h"

namespace lowbit {

class LanguageModel {
 public:
  virtual ~LanguageModel() = default;
  virtual const ModelConfig& config() const = 0;
  int64_t n_vocab() const { return config().n_vocab; }
  // Positions the KV cache holds.
  virtual int64_t n_ctx() const = 0;
  // Runs `tokens` at positions [n_past, n_past + tokens.size()), appending to the KV cache (entries at and past
  // n_past are overwritten). Writes logits to `logits`: tokens.size() * n_vocab floats if all_logits, else the
  // last token's n_vocab floats. Throws Error if n_past + tokens.size() > n_ctx() or a token id is out of range.
  virtual void eval(std::span<const int32_t> tokens, int64_t n_past, float* logits, bool all_logits) = 0;
};

}  // namespace lowbit
