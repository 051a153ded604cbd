// The bandwidth probe: every thread XORs its contiguous share of a buffer in 2 MiB pages, with the widest vectors
// the CPU has (Highway, picked at run time) and four independent accumulators. Narrower or scalar loads, or
// 4 KiB pages, bound the probe by the core rather than by memory: on the Zen 5 machines here a plain uint64_t
// loop read 29 GB/s on one core where 512-bit loads read 41, and the matmul kernels then seemed to beat the bound.
// Each pass reads the buffer three ways, as the generation kernels may (util/stream_prefetch.h), and keeps the
// fastest: with nothing prefetched; opening each 4 KiB page ahead of the hardware prefetcher; and every line into L1
// and L2 a little ahead (Intel's near stream). On Zen 5 the page starts read 1.10-1.20x more than nothing, on the
// AVX2-only EPYC guest here (2026-12-04) 0.85x (16.7 against 14.2 GB/s); on the Sapphire Rapids-class guest
// (2026-12-06) the near stream 1.15-1.20x more than either (19 against 16.5 GB/s), which the probe had missed
// until then: the bound is whichever the machine reads fastest.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "eval/roofline.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "eval/roofline.h"
#include "util/stream_prefetch.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <StreamRead kRead>
uint64_t XorLoop(const uint64_t* words, size_t n) {
  const hn::ScalableTag<uint64_t> d;
  const size_t lanes = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  if constexpr (kRead == StreamRead::kPageStarts) prefetch_stream_start(words);
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    if constexpr (kRead == StreamRead::kPageStarts) prefetch_stream_ahead(words + i, 4 * lanes * sizeof(uint64_t));
    if constexpr (kRead == StreamRead::kNearLines) {
      for (size_t k = 0; k < 4 * lanes * sizeof(uint64_t); k += 64) {
        const char* at = reinterpret_cast<const char*>(words + i) + k;
        __builtin_prefetch(at + kNearL1Ahead, 0, 3);
        __builtin_prefetch(at + kNearL2Ahead, 0, 2);
      }
    }
    a0 = hn::Xor(a0, hn::LoadU(d, words + i));
    a1 = hn::Xor(a1, hn::LoadU(d, words + i + lanes));
    a2 = hn::Xor(a2, hn::LoadU(d, words + i + 2 * lanes));
    a3 = hn::Xor(a3, hn::LoadU(d, words + i + 3 * lanes));
  }
  const auto all = hn::Xor(hn::Xor(a0, a1), hn::Xor(a2, a3));
  uint64_t x = 0;
  for (size_t l = 0; l < lanes; ++l) x ^= hn::ExtractLane(all, l);
  for (; i < n; ++i) x ^= words[i];
  return x;
}
uint64_t XorWords(const uint64_t* words, size_t n, StreamRead read) {
  switch (read) {
    case StreamRead::kPageStarts: return XorLoop<StreamRead::kPageStarts>(words, n);
    case StreamRead::kNearLines: return XorLoop<StreamRead::kNearLines>(words, n);
    default: return XorLoop<StreamRead::kPlain>(words, n);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "util/huge_pages.h"
#include "util/parallel.h"

namespace lowbit {

HWY_EXPORT(XorWords);

uint64_t xor_of_words(const uint64_t* words, size_t n, StreamRead read) {
  return HWY_DYNAMIC_DISPATCH(XorWords)(words, n, read);
}

BandwidthProbe::BandwidthProbe(size_t buffer_bytes, int threads)
    : n_words_(std::max<size_t>(buffer_bytes / sizeof(uint64_t), 1024)), threads_(std::max(1, threads)) {
  storage_ = huge_page_buffer(n_words_ * sizeof(uint64_t));
  auto* const words = reinterpret_cast<uint64_t*>(storage_.get());
  // First touch from the threads that will read, so pages land near them.
  parallel_region(threads_, [&](int me, int) {
    for (size_t i = share(me); i < share(me + 1); ++i) words[i] = i;
  });
}

BandwidthMeasurement BandwidthProbe::measure(int reps) const {
  const auto* const words = reinterpret_cast<const uint64_t*>(storage_.get());
  BandwidthMeasurement m;
  m.buffer_bytes = n_words_ * sizeof(uint64_t);
  m.threads = threads_;
  volatile uint64_t sink = 0;
  std::vector<uint64_t> partial(static_cast<size_t>(threads_));  // each thread's XOR, allocated outside the timing
  constexpr StreamRead kReads[] = {StreamRead::kPlain, StreamRead::kPageStarts, StreamRead::kNearLines};
  for (int pass = 0; pass < 3 * reps; ++pass) {
    const StreamRead read = kReads[pass % 3];
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t total = 0;
    parallel_region(threads_, [&](int me, int) {
      partial[static_cast<size_t>(me)] = xor_of_words(words + share(me), share(me + 1) - share(me), read);
    });
    for (uint64_t p : partial) total ^= p;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink ^ total;
    m.bytes_per_s = std::max(m.bytes_per_s, static_cast<double>(m.buffer_bytes) / s);
  }
  return m;
}

std::vector<double> thread_round_trip_ns(int threads) {
  constexpr int kBatches = 9, kTripsPerBatch = 64;
  std::vector<double> out;
  for (int k = 1; k < threads; ++k) {
    // Thread 0 writes odd values, thread k even ones, each after seeing the other's: one write a round trip each.
    alignas(64) std::atomic<uint32_t> ball{0};
    std::vector<double> batch_ns;
    parallel_region(threads, [&](int me, int) {
      if (me != 0 && me != k) return;
      const uint32_t parity = me == 0 ? 0 : 1;
      for (int b = 0; b < kBatches; ++b) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int trip = 0; trip < kTripsPerBatch; ++trip) {
          const uint32_t mine = 2u * static_cast<uint32_t>(b * kTripsPerBatch + trip) + parity;
          // Spin for the other's write; after a while yield, in case it waits for this core.
          for (int spins = 0; ball.load(std::memory_order_acquire) != mine; ++spins)
            if (spins > 1 << 16) std::this_thread::yield();
          ball.store(mine + 1, std::memory_order_release);
        }
        const std::chrono::duration<double, std::nano> batch = std::chrono::steady_clock::now() - t0;
        if (me == 0) batch_ns.push_back(batch.count() / kTripsPerBatch);
      }
    });
    std::nth_element(batch_ns.begin(), batch_ns.begin() + kBatches / 2, batch_ns.end());
    out.push_back(batch_ns[kBatches / 2]);
  }
  return out;
}

}  // namespace lowbit
#endif  // HWY_ONCE
