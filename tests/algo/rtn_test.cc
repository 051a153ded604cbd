#include "algo/rtn.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "util/error.h"

namespace lowbit {
namespace {

TEST(IntQuant, FindParamsAsymmetricByHand) {
  // min -1, max 2 at 2 bits: scale 3/3 = 1, zero round(1/1) = 1.
  const float x[] = {-1.f, 0.5f, 2.f, 1.2f};
  ScaleZero p = find_scale_zero(x, 4, 2, false, false);
  EXPECT_FLOAT_EQ(p.scale, 1.f);
  EXPECT_FLOAT_EQ(p.zero, 1.f);
  EXPECT_EQ(quantize_value(0.5f, p, 3), 1);  // round(0.5) = 0 (half to even) + 1
  EXPECT_EQ(quantize_value(1.5f, p, 3), 3);  // round(1.5) = 2, + 1
  EXPECT_EQ(quantize_value(5.f, p, 3), 3);   // clamped
}

TEST(IntQuant, FindParamsSymmetricAndDegenerate) {
  const float x[] = {-3.f, 1.f};
  ScaleZero p = find_scale_zero(x, 2, 4, true, false);
  EXPECT_FLOAT_EQ(p.scale, 6.f / 15.f);
  EXPECT_FLOAT_EQ(p.zero, 8.f);
  // All non-negative with sym: the reference keeps min at 0 (range [0, max]) yet zero at 8.
  const float y[] = {0.f, 1.5f};
  p = find_scale_zero(y, 2, 4, true, false);
  EXPECT_FLOAT_EQ(p.scale, 1.5f / 15.f);
  EXPECT_FLOAT_EQ(p.zero, 8.f);
  // All-zero group: range [-1, 1].
  const float z[] = {0.f, 0.f, 0.f};
  p = find_scale_zero(z, 3, 4, false, false);
  EXPECT_FLOAT_EQ(p.scale, 2.f / 15.f);
  EXPECT_FLOAT_EQ(p.zero, 7.f);  // float32: 2/15 rounds up, so 1 / scale = 7.4999995 -> 7 (as torch)
  // Positive-only asymmetric: range widened to include 0 -> zero 0.
  const float w[] = {1.f, 4.f};
  p = find_scale_zero(w, 2, 2, false, false);
  EXPECT_FLOAT_EQ(p.scale, 4.f / 3.f);
  EXPECT_FLOAT_EQ(p.zero, 0.f);
}

TEST(IntQuant, MseShrinksOutlierRange) {
  // One outlier: shrinking the range lowers the sum of |err|^2.4 over the many small values.
  std::vector<float> x(64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.01f * static_cast<float>(static_cast<int>(i % 17) - 8);
  x[3] = 1.f;
  const ScaleZero plain = find_scale_zero(x.data(), 64, 3, false, false);
  const ScaleZero mse = find_scale_zero(x.data(), 64, 3, false, true);
  EXPECT_LT(mse.scale, plain.scale);
  auto err = [&](ScaleZero p) {
    double e = 0;
    for (float v : x) e += std::pow(std::fabs(dequantize_value(quantize_value(v, p, 7), p) - v), 2.4);
    return e;
  };
  EXPECT_LE(err(mse), err(plain));
}

TEST(Rtn, GroupsAndDequantize) {
  // Two rows, 4 inputs, groups of 2, 2 bits asymmetric: each group gets its own range.
  const float w[] = {-1.f, 2.f, 0.f, 3.f,  //
                     0.f, 0.f, -0.3f, 0.6f};
  IntQuantConfig cfg;
  cfg.bits = 2;
  cfg.group_size = 2;
  const QuantizedLinear ql = rtn_quantize(w, 2, 4, cfg);
  ASSERT_EQ(ql.n_groups(), 2);
  EXPECT_EQ(ql.g_idx, (std::vector<int32_t>{0, 0, 1, 1}));
  EXPECT_FLOAT_EQ(ql.scales[0 * 2 + 0], 1.f);   // group 0 row 0: [-1, 2] / 3
  EXPECT_FLOAT_EQ(ql.scales[1 * 2 + 0], 1.f);   // group 1 row 0: [0, 3] / 3
  EXPECT_FLOAT_EQ(ql.scales[0 * 2 + 1], 2.f / 3.f);  // all-zero group: [-1, 1] / 3
  EXPECT_FLOAT_EQ(ql.scales[1 * 2 + 1], 0.3f);  // [-0.3, 0.6] / 3
  const auto d = ql.dequantize();
  EXPECT_FLOAT_EQ(d[0], -1.f);
  EXPECT_FLOAT_EQ(d[1], 2.f);
  EXPECT_FLOAT_EQ(d[3], 3.f);
  EXPECT_NEAR(d[4 + 2], -0.3f, 1e-6);
  EXPECT_NEAR(d[4 + 3], 0.6f, 1e-6);
  EXPECT_FLOAT_EQ(d[4 + 0], 0.f);  // zero is exactly representable: q = zero
}

TEST(Rtn, RejectsBadConfig) {
  const float w[4] = {};
  IntQuantConfig cfg;
  cfg.bits = 9;
  EXPECT_THROW(rtn_quantize(w, 1, 4, cfg), Error);
  cfg.bits = 4;
  cfg.group_size = 0;
  EXPECT_THROW(rtn_quantize(w, 1, 4, cfg), Error);
}

}  // namespace
}  // namespace lowbit
