// Parallel loops that cost nothing when they run on one thread. Every OpenMP region ends in libgomp's team
// barrier, which makes a futex system call even when the team is a single thread; generation opened two or three
// regions per matmul call, ~90 calls a token, and a system call costs microseconds in the VMs here.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace lowbit {

// fn(i) for every i in [0, n), split statically over up to `threads` threads; a plain loop when that is one.
template <typename Fn>
void parallel_for(int64_t n, int threads, const Fn& fn) {
  const int t = static_cast<int>(std::clamp<int64_t>(n, 1, std::max(1, threads)));
  if (t == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
#pragma omp parallel for num_threads(t) schedule(static)
  for (int64_t i = 0; i < n; ++i) fn(i);
}

// fn(thread, n_threads) once on each of `threads` threads; a plain call when that is one.
template <typename Fn>
void parallel_region(int threads, const Fn& fn) {
  if (threads <= 1) return fn(0, 1);
#pragma omp parallel num_threads(threads)
  fn(omp_get_thread_num(), omp_get_num_threads());
}

// The contiguous share [begin, end) of [0, n) that thread i of n_threads takes (as OpenMP's static schedule).
struct Share {
  int64_t begin, end;
};
inline Share static_share(int64_t n, int i, int n_threads) {
  const int64_t base = n / n_threads, extra = n % n_threads;
  const int64_t begin = i * base + std::min<int64_t>(i, extra);
  return {begin, begin + base + (i < extra ? 1 : 0)};
}

}  // namespace lowbit
