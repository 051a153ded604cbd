// Parallel loops for the engine's short steps, on the spinning thread team (util/thread_team.h) rather than
// OpenMP, whose regions cost microseconds of system calls each (generation runs ~110 a token); a plain loop or
// call when there is one thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "util/thread_team.h"

namespace lowbit {

// The contiguous share [begin, end) of [0, n) that thread i of n_threads takes (as OpenMP's static schedule).
struct Share {
  int64_t begin, end;
};
inline Share static_share(int64_t n, int i, int n_threads) {
  const int64_t base = n / n_threads, extra = n % n_threads;
  const int64_t begin = i * base + std::min<int64_t>(i, extra);
  return {begin, begin + base + (i < extra ? 1 : 0)};
}

// Threads for a step that reads `bytes` (a generation matmul's weights, attention's cache): at most `threads`, each
// with at least kMinBytesPerThread. More threads pay to wake them, join them and pass the outputs' lines between
// cores, a few microseconds a step, and a model whose steps were all small generated 40 % slower at -t 2 than at
// -t 1. One Q4_0 matmul of 4096 columns from cache, one thread against two on two cores, median us: 144 KiB 3.1
// against 5.4, 288 KiB 5.6-5.9 against 6.8-7.3, 432 KiB 6.9 against 8.1, 576 KiB 10.3 against 10.0, 864 KiB 13.1-13.7
// against 11.0-11.5.
inline constexpr size_t kMinBytesPerThread = size_t{256} << 10;
int threads_for_bytes(size_t bytes, int threads);
// For tests of the multi-thread paths on small shapes: sets the minimum (0: every step on all its threads) and
// returns the one it replaces.
size_t set_min_bytes_per_thread(size_t bytes);

// fn(thread, n_threads) once on each of `threads` threads; a plain call when that is one.
template <typename Fn>
void parallel_region(int threads, const Fn& fn) {
  if (threads <= 1) return fn(0, 1);
  ThreadTeam::global().run(threads, fn);
}

// fn(i) for every i in [0, n), each thread a contiguous share (static_share); a plain loop on one thread.
template <typename Fn>
void parallel_for(int64_t n, int threads, const Fn& fn) {
  const int t = static_cast<int>(std::clamp<int64_t>(n, 1, std::max(1, threads)));
  parallel_region(t, [&](int i, int n_threads) {
    const Share s = static_share(n, i, n_threads);
    for (int64_t k = s.begin; k < s.end; ++k) fn(k);
  });
}

// fn(i) for every i in [0, n), handed out one at a time as threads free up (work of uneven or unsteady cost).
template <typename Fn>
void parallel_for_dynamic(int64_t n, int threads, const Fn& fn) {
  const int t = static_cast<int>(std::clamp<int64_t>(n, 1, std::max(1, threads)));
  std::atomic<int64_t> next{0};
  parallel_region(t, [&](int, int) {
    for (int64_t k; (k = next.fetch_add(1, std::memory_order_relaxed)) < n;) fn(k);
  });
}

// Work items [0, n) dealt as one contiguous range per thread, which its thread takes from the front; a thread whose
// range is empty takes items from the back of another's. Each thread so reads its own range as one forward stream
// (generation's weights), and the first to finish takes over the end of a slower thread's range instead of waiting
// for it. A take is a locked compare-exchange, which waits for the thread's outstanding loads: once per generation
// chunk it cost 2.8 % of a Q4_0 token at -t 2, so a thread takes half of what is left of its own range and a
// quarter of another's (at least one item): with a quarter of its own too, the takes still held 1.9 % of the two
// threads' time (perf, 1B Q4_0, -t 2), with half 0.6-1 %. Callers must not let the thread that runs an item change
// what the item computes.
class StealingRanges {
 public:
  struct Items {
    size_t begin, end;
    bool empty() const { return begin >= end; }
  };
  // Thread i owns items [starts[i], starts[i + 1]); starts has one entry more than there are threads, and the
  // items number fewer than 2^32 (each range packs its two ends in one 64-bit word).
  void reset(std::span<const size_t> starts) {
    const size_t n = starts.size() - 1;
    if (n > capacity_) {
      ranges_ = std::make_unique<Range[]>(n);
      capacity_ = n;
    }
    n_ = n;
    for (size_t i = 0; i < n; ++i)
      ranges_[i].front_back.store(pack(starts[i], starts[i + 1]), std::memory_order_relaxed);
  }
  // The next items for thread `me`; empty once every range is.
  Items next(int me) {
    const auto own = static_cast<size_t>(me);
    if (const Items items = take(ranges_[own], true); !items.empty()) return items;
    for (size_t k = 1; k < n_; ++k)
      if (const Items items = take(ranges_[(own + k) % n_], false); !items.empty()) return items;
    return {0, 0};
  }

 private:
  // One cache line each, so a thread taking from its own range does not contend with the others.
  struct alignas(64) Range {
    std::atomic<uint64_t> front_back{0};  // front << 32 | back: the items [front, back) left
  };
  static uint64_t pack(size_t front, size_t back) { return uint64_t{front} << 32 | uint64_t{back}; }
  static Items take(Range& r, bool from_front) {
    uint64_t v = r.front_back.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t front = v >> 32, back = v & 0xFFFFFFFFu;
      if (front >= back) return {0, 0};
      const uint64_t n = std::max<uint64_t>(1, (back - front) / (from_front ? 2 : 4));
      const uint64_t next = from_front ? pack(front + n, back) : pack(front, back - n);
      if (r.front_back.compare_exchange_weak(v, next, std::memory_order_relaxed))
        return from_front ? Items{front, front + n} : Items{back - n, back};
    }
  }
  std::unique_ptr<Range[]> ranges_;
  size_t capacity_ = 0, n_ = 0;
};

}  // namespace lowbit
