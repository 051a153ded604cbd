// Throughput of the K-quant conversions on a 4096 x 256 float matrix, in bytes of float input (or output for
// dequantization) per second. Run: ./build/lowbit_bench --benchmark_filter=KQuant
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace lowbit {
namespace {

constexpr int64_t kRows = 4096;
constexpr int64_t kCols = 256;

// Deterministic, roughly Gaussian-looking data with row-varying scale (no RNG: the same on every machine).
const std::vector<float>& bench_matrix() {
  static const std::vector<float> m = [] {
    std::vector<float> v(static_cast<size_t>(kRows * kCols));
    for (size_t i = 0; i < v.size(); ++i) {
      const double t = static_cast<double>(i);
      v[i] = static_cast<float>((std::sin(t * 0.7548776662) + std::sin(t * 0.5698402910) * 0.5) *
                                (1.0 + static_cast<double>(i / kCols % 7)));
    }
    return v;
  }();
  return m;
}

const std::vector<float>& bench_importance() {
  static const std::vector<float> w = [] {
    std::vector<float> v(kCols);
    for (int64_t j = 0; j < kCols; ++j) v[j] = 0.5f + static_cast<float>(j % 13) * 0.25f;
    return v;
  }();
  return w;
}

void BM_KQuantQuantize(benchmark::State& state, DType type, bool with_importance) {
  const std::vector<float>& src = bench_matrix();
  std::vector<char> dst(row_bytes(type, kCols) * kRows);
  const float* importance = with_importance ? bench_importance().data() : nullptr;
  for (auto _ : state) {
    quantize_rows(type, src.data(), dst.data(), kRows, kCols, importance);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kRows * kCols * static_cast<int64_t>(sizeof(float)));
}

void BM_KQuantDequantize(benchmark::State& state, DType type) {
  const std::vector<float>& src = bench_matrix();
  std::vector<char> q(row_bytes(type, kCols) * kRows);
  quantize_rows(type, src.data(), q.data(), kRows, kCols);
  std::vector<float> out(src.size());
  for (auto _ : state) {
    to_float(type, q.data(), out.data(), kRows * kCols);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kRows * kCols * static_cast<int64_t>(sizeof(float)));
}

#define LOWBIT_K_QUANT_BENCH(T)                                                        \
  BENCHMARK_CAPTURE(BM_KQuantQuantize, T, DType::T, false)->Unit(benchmark::kMillisecond); \
  BENCHMARK_CAPTURE(BM_KQuantQuantize, T##_imatrix, DType::T, true)->Unit(benchmark::kMillisecond); \
  BENCHMARK_CAPTURE(BM_KQuantDequantize, T, DType::T)->Unit(benchmark::kMillisecond)

LOWBIT_K_QUANT_BENCH(Q2_K);
LOWBIT_K_QUANT_BENCH(Q3_K);
LOWBIT_K_QUANT_BENCH(Q4_K);
LOWBIT_K_QUANT_BENCH(Q5_K);
LOWBIT_K_QUANT_BENCH(Q6_K);
// Q8_K has no weighted variant.
BENCHMARK_CAPTURE(BM_KQuantQuantize, Q8_K, DType::Q8_K, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_KQuantDequantize, Q8_K, DType::Q8_K)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lowbit
