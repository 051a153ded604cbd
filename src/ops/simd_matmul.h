// SIMD matmul kernels on quantized blocks (src/ops/simd_matmul.cc, Highway with run-time dispatch): every block
// type, F16 and BF16, bit-identical to ops/dot_reference.h on every target. ops/matmul.cc makes them the default
// kernels. Same signature as MatmulKernel.
#pragma once

#include "ops/matmul.h"
#include "ops/packed_weight.h"

namespace lowbit {

struct ActRow;

bool simd_matmul_supports(DType type);
// Rows the running CPU's generation kernel for `type` takes at once: the tile height its weights are packed in.
int simd_pack_rows(DType type);
void matmul_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);
// How the one-token tiles on AVX-512 open their weights' stream ahead (FarAhead or NearAhead, ops/simd_vectors-inl.h):
// by the CPU's maker, or one of the two where a test sets it, so that both run on any machine. The same bits either
// way. set_stream_ahead returns the setting before.
enum class StreamAhead { kByCpu, kFar, kNear };
StreamAhead set_stream_ahead(StreamAhead policy);
// Where the CPU has AVX-VNNI and AVX2 is the best target it runs (Intel's cores since Alder Lake), the AVX2 kernels
// built with it (ops/simd_matmul_avx_vnni.cc) run in place of the plain ones, with the same bits. set_avx_vnni(false)
// keeps the plain ones, so that tests and benchmarks run both on such a CPU; it returns the setting before.
bool set_avx_vnni(bool allowed);
// Whether a call now would run the AVX-VNNI kernels (for the types they take).
bool avx_vnni_in_use();
// The types the AVX-VNNI kernels take, for one token or a batch; the others run the plain AVX2 ones. Measured on Zen 5
// with the AVX2 target pinned, both alternated in one process on a 2048x256 weight from L2, one token / 64 tokens,
// three runs: IQ4_NL 1.26-1.56x / 1.32-1.37x, Q5_0 1.16-1.18x / 1.16-1.17x, the int4 groups 1.11-1.25x /
// 1.13-1.16x, IQ4_XS 1.07-1.09x / 1.09-1.13x, Q5_1 1.03-1.08x / 1.07-1.09x, Q4_K 1.09-1.17x / 0.94-0.98x (so one
// token only). Left out: Q8_0 0.93-1.07x / 0.90x, Q4_1 0.96-1.04x / 1.07x, Q2_K 0.96x / 1.08-1.11x, Q4_0, Q3_K,
// Q5_K and Q6_K 0.99-1.03x; F16 and BF16, which have no integer dot products (the second build's F16 tile read
// 0.90-0.92x: GCC built the same source otherwise in the smaller file).
constexpr bool avx_vnni_takes(DType type, bool batch = false) {
  switch (type) {
    case DType::Q5_0: case DType::Q5_1: case DType::IQ4_NL: case DType::IQ4_XS: case DType::I4G: return true;
    case DType::Q4_K: return !batch;
    default: return false;
  }
}

// The AVX-VNNI kernels' entry, as Highway's per-target MatmulRows (null off x86).
using MatmulRowsFn = void (*)(DType type, const uint8_t* data, const WeightLayout& w, const ActRow* acts, int64_t n,
                              int64_t nt, int64_t r0, int64_t r1, int64_t n_out, float* y);
MatmulRowsFn avx_vnni_matmul_rows();
// matmul_shared_input (ops/matmul.h) when every weight has a SIMD kernel.
void matmul_simd_shared_input(std::span<const MatmulTarget> targets, const float* x, int64_t n_tokens, int threads);

}  // namespace lowbit
