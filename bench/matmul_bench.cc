// Matrix products through the engine's matmul, single-threaded:
// - *_Reference: the scalar reference kernel (ops/dot_reference.h), *_Simd: the SIMD kernel, same bits;
// - generation (1 token) on a 4096 x 4096 weight that stays in L3, and *_Stream on eight 4096 x 2048 weights
//   used in turn (36 MiB for Q4_0: only just past a Zen 5 core's 32 MiB L3);
// - *_Simd_L2: generation on a 2048 x 256 weight that stays in a core's L2 (at most 1 MiB): nearer the kernel's
//   own speed, though each call's fixed costs (activations, dispatch: ~1.5 us for 32 rows) are a share of it;
// - *_Simd_Dram: one token, every byte from memory, with the fraction of a paired bandwidth probe (run_dram);
//   *_Dram_T2 the same on two threads, *_Dram_Small_T2 on 4096 x 1024 weights (2.3 MiB of Q4_0, a call as short
//   as a 1B model's attention projections, where each call's fixed costs show), *_Dram_Short on 2048 x 5632
//   weights (the 1B model's feed-forward: rows a quarter as long, so a tile's stream is shorter);
// - *_Simd_Call_T2: one token through 4096 x 64 weights from cache on two threads (a chunk each), forced (the
//   engine runs a call this small on one, util/parallel.h's threads_for_bytes): what handing a call to a second
//   core costs beyond its arithmetic (compare *_Simd_Call, the same on one thread);
// - *_Batch64: a prompt batch of 64 tokens.
// Bytes processed = weight bytes read per token, so GB/s compares with the memory bandwidth.
// LOWBIT_BENCH_TARGET=AVX2 (or AVX3, AVX3_DL, SSE4, ...) runs the kernels of that Highway target only;
// AVX2_VNNI runs AVX2's built with AVX-VNNI (ops/simd_matmul_avx_vnni.cc), which plain AVX2 leaves out here.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "algo/int_quant.h"
#include "bench_probe.h"
#include "eval/roofline.h"
#include "ops/dot_reference.h"
#include "ops/matmul.h"
#include "ops/packed_weight.h"
#include "ops/simd_matmul.h"
#include "util/error.h"
#include "util/huge_pages.h"
#include "util/parallel.h"

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

// Restricts the kernels to one target if LOWBIT_BENCH_TARGET names one this CPU runs (pin_simd_target).
const bool kTargetChosen = [] {
  const char* env = std::getenv("LOWBIT_BENCH_TARGET");
  if (!env) return false;
  try {
    pin_simd_target(env, "LOWBIT_BENCH_TARGET");
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::exit(2);
  }
  return true;
}();

enum class Kernel { kReference, kSimd };

void run(benchmark::State& state, DType type, Kernel kernel, int64_t n_tokens, int n_weights, int64_t n_in = 4096,
         int64_t n_out = 0, int threads = 1) {
  if (n_out == 0) n_out = n_weights > 1 ? 2048 : 4096;
  std::vector<Tensor> ws;
  // The SIMD kernels read the engine's interleaved layout (ops/packed_weight.h), as the model uses them.
  for (int i = 0; i < n_weights; ++i) {
    Tensor w = random_weight(type, n_in, n_out, i);
    ws.push_back(kernel == Kernel::kSimd ? pack_for_matmul(w) : w);
  }
  std::vector<float> x(static_cast<size_t>(n_in * n_tokens)), y(static_cast<size_t>(n_out * n_tokens));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.3f * static_cast<float>(i));
  size_t next = 0;
  const size_t engine_minimum = set_min_bytes_per_thread(0);  // every call on all `threads`, however small
  for (auto _ : state) {
    const Tensor& w = ws[next++ % ws.size()];
    if (kernel == Kernel::kSimd) matmul(w, x.data(), n_tokens, y.data(), threads);
    else matmul_reference(w, x.data(), n_tokens, y.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
  set_min_bytes_per_thread(engine_minimum);
  state.SetBytesProcessed(state.iterations() * n_tokens * static_cast<int64_t>(ws[0].info.n_bytes()));
}

// A copy of a (packed) weight in memory of its own.
Tensor copy_of(const Tensor& w) {
  const size_t n = w.info.n_bytes();
  std::shared_ptr<uint8_t> storage = huge_page_buffer(n);
  std::memcpy(storage.get(), w.data, n);
  Tensor c = w;
  c.data = storage.get();
  c.owner = storage;
  return c;
}

// *_Simd_Dram: one token through packed copies of a 4096x4096 weight, 768 MiB of them, used in turn, so every byte
// comes from memory (a Zen 5 core's L3 is 32 MiB, which *_Simd_Stream's 8 weights only just pass). Counter
// of_probe: the kernel's bytes/s over the read bandwidth a probe measured just before the timed loop, the figure
// `lowbit bench --roofline` gives for a whole model, here for one kernel.
void run_dram(benchmark::State& state, DType type, int threads = 1, int64_t n_out = 4096, int64_t n_in = 4096) {
  const Tensor one = pack_for_matmul(random_weight(type, n_in, n_out, 0));
  const size_t bytes = one.info.n_bytes();
  std::vector<Tensor> ws;
  for (size_t total = 0; total < (size_t{768} << 20); total += bytes) ws.push_back(copy_of(one));
  const BandwidthProbe& probe = bench_probe(threads);
  std::vector<float> x(static_cast<size_t>(n_in)), y(static_cast<size_t>(n_out));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.3f * static_cast<float>(i));
  const double bandwidth = probe.measure(3).bytes_per_s;
  size_t next = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    matmul(ws[next++ % ws.size()], x.data(), 1, y.data(), threads);
    benchmark::DoNotOptimize(y.data());
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double read = static_cast<double>(state.iterations()) * static_cast<double>(bytes);
  state.SetBytesProcessed(static_cast<int64_t>(read));
  state.counters["of_probe"] = s > 0 ? read / s / bandwidth : 0.0;
}

