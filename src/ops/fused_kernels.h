// Fused kernels that work on quantized blocks directly; src/ops/matmul.cc registers them as the default
// kernels of their weight types. Each is tested against matmul_generic.
#pragma once

#include "ops/matmul.h"

namespace lowbit {

struct BlockQ8_0;
// An activation row (n a multiple of 32) to Q8_0 exactly as ggml's x86 CPU backend quantizes it.
void quantize_activation_q8_0(const float* x, BlockQ8_0* out, int64_t n);
struct BlockQ8_1;
// The same rounding plus s = d * sum(q) with the unrounded d, as ggml's x86 quantize_row_q8_1.
void quantize_activation_q8_1(const float* x, BlockQ8_1* out, int64_t n);

void matmul_q4_0_q8_0(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);

}  // namespace lowbit
