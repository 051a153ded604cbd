#include "util/parallel.h"

namespace lowbit {

namespace {
std::atomic<size_t> min_bytes_per_thread{kMinBytesPerThread};
}  // namespace

int threads_for_bytes(size_t bytes, int threads) {
  const size_t per_thread = min_bytes_per_thread.load(std::memory_order_relaxed);
  const size_t most = per_thread == 0 ? static_cast<size_t>(threads) : bytes / per_thread;
  return static_cast<int>(std::clamp<size_t>(most, 1, static_cast<size_t>(std::max(1, threads))));
}

size_t set_min_bytes_per_thread(size_t bytes) { return min_bytes_per_thread.exchange(bytes); }

}  // namespace lowbit
