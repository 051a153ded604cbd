// SIMD matmul kernels on quantized blocks (src/ops/simd_matmul.cc, Highway with run-time dispatch): every block
// type, F16 and BF16, bit-identical to ops/dot_reference.h on every target. ops/matmul.cc makes them the default
// kernels. Same signature as MatmulKernel.
#pragma once

#include "ops/matmul.h"
#include "ops/packed_weight.h"

namespace lowbit {

bool simd_matmul_supports(DType type);
// Rows the running CPU's generation kernel for `type` takes at once: the tile height its weights are packed in.
int simd_pack_rows(DType type);
void matmul_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);
// How the one-token tiles on AVX-512 open their weights' stream ahead (FarAhead or NearAhead, ops/simd_vectors-inl.h):
// by the CPU's maker, or one of the two where a test sets it, so that both run on any machine. The same bits either
// way. set_stream_ahead returns the setting before.
enum class StreamAhead { kByCpu, kFar, kNear };
StreamAhead set_stream_ahead(StreamAhead policy);
// matmul_shared_input (ops/matmul.h) when every weight has a SIMD kernel.
void matmul_simd_shared_input(std::span<const MatmulTarget> targets, const float* x, int64_t n_tokens, int threads);

}  // namespace lowbit
