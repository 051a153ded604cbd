// Fused kernels that work on quantized blocks directly; src/ops/matmul.cc registers them as the default
// kernels of their weight types. Each is tested against matmul_generic.
#pragma once

#include "ops/matmul.h"

namespace lowbit {

void matmul_q4_0_q8_0(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);

}  // namespace lowbit
