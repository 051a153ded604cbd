// Matrix-vector products through the engine's matmul: the generic dequantize-then-dot path against the fused
// kernel of a type (where one is registered), single-threaded, on a 4096 x 4096 weight.
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

void run(benchmark::State& state, DType type, bool fused) {
  const int64_t n = 4096;
  const Tensor w = random_weight(type, n, n);
  std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.3f * static_cast<float>(i));
  for (auto _ : state) {
    if (fused) matmul(w, x.data(), 1, y.data(), 1);
    else matmul_generic(w, x.data(), 1, y.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.info.n_bytes()));
}

void BM_Q4_0_Generic(benchmark::State& s) { run(s, DType::Q4_0, false); }
void BM_Q4_0_Fused(benchmark::State& s) { run(s, DType::Q4_0, true); }
void BM_Q8_0_Generic(benchmark::State& s) { run(s, DType::Q8_0, false); }
void BM_Q4_K_Generic(benchmark::State& s) { run(s, DType::Q4_K, false); }
void BM_F16_Generic(benchmark::State& s) { run(s, DType::F16, false); }
BENCHMARK(BM_Q4_0_Generic)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Q4_0_Fused)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Q8_0_Generic)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Q4_K_Generic)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_F16_Generic)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lowbit
