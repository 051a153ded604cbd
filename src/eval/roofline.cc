#include "eval/roofline.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>

namespace lowbit {

BandwidthMeasurement measure_read_bandwidth(size_t buffer_bytes, int threads, int reps) {
  const size_t n = std::max<size_t>(buffer_bytes / sizeof(uint64_t), 1024);
  std::unique_ptr<uint64_t[]> buffer(new uint64_t[n]);
  // First touch from the threads that will read, so pages land near them.
#pragma omp parallel for num_threads(threads) schedule(static)
  for (size_t i = 0; i < n; ++i) buffer[i] = i;

  BandwidthMeasurement m;
  m.buffer_bytes = n * sizeof(uint64_t);
  m.threads = threads;
  volatile uint64_t sink = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t total = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(^ : total)
    for (size_t i = 0; i < n; ++i) total ^= buffer[i];
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink ^ total;
    m.bytes_per_s = std::max(m.bytes_per_s, static_cast<double>(m.buffer_bytes) / s);
  }
  return m;
}

}  // namespace lowbit