#define LOWBIT_MATMUL_BENCH(NAME, TYPE)                                                                     \
  void BM_##NAME##_Reference(benchmark::State& s) { run(s, DType::TYPE, Kernel::kReference, 1, 1); }        \
  void BM_##NAME##_Simd(benchmark::State& s) { run(s, DType::TYPE, Kernel::kSimd, 1, 1); }                  \
  void BM_##NAME##_Simd_Stream(benchmark::State& s) { run(s, DType::TYPE, Kernel::kSimd, 1, 8); }           \
  void BM_##NAME##_Simd_L2(benchmark::State& s) { run(s, DType::TYPE, Kernel::kSimd, 1, 1, 2048, 256); }     \
  void BM_##NAME##_Simd_Dram(benchmark::State& s) { run_dram(s, DType::TYPE); }                             \
  void BM_##NAME##_Simd_Dram_T2(benchmark::State& s) { run_dram(s, DType::TYPE, 2); }                       \
  void BM_##NAME##_Simd_Dram_Small_T2(benchmark::State& s) { run_dram(s, DType::TYPE, 2, 1024); }           \
  void BM_##NAME##_Simd_Dram_Short(benchmark::State& s) { run_dram(s, DType::TYPE, 1, 5632, 2048); }        \
  void BM_##NAME##_Simd_Call(benchmark::State& s) { run(s, DType::TYPE, Kernel::kSimd, 1, 1, 4096, 64); }     \
  void BM_##NAME##_Simd_Call_T2(benchmark::State& s) { run(s, DType::TYPE, Kernel::kSimd, 1, 1, 4096, 64, 2); } \
  void BM_##NAME##_Reference_Batch64(benchmark::State& s) { run(s, DType::TYPE, Kernel::kReference, 64, 1); } \
  void BM_##NAME##_Simd_Batch64(benchmark::State& s) { run(s, DType::TYPE, Kernel::kSimd, 64, 1); }         \
  BENCHMARK(BM_##NAME##_Reference)->Unit(benchmark::kMillisecond);                                          \
  BENCHMARK(BM_##NAME##_Simd)->Unit(benchmark::kMillisecond);                                               \
  BENCHMARK(BM_##NAME##_Simd_Stream)->Unit(benchmark::kMillisecond);                                        \
  BENCHMARK(BM_##NAME##_Simd_L2)->Unit(benchmark::kMicrosecond);                                            \
  BENCHMARK(BM_##NAME##_Simd_Dram)->Unit(benchmark::kMillisecond);                                          \
  BENCHMARK(BM_##NAME##_Simd_Dram_T2)->Unit(benchmark::kMillisecond);                                       \
  BENCHMARK(BM_##NAME##_Simd_Dram_Small_T2)->Unit(benchmark::kMicrosecond);                                 \
  BENCHMARK(BM_##NAME##_Simd_Dram_Short)->Unit(benchmark::kMillisecond);                                    \
  BENCHMARK(BM_##NAME##_Simd_Call)->Unit(benchmark::kMicrosecond);                                          \
  BENCHMARK(BM_##NAME##_Simd_Call_T2)->Unit(benchmark::kMicrosecond);                                       \
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
