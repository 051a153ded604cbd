// One matrix multiplication interface for every weight type: y[t][o] = dot(W row o, x[t]) for a weight
// tensor W with ne = {n_in, n_out} (rows are output channels, as GGUF stores them) and float activations.
// The generic path dequantizes a block of weight rows once and reuses it for every token; a type can register
// a fused kernel (SIMD on the quantized blocks) without the model code changing. Each output is computed by
// one thread in a fixed order, so results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace lowbit {

using MatmulKernel = void (*)(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);

// Replaces the kernel for weights of `type` (nullptr restores the default: the SIMD kernel, else the generic path).
void register_matmul_kernel(DType type, MatmulKernel kernel);

// x: n_tokens rows of ne[0] floats; y: n_tokens rows of ne[1] floats.
// round_activations: as llama.cpp does (see activation_type; registered kernels are used only then); false:
// the exact product of the stored weights with the float activations.
void matmul(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads, bool round_activations = true);

// Several weights times the same activations (Q, K and V; gate and up): with the SIMD kernels the activations are
// quantized once and the rows of all the weights go through one parallel pass, so the threads meet once rather
// than once per weight (each meeting costs a scheduler slice when a thread is descheduled). Same results as one
// matmul() per weight.
struct MatmulTarget {
  const Tensor* w;
  float* y;  // n_tokens rows of w's ne[1] floats
};
void matmul_shared_input(std::span<const MatmulTarget> targets, const float* x, int64_t n_tokens, int threads,
                         bool round_activations = true);

// The generic dequantize-then-dot path (also the reference fused kernels are tested against).
void matmul_generic(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);
// Dequantize-then-dot with the activations as given (no rounding).
void matmul_exact(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);

// The type llama.cpp (ggml's CPU backend) converts activations to before a dot product with weights of type
// `w`: Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants and IQ4_XS, F16/BF16 for
// those, F32 otherwise. The generic path rounds activations through it, so lowbit's logits carry the same
// activation-quantization error as llama.cpp's and figures such as KLD compare like for like.
DType activation_type(DType w);

// Dequantizes row `row` of a 2-D tensor into `out` (ne[0] floats, in the original column order).
void dequantize_row(const Tensor& w, int64_t row, float* out);
// The activations in w's stored column order (w.input_order set): x[t][input_order[k]] for every k.
std::vector<float> gather_input(const Tensor& w, const float* x, int64_t n_tokens);

}  // namespace lowbit
