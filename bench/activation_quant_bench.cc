// One token's activations made ready for the matmul kernels (ops/activation_quant.h), as each generation call does
// on its calling thread before its tiles start: the rounding alone (quantize_activation_row) and with the kernels'
// extras (quantize_activations: quad sums and block sums for Q8_0/Q8_1, quad pairs and paired bytes for Q8_K).
// 2048 and 5632 values: a 1B model's attention/gate/up inputs and its down projection's. Bytes processed = the
// floats read.
// Run: ./build/lowbit_bench --benchmark_filter=Activations
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "ops/activation_quant.h"

namespace lowbit {
namespace {

std::vector<float> token_activations(int64_t n) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = std::cos(0.37f * static_cast<float>(i)) * (1 + i % 7);
  return x;
}

void BM_ActivationsRounded(benchmark::State& state, DType type, int64_t n) {
  const std::vector<float> x = token_activations(n);
  std::vector<uint8_t> out(row_bytes(type, n));
  for (auto _ : state) {
    quantize_activation_row(type, x.data(), n, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * n * static_cast<int64_t>(sizeof(float)));
}

void BM_ActivationsWithExtras(benchmark::State& state, DType type, int64_t n) {
  const std::vector<float> x = token_activations(n);
  QuantizedActivations acts;
  for (auto _ : state) {
    quantize_activations(acts, type, x.data(), 1, n, 1);
    benchmark::DoNotOptimize(acts.row(0));
  }
  state.SetBytesProcessed(state.iterations() * n * static_cast<int64_t>(sizeof(float)));
}

BENCHMARK_CAPTURE(BM_ActivationsRounded, Q8_0_2048, DType::Q8_0, 2048);
BENCHMARK_CAPTURE(BM_ActivationsWithExtras, Q8_0_2048, DType::Q8_0, 2048);
BENCHMARK_CAPTURE(BM_ActivationsRounded, Q8_0_5632, DType::Q8_0, 5632);
BENCHMARK_CAPTURE(BM_ActivationsWithExtras, Q8_0_5632, DType::Q8_0, 5632);
BENCHMARK_CAPTURE(BM_ActivationsRounded, Q8_K_2048, DType::Q8_K, 2048);
BENCHMARK_CAPTURE(BM_ActivationsWithExtras, Q8_K_2048, DType::Q8_K, 2048);
BENCHMARK_CAPTURE(BM_ActivationsRounded, Q8_K_5632, DType::Q8_K, 5632);
BENCHMARK_CAPTURE(BM_ActivationsWithExtras, Q8_K_5632, DType::Q8_K, 5632);

}  // namespace
}  // namespace lowbit
