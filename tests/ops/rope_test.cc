#include "ops/rope.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "support/simd_targets.h"
#include "util/error.h"

namespace lowbit {
namespace {

TEST(Rope, AdjacentPairsAndNeoxHalvesByHand) {
  const RopeConfig rope;  // theta 10000: head 4 -> inv_freq {1, 0.01}
  const std::vector<float> inv = rope_inv_freq(4, rope);
  ASSERT_EQ(inv.size(), 2u);
  EXPECT_FLOAT_EQ(inv[1], 0.01f);
  for (bool neox : {false, true}) {
    float x[4] = {1, 0, 0, 1};
    rope_rotate(x, 4, 1, inv.data(), neox);
    // The first pair turns by 1 rad, the second by 0.01: adjacent pairs (x0,x1), (x2,x3); NeoX (x0,x2), (x1,x3).
    const int a1 = neox ? 2 : 1, b0 = neox ? 1 : 2;
    EXPECT_NEAR(x[0], std::cos(1.0), 1e-6) << neox;
    EXPECT_NEAR(x[a1], std::sin(1.0), 1e-6) << neox;
    EXPECT_NEAR(x[b0], -std::sin(0.01), 1e-6) << neox;
    EXPECT_NEAR(x[3], std::cos(0.01), 1e-6) << neox;
  }
}

TEST(Rope, AnglesOnceServeEveryHead) {
  const std::vector<float> inv = rope_inv_freq(8, RopeConfig{});
  std::vector<float> cos_sin(8);
  rope_angles(8, 5, inv.data(), cos_sin.data());
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(cos_sin[2 * i], std::cos(5.0f * inv[i])) << i;
    EXPECT_EQ(cos_sin[2 * i + 1], std::sin(5.0f * inv[i])) << i;
  }
  for (bool neox : {false, true}) {
    float once[8] = {0.3f, -1, 2, 0.5f, 1, 1, -0.2f, 0.7f}, each[8];
    std::copy(once, once + 8, each);
    rope_rotate(once, 8, cos_sin.data(), neox);
    rope_rotate(each, 8, 5, inv.data(), neox);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(once[i], each[i]) << neox << " " << i;
    EXPECT_NE(once[0], 0.3f);
  }
}

// A token's heads at once, in SIMD on the targets that have it, give the plain loop's floats bit for bit (this
// file is built without FMA, so each product rounds before the sum): head sizes with and without a vector's rest,
// both pair layouts, on every target.
TEST(Rope, HeadsAtOnceArePlainLoopOnEveryTarget) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  const int targets = for_each_simd_target([&](int64_t target) {
    for (int64_t hd : {4, 6, 40, 64, 72, 128}) {
      const std::vector<float> inv = rope_inv_freq(hd, RopeConfig{});
      std::vector<float> cos_sin(static_cast<size_t>(hd));
      rope_angles(hd, 37, inv.data(), cos_sin.data());
      for (bool neox : {false, true}) {
        constexpr int64_t kHeads = 3;
        std::vector<float> x(static_cast<size_t>(kHeads * hd + 1));
        for (float& v : x) v = normal(rng);
        std::vector<float> want = x;
        for (int64_t h = 0; h < kHeads; ++h)
          for (int64_t i = 0; i < hd / 2; ++i) {
            const float c = cos_sin[static_cast<size_t>(2 * i)], s = cos_sin[static_cast<size_t>(2 * i + 1)];
            const auto ia = static_cast<size_t>(h * hd + (neox ? i : 2 * i));
            const auto ib = static_cast<size_t>(h * hd + (neox ? i + hd / 2 : 2 * i + 1));
            const float a = want[ia], b = want[ib];
            want[ia] = a * c - b * s;
            want[ib] = a * s + b * c;
          }
        rope_rotate_heads(x.data(), kHeads, hd, cos_sin.data(), neox);
        for (size_t i = 0; i < x.size(); ++i)  // the last value is past the heads: untouched
          ASSERT_EQ(std::bit_cast<uint32_t>(x[i]), std::bit_cast<uint32_t>(want[i]))
              << "head size " << hd << (neox ? ", NeoX" : "") << ", value " << i << " on " << hwy::TargetName(target);
      }
    }
  });
  EXPECT_GE(targets, 2);
}

TEST(Rope, DotProductDependsOnlyOnDistance) {
  const std::vector<float> inv = rope_inv_freq(8, RopeConfig{});
  const float q0[8] = {0.3f, -1, 2, 0.5f, 1, 1, -0.2f, 0.7f}, k0[8] = {1, 0.4f, -0.6f, 2, 0, -1, 0.9f, 0.1f};
  auto rotated_dot = [&](int64_t m, int64_t n, bool neox) {
    float q[8], k[8];
    std::copy(q0, q0 + 8, q), std::copy(k0, k0 + 8, k);
    rope_rotate(q, 8, m, inv.data(), neox), rope_rotate(k, 8, n, inv.data(), neox);
    double d = 0;
    for (int i = 0; i < 8; ++i) d += q[i] * k[i];
    return d;
  };
  for (bool neox : {false, true}) EXPECT_NEAR(rotated_dot(7, 3, neox), rotated_dot(14, 10, neox), 1e-5);
}

TEST(Rope, LinearScalingAndFactorsDivideFrequencies) {
  RopeConfig rope;
  rope.scaling = RopeScaling::Linear;
  rope.factor = 4;
  const std::vector<float> factors = {2, 3};
  const std::vector<float> inv = rope_inv_freq(4, rope, factors);
  EXPECT_FLOAT_EQ(inv[0], 1.0f / 8);
  EXPECT_FLOAT_EQ(inv[1], 0.01f / 12);
  const std::vector<float> wrong = {1, 2, 3};
  EXPECT_THROW(rope_inv_freq(4, rope, wrong), Error);
}

TEST(Rope, Llama3FactorsForLlama31Settings) {
  // Llama 3.1 8B: theta 500000, factor 8, low 1, high 4, original 8192, head 128. Highest frequencies are kept,
  // lowest divided by 8; pair 32 lies in the smooth band (wavelength ~4443 between 2048 and 8192).
  ModelConfig c;
  c.n_embd = 4096, c.n_head = 32;
  c.rope.theta = 500000, c.rope.scaling = RopeScaling::Llama3, c.rope.factor = 8;
  c.rope.original_context = 8192;
  const std::vector<float> f = llama3_rope_factors(c);
  ASSERT_EQ(f.size(), 64u);
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[63], 8.0f);
  const double wavelen = 2 * M_PI * std::pow(500000.0, 64.0 / 128), smooth = (8192 / wavelen - 1) / 3;
  EXPECT_NEAR(f[32], 1 / ((1 - smooth) / 8 + smooth), 1e-5);
  EXPECT_GT(f[32], 1.0f);
  EXPECT_LT(f[32], 8.0f);
}

}  // namespace
}  // namespace lowbit
