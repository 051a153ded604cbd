// GPTQ's dense work on one thread: the Hessian accumulation H += 2/N X^T X (bytes of activations per second)
// and a whole gptq_quantize of one layer (bytes of float weights per second), which includes the Cholesky
// inverse and the column loop with its lazy batch updates. Run: ./build/lowbit_bench --benchmark_filter=Gptq
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "algo/gptq.h"

namespace lowbit {
namespace {

constexpr int64_t kIn = 1024;
constexpr int64_t kOut = 512;
constexpr int64_t kTokens = 512;

// Deterministic inputs without an RNG, with some correlation between columns as real activations have.
std::vector<float> activations() {
  std::vector<float> x(static_cast<size_t>(kTokens * kIn));
  for (int64_t t = 0; t < kTokens; ++t)
    for (int64_t j = 0; j < kIn; ++j) {
      const double u = static_cast<double>(t * 7919 + j * 104729);
      x[static_cast<size_t>(t * kIn + j)] =
          static_cast<float>(std::sin(u * 0.0001) + 0.5 * std::sin(static_cast<double>(t) * 0.37 + j % 17));
    }
  return x;
}

void BM_GptqHessianAddBatch(benchmark::State& state) {
  const std::vector<float> x = activations();
  omp_set_num_threads(1);
  for (auto _ : state) {
    HessianAccumulator h(kIn);
    h.add_batch(x.data(), kTokens);
    benchmark::DoNotOptimize(h.matrix().data());
  }
  state.SetBytesProcessed(state.iterations() * kTokens * kIn * static_cast<int64_t>(sizeof(float)));
}
BENCHMARK(BM_GptqHessianAddBatch)->Unit(benchmark::kMillisecond);

void BM_GptqQuantizeLayer(benchmark::State& state) {
  const std::vector<float> x = activations();
  std::vector<float> w(static_cast<size_t>(kOut * kIn));
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.02f * static_cast<float>(std::sin(static_cast<double>(i) * 0.7548776662));
  omp_set_num_threads(1);
  HessianAccumulator h(kIn);
  h.add_batch(x.data(), kTokens);
  IntQuantConfig cfg;
  cfg.bits = 4;
  cfg.group_size = 128;
  for (auto _ : state) {
    const GptqResult r = gptq_quantize(w.data(), kOut, kIn, h, cfg);
    benchmark::DoNotOptimize(r.layer.q.data());
  }
  state.SetBytesProcessed(state.iterations() * kOut * kIn * static_cast<int64_t>(sizeof(float)));
}
BENCHMARK(BM_GptqQuantizeLayer)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lowbit
