// The bandwidth probe behind `lowbit bench --roofline`.
#include "eval/roofline.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <vector>

#include "support/simd_targets.h"

namespace lowbit {
namespace {

// The read loop sees every word, on every target, for lengths that leave a tail after its four vectors.
TEST(Roofline, ProbeReadsEveryWord) {
  std::vector<uint64_t> words(1000);
  for (size_t i = 0; i < words.size(); ++i) words[i] = (i + 1) * 0x9E3779B97F4A7C15ULL;
  for_each_simd_target([&](int64_t target) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{31}, size_t{32}, size_t{33}, size_t{999}}) {
      uint64_t want = 0;
      for (size_t i = 0; i < n; ++i) want ^= words[i];
      for (StreamRead read : {StreamRead::kPlain, StreamRead::kPageStarts, StreamRead::kNearLines}) {
        EXPECT_EQ(xor_of_words(words.data(), n, read), want) << n << " words on " << hwy::TargetName(target);
        if (n) {
          EXPECT_EQ(xor_of_words(words.data() + 1, n - 1, read), want ^ words[0]) << "unaligned, " << n;
        }
      }
    }
  });
}

TEST(Roofline, MeasurementAndBound) {
  // One probe measures as often as asked, on the buffer it made once.
  const BandwidthProbe probe(size_t{8} << 20, 2);
  for (int reps : {2, 1, 1}) {
    const BandwidthMeasurement m = probe.measure(reps);
    EXPECT_EQ(m.buffer_bytes, size_t{8} << 20);
    EXPECT_EQ(m.threads, 2);
    EXPECT_TRUE(std::isfinite(m.bytes_per_s));
    EXPECT_GT(m.bytes_per_s, 1e8);  // any machine reads 8 MiB faster than 100 MB/s
  }
  EXPECT_DOUBLE_EQ(roofline_tokens_per_s(40e9, 8e8), 50.0);
  EXPECT_EQ(roofline_tokens_per_s(40e9, 0), 0.0);
}

// One figure per thread beyond the first, each a real round trip: a line cannot cross between two cores (or two
// hardware threads of one) and back in under ~20 ns, and one taking a millisecond would mean a wait gone wrong.
TEST(Roofline, ThreadRoundTripPerOtherThread) {
  EXPECT_TRUE(thread_round_trip_ns(1).empty());
  for (int threads : {2, 3}) {
    const std::vector<double> trips = thread_round_trip_ns(threads);
    ASSERT_EQ(trips.size(), static_cast<size_t>(threads - 1));
    for (double ns : trips) {
      EXPECT_GT(ns, 20.0) << threads << " threads";
      EXPECT_LT(ns, 1e6) << threads << " threads";
    }
  }
}

}  // namespace
}  // namespace lowbit
