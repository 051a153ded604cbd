// AWQ's searches on one thread for one 512 x 1024 Linear and 512 calibration tokens: the scale grid search (20
// ratios, each a pseudo-quantization and the output loss, X W^T) and the clip search, in bytes of float weights
// per second. Run: ./build/lowbit_bench --benchmark_filter=Awq
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "algo/awq.h"

namespace lowbit {
namespace {

constexpr int64_t kIn = 1024;
constexpr int64_t kOut = 512;
constexpr int64_t kTokens = 512;

std::vector<float> wave(int64_t n, double step, float gain) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = gain * static_cast<float>(std::sin(static_cast<double>(i) * step));
  return v;
}

void BM_AwqSearchScales(benchmark::State& state) {
  const std::vector<float> x = wave(kTokens * kIn, 0.7548776662, 1.f);
  const std::vector<float> w = wave(kOut * kIn, 0.5698402910, 0.02f);
  const AwqLinear linear{w.data(), kOut};
  omp_set_num_threads(1);
  for (auto _ : state) {
    const AwqScaleResult r = awq_search_scales({&linear, 1}, kIn, x.data(), kTokens, AwqOptions{});
    benchmark::DoNotOptimize(r.scales.data());
  }
  state.SetBytesProcessed(state.iterations() * kOut * kIn * static_cast<int64_t>(sizeof(float)));
}
BENCHMARK(BM_AwqSearchScales)->Unit(benchmark::kMillisecond);

void BM_AwqSearchClip(benchmark::State& state) {
  const std::vector<float> x = wave(kTokens * kIn, 0.7548776662, 1.f);
  const std::vector<float> w = wave(kOut * kIn, 0.5698402910, 0.02f);
  omp_set_num_threads(1);
  for (auto _ : state) {
    const std::vector<float> clip = awq_search_clip(w.data(), kOut, kIn, x.data(), kTokens, AwqOptions{});
    benchmark::DoNotOptimize(clip.data());
  }
  state.SetBytesProcessed(state.iterations() * kOut * kIn * static_cast<int64_t>(sizeof(float)));
}
BENCHMARK(BM_AwqSearchClip)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lowbit
