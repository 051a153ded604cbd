#include "ops/elementwise.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "support/plain_softmax.h"
#include "support/simd_targets.h"

namespace lowbit {
namespace {

TEST(Elementwise, RmsNormByHand) {
  const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 0.5f};
  float out[4];
  rms_norm(x, w, 4, 0.0f, out);  // mean square 7.5
  const float r = 1 / std::sqrt(7.5f);
  EXPECT_FLOAT_EQ(out[0], r);
  EXPECT_FLOAT_EQ(out[2], 6 * r);
  EXPECT_FLOAT_EQ(out[3], 2 * r);
  float same[4] = {1, 2, 3, 4};
  rms_norm(same, w, 4, 0.0f, same);  // in place
  EXPECT_FLOAT_EQ(same[2], 6 * r);
}

// The sum of squares in eight parts and the scaling give the scalar definition's bits on every target (the lanes
// are the parts), for lengths around the eight and the vector widths.
TEST(Elementwise, RmsNormGivesTheScalarDefinitionOnEveryTarget) {
  std::vector<float> x, w;
  for (int i = 0; i < 2085; ++i) {
    // Each of the eight parts at its own scale, so that any other order of the sums rounds differently.
    x.push_back(std::ldexp(1.0f + static_cast<float>(i % 97) / 97, (i % 8) * 6 - 24 + (i * 7) % 11) * (i % 3 ? 1.0f : -1.0f));
    w.push_back(0.25f + static_cast<float>(i % 5) * 0.3f);
  }
  const auto sum = [&](int64_t n) {
    double part[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; ++k) part[k] += static_cast<double>(x[i + k]) * x[i + k];
    for (; i < n; ++i) part[0] += static_cast<double>(x[i]) * x[i];
    return ((part[0] + part[4]) + (part[2] + part[6])) + ((part[1] + part[5]) + (part[3] + part[7]));
  };
  const auto want = [&](int64_t n) {
    const double ss = sum(n);
    const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + 1e-5f));
    std::vector<float> out(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) out[k] = x[k] * scale * w[k];
    return out;
  };
  const int targets = for_each_simd_target([&](int64_t target) {
    for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 31, 33, 2048, 2085}) {
      ASSERT_EQ(std::bit_cast<uint64_t>(sum_of_squares(x.data(), n)), std::bit_cast<uint64_t>(sum(n)))
          << n << " values on " << hwy::TargetName(target);
      std::vector<float> got(static_cast<size_t>(n));
      rms_norm(x.data(), w.data(), n, 1e-5f, got.data());
      const std::vector<float> expected = want(n);
      for (int64_t k = 0; k < n; ++k)
        ASSERT_EQ(std::bit_cast<uint32_t>(got[k]), std::bit_cast<uint32_t>(expected[k])) << n << " values, " << k << " on " << hwy::TargetName(target);
    }
  });
  EXPECT_GE(targets, 2);
}

TEST(Elementwise, SoftmaxByHandAndStableForLargeValues) {
  float p[3] = {0, std::log(2.0f), std::log(3.0f)};
  softmax(p, 3);
  EXPECT_NEAR(p[0], 1.0 / 6, 1e-7);
  EXPECT_NEAR(p[1], 2.0 / 6, 1e-7);
  EXPECT_NEAR(p[2], 3.0 / 6, 1e-7);
  float big[2] = {1000, 1000};
  softmax(big, 2);
  EXPECT_FLOAT_EQ(big[0], 0.5f);
}

// The lanes' exponentials and the sum in sixteen parts give the header's definition bit for bit on every target,
// for lengths around the parts and the vector widths (the tails), values spread so the order of the adds shows.
// The softmax of x's first n values, for each n in `lengths`, equals plain_softmax's bit for bit on every target.
void ExpectSoftmaxIsTheDefinitionOnEveryTarget(const std::vector<float>& x, std::initializer_list<int64_t> lengths) {
  const int targets = for_each_simd_target([&](int64_t target) {
    for (int64_t n : lengths) {
      ASSERT_LE(n, static_cast<int64_t>(x.size()));
      std::vector<float> got(x.begin(), x.begin() + n), want = got;
      softmax(got.data(), n);
      plain_softmax(want.data(), n);
      for (int64_t k = 0; k < n; ++k)
        ASSERT_EQ(std::bit_cast<uint32_t>(got[k]), std::bit_cast<uint32_t>(want[k]))
            << n << " values, " << k << " on " << hwy::TargetName(target);
    }
  });
  EXPECT_GE(targets, 2);
}

TEST(Elementwise, SoftmaxGivesTheDefinitionOnEveryTarget) {
  std::vector<float> x;
  for (int i = 0; i < 1061; ++i) x.push_back(static_cast<float>((i * 37) % 101) * 0.173f - static_cast<float>(i % 16) * 1.9f);
  ExpectSoftmaxIsTheDefinitionOnEveryTarget(x, {1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 100, 1024, 1061});
}

