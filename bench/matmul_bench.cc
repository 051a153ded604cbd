// Matrix products through the engine's matmul: the generic dequantize-then-dot path (the scalar reference)
// against the SIMD kernel of each type, single-threaded, on a 4096 x 4096 weight.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "ops/matmul.h"

namespace lowbit {
namespace {

Tensor random_weight(DType type, int64_t n_in, int64_t n_out) {
  std::vector<float> w(static_cast<size_t>(n_in * n_out));
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.7f * static_cast<float>(i));
  TensorInfo info;
  info.name = "w";
  info.type = type;
  info.n_dims = 2;
  info.ne = {n_in, n_out, 1, 1};
  std::vector<uint8_t> bytes(info.n_bytes());
  quantize_rows(type, w.data(), bytes.data(), n_out, n_in);
  return make_owned_tensor(info, std::move(bytes));
}

// n_tokens = 1: a matrix-vector product (generation); 64: a prompt batch. Bytes processed = weight bytes read
// per token, so GB/s compares with the memory bandwidth.
void run(benchmark::State& state, DType type, bool fused, int64_t n_tokens) {
  const int64_t n = 4096;
  const Tensor w = random_weight(type, n, n);
  std::vector<float> x(static_cast<size_t>(n * n_tokens)), y(static_cast<size_t>(n * n_tokens));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.3f * static_cast<float>(i));
  for (auto _ : state) {
    if (fused) matmul(w, x.data(), n_tokens, y.data(), 1);
    else matmul_generic(w, x.data(), n_tokens, y.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * n_tokens * static_cast<int64_t>(w.info.n_bytes()));
}

#define LOWBIT_MATMUL_BENCH(NAME, TYPE)                                                          \
  void BM_##NAME##_Generic(benchmark::State& s) { run(s, DType::TYPE, false, 1); }               \
  void BM_##NAME##_Simd(benchmark::State& s) { run(s, DType::TYPE, true, 1); }                   \
  void BM_##NAME##_Generic_Batch64(benchmark::State& s) { run(s, DType::TYPE, false, 64); }      \
  void BM_##NAME##_Simd_Batch64(benchmark::State& s) { run(s, DType::TYPE, true, 64); }          \
  BENCHMARK(BM_##NAME##_Generic)->Unit(benchmark::kMillisecond);                                 \
  BENCHMARK(BM_##NAME##_Simd)->Unit(benchmark::kMillisecond);                                    \
  BENCHMARK(BM_##NAME##_Generic_Batch64)->Unit(benchmark::kMillisecond);                         \
  BENCHMARK(BM_##NAME##_Simd_Batch64)->Unit(benchmark::kMillisecond);

LOWBIT_MATMUL_BENCH(Q8_0, Q8_0)
LOWBIT_MATMUL_BENCH(Q4_0, Q4_0)
LOWBIT_MATMUL_BENCH(Q4_K, Q4_K)
LOWBIT_MATMUL_BENCH(Q5_K, Q5_K)
LOWBIT_MATMUL_BENCH(Q6_K, Q6_K)

void BM_F16_Generic(benchmark::State& s) { run(s, DType::F16, false, 1); }
BENCHMARK(BM_F16_Generic)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lowbit
