// SIMD matmul kernels on quantized blocks (src/ops/simd_matmul.cc, Highway with run-time dispatch): every block
// type, F16 and BF16, bit-identical to ops/dot_reference.h on every target. ops/matmul.cc makes them the default
// kernels. Same signature as MatmulKernel.
#pragma once

#include <string>

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
// Whether this CPU can run the AVX-VNNI kernels: AVX-VNNI and GFNI (V::ByteField's affine maps in that pass; every
// CPU with AVX-VNNI so far has GFNI too).
bool cpu_runs_avx_vnni_kernels();
// Whether a call now would run the AVX-VNNI kernels (for the types they take).
bool avx_vnni_in_use();
// The types the AVX-VNNI kernels take, for one token or a batch; the others run the plain AVX2 ones. Measured on Zen 5
// with the AVX2 target pinned, both alternated in one process on a 2048x256 weight from L2, one token / 64 tokens,
// in the build as it is (which tiles a file holds moves GCC's code, so each list was measured in its own build):
// IQ4_NL 1.28-1.57x / 1.35-1.37x, Q5_0 1.17x / 1.17x, the int4 groups 1.11-1.23x / 1.14-1.16x, IQ4_XS 1.07x /
// 1.10-1.12x, Q5_1 1.05-1.07x / 1.11-1.12x; one token only Q4_K 1.09-1.12x (batches 0.94-0.98x); batches only
// Q4_1 1.15-1.16x, Q5_K 1.11-1.12x, Q2_K 1.06-1.08x (one token 0.95-1.05x, 0.98-1.05x, 0.96-1.01x). Left out:
// Q8_0 0.93-1.08x / 0.90-1.00x, Q4_0, Q3_K and Q6_K 0.98-1.05x; F16 and BF16, which have no integer dot products
// (a build of the F16 tile in the second file read 0.90-0.92x: GCC built the same source otherwise there).
// Q5_0 and Q5_1 were measured again once packed as w and v (ops/packed_weight.h), by lowbit_bench's AVX2 against
// AVX2_VNNI (4096x4096, two rounds): Q5_0 1.16-1.19x / 1.11-1.13x, Q5_1 1.04-1.07x / 1.11-1.14x.
// With GFNI's affine maps in that pass (V::ByteField), against the pass without them (4096x4096 in L3, one token, best
// of four alternated rounds): Q5_K 34.6 -> 40.9 GB/s (batches 58.9 -> 60.3), now taken for one token too; Q3_K 24.7 ->
// 26.7, taken for one token (batches level: 33.4 against 33.0); Q5_0 28.7 -> 32.5, Q5_1 31.3 -> 35.7 (batches level);
// Q2_K keeps shifts (Q2KLanes).
constexpr bool avx_vnni_takes(DType type, bool batch = false) {
  switch (type) {
    case DType::Q5_0: case DType::Q5_1: case DType::IQ4_NL: case DType::IQ4_XS: case DType::I4G: case DType::Q5_K:
      return true;
    case DType::Q3_K: case DType::Q4_K: return !batch;
    case DType::Q4_1: case DType::Q2_K: return batch;
    default: return false;
  }
}

// The AVX-VNNI kernels' entry, as Highway's per-target MatmulRows (null off x86).
using MatmulRowsFn = void (*)(DType type, const uint8_t* data, const WeightLayout& w, const ActRow* acts, int64_t n,
                              int64_t nt, int64_t r0, int64_t r1, int64_t n_out, float* y);
MatmulRowsFn avx_vnni_matmul_rows();
// Runs every kernel on one Highway target from now on, by its name (SSE4, AVX2, AVX3, AVX3_DL; AVX2_VNNI for AVX2
// with the AVX-VNNI kernels), as a CPU with no more than that would: for measuring what such a CPU gets. Throws
// Error at `where` (the setting that named it), naming the targets this build and CPU run, for any other name. (The
// lowbit command reads LOWBIT_SIMD_TARGET, lowbit_bench LOWBIT_BENCH_TARGET.)
void pin_simd_target(const std::string& name, std::string_view where);
// out[i] = fmaf(a[i], b[i], c[i]) by the running pass's V::Fma (ops/simd_vectors-inl.h), the std::fma of the reference
// wherever it has none: for tests of the SSE4 pass, which rounds the tiles' FMAs in software.
void simd_fma(const float* a, const float* b, const float* c, float* out, size_t n);
// out[i] = the fp16 bits h[i] as float by the running pass's V::LanesHalfF (F16C, or integer steps on SSE4), and
// f16_to_f32 wherever it has none: for tests.
void simd_half_to_float(const uint16_t* h, float* out, size_t n);
// matmul_shared_input (ops/matmul.h) when every weight has a SIMD kernel.
void matmul_simd_shared_input(std::span<const MatmulTarget> targets, const float* x, int64_t n_tokens, int threads);

}  // namespace lowbit
