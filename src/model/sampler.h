// Picking the next token from logits: greedy at temperature 0, else temperature + top-k + top-p with a
// seeded SplitMix64 generator, so the same seed gives the same text on every machine.
#pragma once

#include <cstdint>
#include <span>

namespace lowbit {

struct SamplerOptions {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 40;            // 0: all
  float top_p = 0.95f;       // 1: all
  uint64_t seed = 42;
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& o) : o_(o), state_(o.seed) {}
  int32_t sample(std::span<const float> logits);
  double uniform();  // [0, 1), 53 random bits

 private:
  SamplerOptions o_;
  uint64_t state_;
};

}  // namespace lowbit
