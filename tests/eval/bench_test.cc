// lowbit bench's figures: each generation repetition against the bandwidth measured just before it.
#include "eval/bench.h"

#include <gtest/gtest.h>

namespace lowbit {
namespace {

TEST(Bench, RooflineFractionPairsEachRepetitionWithItsProbe) {
  BenchTest tg{"tg32", 32, {40.0, 50.0, 30.0}, {40e9, 50e9, 20e9}};
  // 1e9 bytes per token: bounds 40, 50 and 20 t/s, so the repetitions reached 1.0, 1.0 and 1.5 of theirs. Against
  // the mean bandwidth (36.7 GB/s) the mean speed (40 t/s) would read 1.09: the pairing is what is tested.
  const RooflineFraction f = roofline_fraction(tg, 1e9);
  EXPECT_DOUBLE_EQ(f.median, 1.0);
  EXPECT_DOUBLE_EQ(f.min, 1.0);
  EXPECT_DOUBLE_EQ(f.max, 1.5);
  EXPECT_DOUBLE_EQ(f.bandwidth_median, 40e9);
  EXPECT_EQ(f.round_trip_median, 0.0);  // one thread: none measured

  tg.round_trip_ns = {600.0, 150.0, 450.0};
  EXPECT_DOUBLE_EQ(roofline_fraction(tg, 1e9).round_trip_median, 450.0);

  tg.tokens_per_s = {10.0, 30.0};  // an even count: the median is the mean of the middle two
  tg.bandwidth = {20e9, 20e9};
  const RooflineFraction even = roofline_fraction(tg, 1e9);
  EXPECT_DOUBLE_EQ(even.median, 1.0);
  EXPECT_DOUBLE_EQ(even.min, 0.5);
  EXPECT_DOUBLE_EQ(even.max, 1.5);
}

TEST(Bench, RooflineFractionWithoutProbesIsZero) {
  const BenchTest tg{"tg8", 8, {40.0, 50.0}, {}};
  const RooflineFraction f = roofline_fraction(tg, 1e9);
  EXPECT_EQ(f.median, 0.0);
  EXPECT_EQ(f.bandwidth_median, 0.0);
}

}  // namespace
}  // namespace lowbit
