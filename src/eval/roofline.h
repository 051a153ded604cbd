// The memory-bandwidth bound of token generation: every generated token reads every weight once, so
// tokens/s can never exceed bandwidth / weight bytes. `lowbit bench --roofline` measures the machine's read
// bandwidth and reports the fraction of that bound a model reaches.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowbit {

struct BandwidthMeasurement {
  double bytes_per_s = 0;  // best of the repetitions
  size_t buffer_bytes = 0;
  int threads = 1;
};

// Streams a buffer much larger than the caches `reps` times with `threads` threads (OpenMP) and keeps the best.
BandwidthMeasurement measure_read_bandwidth(size_t buffer_bytes = size_t{1} << 30, int threads = 1, int reps = 5);

// The probe's read loop: the XOR of n words (any n, any alignment of 8).
uint64_t xor_of_words(const uint64_t* words, size_t n);

// tokens/s upper bound for a model reading `bytes_per_token` bytes of weights per generated token.
inline double roofline_tokens_per_s(double bandwidth_bytes_per_s, double bytes_per_token) {
  return bytes_per_token > 0 ? bandwidth_bytes_per_s / bytes_per_token : 0.0;
}

}  // namespace lowbit
