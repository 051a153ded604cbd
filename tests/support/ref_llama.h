// An independent, deliberately plain double-precision Llama-family forward pass (no KV cache: recomputes the
// whole sequence), used to check the engine. It reads weights through tensor_to_f32, so it sees exactly the
// values the stored type holds.
#pragma once

#include <cstdint>
#include <vector>

#include "io/model_source.h"

namespace lowbit::testing {

// Logits for every position of `tokens`: tokens.size() rows of n_vocab.
std::vector<std::vector<double>> reference_llama_logits(const ModelSource& source, const std::vector<int32_t>& tokens);

// Llama 3 rope frequency factors (one per rotated pair), written from the Llama 3.1 reference formula.
std::vector<double> reference_llama3_factors(const ModelConfig& config);

}  // namespace lowbit::testing
