#include "ops/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>

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

TEST(Elementwise, SiluAndSwiglu) {
  EXPECT_EQ(silu(0), 0);
  EXPECT_NEAR(silu(1), 1 / (1 + std::exp(-1.0)), 1e-7);
  EXPECT_FLOAT_EQ(silu(50), 50);
  float g[2] = {1, -2};
  const float u[2] = {3, 0.5f};
  swiglu(g, u, 2);
  EXPECT_NEAR(g[0], 3 / (1 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(g[1], 0.5 * -2 / (1 + std::exp(2.0)), 1e-6);
}

}  // namespace
}  // namespace lowbit
