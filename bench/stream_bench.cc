// How much of the bandwidth probe a loop reads from memory when it does arithmetic on what it reads, as the
// one-token tiles do: BM_StreamWithDots/K streams 1 GiB in 2 MiB pages front to back, each page's start prefetched
// ahead as the tiles' FarAhead does (util/stream_prefetch.h), with K vpdpbusd per 64-byte line in eight chains.
// Counters: of_probe, the loop's rate from memory over the probe's just before (eval/roofline.h), and
// cached_GBps, the same loop over 256 KiB that stay in L2: its arithmetic's own speed. A tile whose cached_GBps
// matches a K here reads about that K's of_probe from memory at best; what a tile reads below it is its own shape.
// /1 on one thread, /2 on two, each streaming its half (against the probe on as many). AVX-512 VNNI only (skipped
// elsewhere).
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>

#include "bench_probe.h"
#include "eval/roofline.h"
#include "util/huge_pages.h"
#include "util/parallel.h"
#include "util/stream_prefetch.h"

namespace lowbit {
namespace {

template <int K>
__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) int32_t StreamDots(const uint8_t* p, size_t n) {
  __m512i acc[8];
  for (__m512i& a : acc) a = _mm512_setzero_si512();
  const __m512i ones = _mm512_set1_epi8(1);
  prefetch_stream_start(p);
  for (size_t i = 0; i + 256 <= n; i += 256) {
    prefetch_stream_ahead(p + i, 256);
#pragma GCC unroll 4
    for (int line = 0; line < 4; ++line) {
      const __m512i v = _mm512_load_si512(p + i + 64 * line);
      if constexpr (K == 0) acc[line] = _mm512_xor_si512(acc[line], v);
#pragma GCC unroll 16
      for (int k = 0; k < K; ++k) {
        __m512i& a = acc[(line * K + k) % 8];
        a = _mm512_dpbusd_epi32(a, v, ones);
      }
    }
  }
  __m512i sum = acc[0];
  for (int i = 1; i < 8; ++i) sum = _mm512_add_epi32(sum, acc[i]);
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, sum);
  int32_t total = 0;
  for (int32_t lane : lanes) total += lane;
  return total;
}

// n bytes from p over `threads` threads, each a contiguous share of whole 4 KiB pages.
template <int K>
double bytes_per_s(const uint8_t* p, size_t n, int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  parallel_region(threads, [&](int i, int n_threads) {
    const Share pages = static_share(static_cast<int64_t>(n / kStreamPage), i, n_threads);
    const size_t begin = static_cast<size_t>(pages.begin) * kStreamPage, end = static_cast<size_t>(pages.end) * kStreamPage;
    benchmark::DoNotOptimize(StreamDots<K>(p + begin, end - begin));
  });
  return static_cast<double>(n) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <int K>
void BM_StreamWithDots(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512vnni")) return state.SkipWithError("needs AVX-512 VNNI");
  constexpr size_t kBytes = size_t{1} << 30, kCached = 256 << 10;
  const int threads = static_cast<int>(state.range(0));
  const BandwidthProbe& probe = bench_probe(threads);
  static const std::shared_ptr<uint8_t> buffer = [] {
    std::shared_ptr<uint8_t> b = huge_page_buffer(kBytes);
    std::memset(b.get(), 1, kBytes);
    return b;
  }();
  double cached = 0;
  for (int pass = 0; pass < 200; ++pass) cached = std::max(cached, bytes_per_s<K>(buffer.get(), kCached, 1));
  const double bandwidth = probe.measure(1).bytes_per_s;
  double read = 0, seconds = 0;
  for (auto _ : state) {
    const double rate = bytes_per_s<K>(buffer.get(), kBytes, threads);
    read += static_cast<double>(kBytes);
    seconds += static_cast<double>(kBytes) / rate;
  }
  state.SetBytesProcessed(static_cast<int64_t>(read));
  state.counters["of_probe"] = read / seconds / bandwidth;
  state.counters["cached_GBps"] = cached / 1e9;
}
BENCHMARK(BM_StreamWithDots<0>)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_StreamWithDots<2>)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_StreamWithDots<4>)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_StreamWithDots<6>)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_StreamWithDots<8>)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_StreamWithDots<10>)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_StreamWithDots<12>)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace lowbit
