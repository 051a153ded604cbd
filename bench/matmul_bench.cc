// Matrix products through the engine's matmul, single-threaded:
// - *_Reference: the scalar reference kernel (ops/dot_reference.h), *_Simd: the SIMD kernel, same bits;
// - generation (1 token) on a 4096 x 4096 weight that stays in L3, and *_Stream on eight 4096 x 2048 weights
//   used in turn (more than the L3 of the machines here, so the weights come from memory as in a real model);
// - *_Batch64: a prompt batch of 64 tokens.
// Bytes processed = weight bytes read per token, so GB/s compares with the memory bandwidth.
// LOWBIT_BENCH_TARGET=AVX2 (or AVX3, AVX3_DL, SSE4, ...) runs the kernels of that Highway target only.
#include <benchmark/benchmark.h>

#include <hwy/targets.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "algo/int_quant.h"
#include "ops/dot_reference.h"
#include "ops/matmul.h"
#include "ops/packed_weight.h"

namespace lowbit {
namespace {

// GPTQ/AWQ-style 4-bit groups of 128 (engine type I4G), from a random layer.
Tensor random_int4_weight(int64_t n_in, int64_t n_out, int seed) {
  IntQuantConfig cfg;
  QuantizedLinear ql = QuantizedLinear::allocate(n_out, n_in, cfg);
  for (size_t i = 0; i < ql.q.size(); ++i) ql.q[i] = static_cast<uint8_t>((i * 7 + static_cast<size_t>(seed)) % 16);
  for (size_t i = 0; i < ql.scales.size(); ++i) ql.scales[i] = 0.0078125f, ql.zeros[i] = static_cast<float>(i % 16);
  return *engine_tensor(ql, "w");
}

Tensor random_weight(DType type, int64_t n_in, int64_t n_out, int seed) {
  if (type == DType::I4G) return random_int4_weight(n_in, n_out, seed);
  std::vector<float> w(static_cast<size_t>(n_in * n_out));
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.7f * static_cast<float>(i) + static_cast<float>(seed));
  TensorInfo info;
  info.name = "w";
  info.type = type;
  info.n_dims = 2;
  info.ne = {n_in, n_out, 1, 1};
  std::vector<uint8_t> bytes(info.n_bytes());
  quantize_rows(type, w.data(), bytes.data(), n_out, n_in);
  return make_owned_tensor(info, std::move(bytes));
}

// Restricts the kernels to one target if LOWBIT_BENCH_TARGET names one this CPU runs.
const bool kTargetChosen = [] {
  const char* want = std::getenv("LOWBIT_BENCH_TARGET");
  if (!want) return false;
  for (int64_t t : hwy::SupportedAndGeneratedTargets())
    if (std::string(hwy::TargetName(t)) == want) {
      hwy::SetSupportedTargetsForTest(t);
      return true;
    }
  std::fprintf(stderr, "LOWBIT_BENCH_TARGET=%s: not a target this CPU runs\n", want);
  std::exit(2);
}();

enum class Kernel { kReference, kSimd };

void run(benchmark::State& state, DType type, Kernel kernel, int64_t n_tokens, int n_weights) {
  const int64_t n_in = 4096, n_out = n_weights > 1 ? 2048 : 4096;
  std::vector<Tensor> ws;
  // The SIMD kernels read the engine's interleaved layout (ops/packed_weight.h), as the model uses them.
  for (int i = 0; i < n_weights; ++i) {
    Tensor w = random_weight(type, n_in, n_out, i);
    ws.push_back(kernel == Kernel::kSimd ? pack_for_matmul(w) : w);
  }
  std::vector<float> x(static_cast<size_t>(n_in * n_tokens)), y(static_cast<size_t>(n_out * n_tokens));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.3f * static_cast<float>(i));
  size_t next = 0;
  for (auto _ : state) {
    const Tensor& w = ws[next++ % ws.size()];
    if (kernel == Kernel::kSimd) matmul(w, x.data(), n_tokens, y.data(), 1);
    else matmul_reference(w, x.data(), n_tokens, y.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * n_tokens * static_cast<int64_t>(ws[0].info.n_bytes()));
}

#define LOWBIT_MATMUL_BENCH(NAME, TYPE)                                                                     \
  void BM_##NAME##_Reference(benchmark::State& s) { run(s, DType::TYPE, Kernel::kReference, 1, 1); }        \
  void BM_##NAME##_Simd(benchmark::State& s) { run(s, DType::TYPE, Kernel::kSimd, 1, 1); }                  \
  void BM_##NAME##_Simd_Stream(benchmark::State& s) { run(s, DType::TYPE, Kernel::kSimd, 1, 8); }           \
  void BM_##NAME##_Reference_Batch64(benchmark::State& s) { run(s, DType::TYPE, Kernel::kReference, 64, 1); } \
  void BM_##NAME##_Simd_Batch64(benchmark::State& s) { run(s, DType::TYPE, Kernel::kSimd, 64, 1); }         \
  BENCHMARK(BM_##NAME##_Reference)->Unit(benchmark::kMillisecond);                                          \
  BENCHMARK(BM_##NAME##_Simd)->Unit(benchmark::kMillisecond);                                               \
  BENCHMARK(BM_##NAME##_Simd_Stream)->Unit(benchmark::kMillisecond);                                        \
  BENCHMARK(BM_##NAME##_Reference_Batch64)->Unit(benchmark::kMillisecond);                                  \
  BENCHMARK(BM_##NAME##_Simd_Batch64)->Unit(benchmark::kMillisecond);

LOWBIT_MATMUL_BENCH(Q4_0, Q4_0)
LOWBIT_MATMUL_BENCH(Q4_1, Q4_1)
LOWBIT_MATMUL_BENCH(Q5_0, Q5_0)
LOWBIT_MATMUL_BENCH(Q5_1, Q5_1)
LOWBIT_MATMUL_BENCH(Q8_0, Q8_0)
LOWBIT_MATMUL_BENCH(Q2_K, Q2_K)
LOWBIT_MATMUL_BENCH(Q3_K, Q3_K)
LOWBIT_MATMUL_BENCH(Q4_K, Q4_K)
LOWBIT_MATMUL_BENCH(Q5_K, Q5_K)
LOWBIT_MATMUL_BENCH(Q6_K, Q6_K)
LOWBIT_MATMUL_BENCH(IQ4_NL, IQ4_NL)
LOWBIT_MATMUL_BENCH(IQ4_XS, IQ4_XS)
LOWBIT_MATMUL_BENCH(F16, F16)
LOWBIT_MATMUL_BENCH(BF16, BF16)
LOWBIT_MATMUL_BENCH(I4G_GPTQ, I4G)

}  // namespace
}  // namespace lowbit
