// The memory-bandwidth bound of token generation: every generated token reads every weight once, so
// tokens/s can never exceed bandwidth / weight bytes. `lowbit bench --roofline` measures the machine's read
// bandwidth and reports the fraction of that bound a model reaches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace lowbit {

struct BandwidthMeasurement {
  double bytes_per_s = 0;  // best of the repetitions
  size_t buffer_bytes = 0;
  int threads = 1;
};

// A buffer much larger than the caches, placed by `threads` threads (OpenMP), and streamed on demand: made once, so
// the bandwidth can be measured again right before each timed run it is compared with. On the shared machines
// here the bandwidth moves by tens of percent from one minute to the next, so a figure taken once, before or after,
// says little about the run beside it.
class BandwidthProbe {
 public:
  explicit BandwidthProbe(size_t buffer_bytes = size_t{1} << 30, int threads = 1);
  // Streams the buffer `reps` times each with and without opening its pages ahead, and keeps the best.
  BandwidthMeasurement measure(int reps) const;
  int threads() const { return threads_; }

 private:
  // Thread i's share of the words starts here, the same in the first touch and the reads.
  size_t share(int i) const { return n_words_ * static_cast<size_t>(i) / static_cast<size_t>(threads_); }
  std::shared_ptr<uint8_t> storage_;
  size_t n_words_;
  int threads_;
};

// How the probe reads its buffer (eval/roofline.cc): nothing prefetched, each 4 KiB page opened ahead, or every line
// into L1 and L2 a little ahead (util/stream_prefetch.h kNearL1Ahead, kNearL2Ahead).
enum class StreamRead { kPlain, kPageStarts, kNearLines };
// The probe's read loop: the XOR of n words (any n, any alignment of 8), read one of those ways.
uint64_t xor_of_words(const uint64_t* words, size_t n, StreamRead read);

// Where the team's threads sit, as the time a cache line takes to go from thread 0 to thread k and back (median of
// batches of round trips), one figure per k in 1..threads-1; empty for one thread. Two threads on one core's two
// hardware threads share its bandwidth and pass lines in a few hundred nanoseconds or less; on two cores they have
// more bandwidth and pay more per line. A VM's guest topology does not say which it got, and here it changed from
// minute to minute, so bench measures it beside each timed run.
std::vector<double> thread_round_trip_ns(int threads);

// tokens/s upper bound for a model reading `bytes_per_token` bytes of weights per generated token.
inline double roofline_tokens_per_s(double bandwidth_bytes_per_s, double bytes_per_token) {
  return bytes_per_token > 0 ? bandwidth_bytes_per_s / bytes_per_token : 0.0;
}

}  // namespace lowbit
