// SIMD matmul kernels on quantized blocks (src/ops/simd_matmul.cc, Highway with run-time dispatch), registered by
// src/ops/matmul.cc as the default kernels of their weight types. Same signature as MatmulKernel.
#pragma once

#include "ops/matmul.h"

namespace lowbit {

void matmul_q8_0_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);
void matmul_q4_0_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);
void matmul_q4_1_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);
void matmul_q5_0_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);
void matmul_q5_1_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);
void matmul_iq4_nl_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);
void matmul_f16_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);
void matmul_bf16_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);
void matmul_q4_k_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);
void matmul_q5_k_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);
void matmul_q6_k_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);

}  // namespace lowbit