// Scores far below the max (under fixed_exp's low clamp once the max is taken away), and infinities, give the
// definition bit for bit too: the lanes' exponential of x - max leaves out the upper clamp, which x - max <= 0 never
// reaches, and rounds n without a float-to-int conversion.
TEST(Elementwise, SoftmaxOfAWideSpreadAndInfinitiesGivesTheDefinition) {
  std::vector<float> wide;
  for (int i = 0; i < 203; ++i) wide.push_back(10.0f - static_cast<float>((i * 53) % 203) * 1.47f);  // 10 .. -287
  std::vector<float> with_minus_inf = wide, with_plus_inf = wide, near_clamp;
  with_minus_inf[5] = with_minus_inf[77] = -INFINITY;
  with_plus_inf[40] = INFINITY;
  const float around_the_clamp[] = {0.0f, -87.3f, std::nextafter(-87.3f, 0.0f), std::nextafter(-87.3f, -100.0f),
                                    -87.2f, -87.4f, -86.0f, -88.0f};  // x - max either side of fixed_exp's -87.3
  for (int i = 0; i < 64; ++i) near_clamp.push_back(around_the_clamp[(i * 3) % 8]);
  const std::vector<float> all_minus_inf(37, -INFINITY);
  for (const std::vector<float>* x : {&wide, &with_minus_inf, &with_plus_inf, &near_clamp})  // 64 or more values
    ExpectSoftmaxIsTheDefinitionOnEveryTarget(*x, {1, 15, 16, 33, 64, static_cast<int64_t>(x->size())});
  ExpectSoftmaxIsTheDefinitionOnEveryTarget(all_minus_inf, {1, 15, 16, 33, 37});
  // The wide row's smallest weights are exactly zero (more than 87.3 below the max), its largest is not.
  std::vector<float> w = wide;
  softmax(w.data(), static_cast<int64_t>(w.size()));
  EXPECT_EQ(*std::min_element(w.begin(), w.end()), 0.0f);
  EXPECT_GT(*std::max_element(w.begin(), w.end()), 0.0f);
}

TEST(Elementwise, SiluAndSwiglu) {
  EXPECT_EQ(silu(0), 0);
  EXPECT_NEAR(silu(1), 1 / (1 + std::exp(-1.0)), 1e-7);
  EXPECT_FLOAT_EQ(silu(50), 50);
  EXPECT_EQ(silu(100), 100);
  EXPECT_EQ(silu(-100), 0);
  EXPECT_TRUE(std::isnan(silu(NAN)));
  float g[2] = {1, -2};
  const float u[2] = {3, 0.5f};
  swiglu(g, u, 2);
  EXPECT_NEAR(g[0], 3 / (1 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(g[1], 0.5 * -2 / (1 + std::exp(2.0)), 1e-6);
}

// fixed_exp within 2 ulp of e^x over the range it computes (checked in double, every 1/64 and near the ends).
TEST(Elementwise, FixedExpIsWithinTwoUlp) {
  for (double x = -87.25; x <= 88.25; x += 1.0 / 64) {
    const double want = std::exp(x);
    const float got = fixed_exp(static_cast<float>(x));
    const double ulp = std::ldexp(1.0, std::ilogb(static_cast<float>(want)) - 23);
    ASSERT_LE(std::fabs(got - want), 2 * ulp) << "x = " << x;
  }
  EXPECT_EQ(fixed_exp(0), 1.0f);
  EXPECT_EQ(fixed_exp(-90), 0.0f);
  EXPECT_EQ(fixed_exp(90), INFINITY);
}

// The SIMD lanes give the scalar silu's bits on every target, for gates across the whole float range and the edge
// cases (signed zeros, the clamp bounds and either side, infinities, NaN, subnormals), with tails of every length.
TEST(Elementwise, SwigluLanesEqualTheScalarOnEveryTarget) {
  std::vector<float> gates;
  for (float v = -120; v <= 120; v += 0.013f) gates.push_back(v);
  for (float v : {0.0f, -0.0f, 87.3f, -87.3f, 88.3f, -88.3f, std::nextafter(87.3f, 0.0f), std::nextafter(-88.3f, 0.0f),
                  std::nextafter(88.3f, 100.0f), INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f, 3.4e38f, -3.4e38f})
    gates.push_back(v);
  for (uint32_t bits = 0; bits < 0xFFFFFFFFu - 0x00FFFFFFu; bits += 0x00FFFFFFu) gates.push_back(std::bit_cast<float>(bits));
  std::vector<float> ups(gates.size());
  for (size_t i = 0; i < ups.size(); ++i) ups[i] = 0.5f + static_cast<float>(i % 7);
  std::vector<float> want(gates.size());
  for (size_t i = 0; i < gates.size(); ++i) want[i] = silu(gates[i]) * ups[i];
  const int targets = for_each_simd_target([&](int64_t target) {
    for (size_t n : {gates.size(), size_t{1}, size_t{7}, size_t{15}, size_t{17}, size_t{33}}) {
      std::vector<float> got(gates.begin(), gates.begin() + static_cast<std::ptrdiff_t>(n));
      swiglu(got.data(), ups.data(), static_cast<int64_t>(n));
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
            << "gate " << gates[i] << " (" << std::hex << std::bit_cast<uint32_t>(gates[i]) << ") on " << hwy::TargetName(target);
    }
  });
  EXPECT_GE(targets, 2);
}

}  // namespace
}  // namespace lowbit
