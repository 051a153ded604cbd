// Throughput of the legacy block types and IQ4_NL/IQ4_XS on a 4096 x 256 float matrix, reported as bytes of
// float data per second (input when quantizing, output when dequantizing).
// Run: ./build/lowbit_bench --benchmark_filter=Legacy
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace lowbit {
namespace {

constexpr int64_t kMatrixRows = 4096;
constexpr int64_t kMatrixCols = 256;
constexpr int64_t kMatrixValues = kMatrixRows * kMatrixCols;

// Reproducible data without an RNG: a 32-bit LCG's top bits, summed in fours for a bell-shaped spread, times a
// per-row gain so blocks differ in scale as real weight rows do.
std::vector<float> make_matrix() {
  std::vector<float> m(static_cast<size_t>(kMatrixValues));
  uint32_t state = 12345u;
  auto next_unit = [&state] {
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(state >> 8) / 16777216.f - 0.5f;
  };
  for (int64_t i = 0; i < kMatrixValues; ++i) {
    const float gain = 0.01f * static_cast<float>(1 + (i / kMatrixCols) % 11);
    m[static_cast<size_t>(i)] = gain * (next_unit() + next_unit() + next_unit() + next_unit());
  }
  return m;
}

enum class Direction { kQuantize, kQuantizeWeighted, kDequantize };

void run(benchmark::State& state, DType type, Direction direction) {
  static const std::vector<float> matrix = make_matrix();
  std::vector<float> importance(kMatrixCols);
  for (int64_t j = 0; j < kMatrixCols; ++j) importance[static_cast<size_t>(j)] = 1.f + static_cast<float>(j % 5);
  std::vector<uint8_t> blocks(row_bytes(type, kMatrixCols) * kMatrixRows);
  std::vector<float> restored(matrix.size());
  quantize_rows(type, matrix.data(), blocks.data(), kMatrixRows, kMatrixCols);
  for (auto _ : state) {
    if (direction == Direction::kDequantize) {
      to_float(type, blocks.data(), restored.data(), kMatrixValues);
      benchmark::DoNotOptimize(restored.data());
    } else {
      const float* w = direction == Direction::kQuantizeWeighted ? importance.data() : nullptr;
      quantize_rows(type, matrix.data(), blocks.data(), kMatrixRows, kMatrixCols, w);
      benchmark::DoNotOptimize(blocks.data());
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kMatrixValues * static_cast<int64_t>(sizeof(float)));
}

const bool kRegistered = [] {
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q8_1, DType::IQ4_NL,
                  DType::IQ4_XS}) {
    const std::string name = std::string("Legacy/") + dtype_name(t);
    benchmark::RegisterBenchmark((name + "/quantize").c_str(), run, t, Direction::kQuantize);
    benchmark::RegisterBenchmark((name + "/quantize_imatrix").c_str(), run, t, Direction::kQuantizeWeighted);
    benchmark::RegisterBenchmark((name + "/dequantize").c_str(), run, t, Direction::kDequantize);
  }
  return true;
}();

}  // namespace
}  // namespace lowbit
