// The canonical (GGUF-named) tensors a Llama-family model of a given config has, with their shapes. One
// description used to validate loaded models, to synthesise models for tests and to plan sizes.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace lowbit {

// In llama.cpp's converter order: token_embd, per layer attention then FFN, output_norm, output (if untied).
// Types are `weight_type` for 2-D tensors and F32 for norms and biases.
std::vector<TensorInfo> llama_tensor_layout(const ModelConfig& config, DType weight_type = DType::F32);

}  // namespace lowbit
