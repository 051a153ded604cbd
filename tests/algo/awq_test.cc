#include "algo/awq.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "algo/gptq.h"
#include "algo/rtn.h"
#include "io/gptq_pack.h"
#include "support/synthetic_layer.h"
#include "util/error.h"

namespace lowbit {
namespace {

using testing::correlated_inputs;
using testing::gaussian;

constexpr int64_t kIn = 256, kTokens = 512;

// What the quantized group computes on the original input: dequant(Q) diag(1/s).
std::vector<float> effective_weights(const QuantizedLinear& ql, const std::vector<float>& s) {
  std::vector<float> w = ql.dequantize();
  for (int64_t o = 0; o < ql.n_out; ++o)
    for (int64_t i = 0; i < ql.n_in; ++i) w[o * ql.n_in + i] /= s[i];
  return w;
}

struct OutlierGroup {
  std::vector<float> x, w0, w1;
  std::vector<AwqLinear> linears() const { return {{w0.data(), 64}, {w1.data(), 32}}; }
};

OutlierGroup outlier_group(uint32_t seed) {
  OutlierGroup g{correlated_inputs(kTokens, kIn, seed), gaussian(64 * kIn, 0.05f, seed + 1),
                 gaussian(32 * kIn, 0.05f, seed + 2)};
  const int64_t outliers[] = {3, 77, 150, 200, 201};
  float f = 10.f;
  for (int64_t j : outliers) testing::scale_column(g.x, kIn, j, f += 8.f);
  return g;
}

TEST(Awq, ScaleZeroByHand) {
  const float x[] = {0.5f, 2.f, 3.5f};  // asymmetric, range not widened to 0: scale 3/15 = 0.2, zero -round(2.5)
  ScaleZero p = awq_scale_zero(x, 3, 4, false);
  EXPECT_FLOAT_EQ(p.scale, 0.2f);
  EXPECT_FLOAT_EQ(p.zero, 0.f);  // -round(0.5 / 0.2 = 2.5) = -2, clamped to 0
  const float y[] = {-1.f, 0.5f};
  p = awq_scale_zero(y, 2, 4, false);
  EXPECT_FLOAT_EQ(p.scale, 0.1f);
  EXPECT_FLOAT_EQ(p.zero, 10.f);
  p = awq_scale_zero(y, 2, 4, true);
  EXPECT_FLOAT_EQ(p.scale, 1.f / 7.f);
  EXPECT_FLOAT_EQ(p.zero, 8.f);
}

TEST(Awq, FoldingKeepsTheFunction) {
  // y = (W diag(s)) (diag(1/s) norm(x)): folding 1/s into the norm weight and s into W changes nothing.
  const int64_t n = 16, n_out = 4;
  auto w = gaussian(n_out * n, 1.f, 1);
  auto norm_w = gaussian(n, 1.f, 2);
  auto norm_b = gaussian(n, 1.f, 3);
  std::vector<float> s(n);
  for (int64_t i = 0; i < n; ++i) s[i] = 0.5f + 0.25f * static_cast<float>(i);
  const auto x = gaussian(n, 1.f, 4);
  auto apply = [&](const std::vector<float>& W, const std::vector<float>& nw, const std::vector<float>& nb) {
    std::vector<float> h(n), y(n_out, 0.f);
    for (int64_t i = 0; i < n; ++i) h[i] = x[i] * nw[i] + nb[i];
    for (int64_t o = 0; o < n_out; ++o)
      for (int64_t i = 0; i < n; ++i) y[o] += W[o * n + i] * h[i];
    return y;
  };
  const auto before = apply(w, norm_w, norm_b);
  scale_input_columns(w.data(), n_out, n, s.data());
  fold_scales_into_norm(norm_w.data(), norm_b.data(), n, s.data());
  const auto after = apply(w, norm_w, norm_b);
  for (int64_t o = 0; o < n_out; ++o) EXPECT_NEAR(after[o], before[o], 1e-4f * (1.f + std::fabs(before[o])));

  // Previous Linear variant: its output rows are divided by s.
  auto prev = gaussian(n * 3, 1.f, 5);
  auto prev_b = gaussian(n, 1.f, 6);
  const auto prev0 = prev;
  fold_scales_into_linear_rows(prev.data(), prev_b.data(), n, 3, s.data());
  EXPECT_FLOAT_EQ(prev[5 * 3 + 2] * s[5], prev0[5 * 3 + 2]);
}

TEST(Awq, BeatsRtnWithOutlierChannels) {
  const OutlierGroup g = outlier_group(100);
  const auto linears = g.linears();
  AwqOptions opt;
  opt.quant.group_size = 64;
  for (bool duo : {false, true}) {
    opt.duo_scaling = duo;
    opt.clip = false;
    const AwqGroupResult r = awq_quantize_group(linears, kIn, g.x.data(), kTokens, opt);
    ASSERT_EQ(r.layers.size(), 2u);
    EXPECT_GT(r.scale.best_ratio, 0.0);
    EXPECT_EQ(r.scale.history.size(), 20u);
    // The outlier channels get the largest scales.
    EXPECT_GT(r.scale.scales[77], 2.f * r.scale.scales[78]);
    const std::vector<const std::vector<float>*> ws = {&g.w0, &g.w1};
    for (size_t k = 0; k < 2; ++k) {
      const auto& w = *ws[k];
      const int64_t n_out = linears[k].n_out;
      const auto weff = effective_weights(r.layers[k], r.scale.scales);
      const double e_awq = reconstruction_error(w.data(), weff.data(), n_out, kIn, g.x.data(), kTokens);
      const auto rtn = rtn_quantize(w.data(), n_out, kIn, opt.quant).dequantize();
      const double e_rtn = reconstruction_error(w.data(), rtn.data(), n_out, kIn, g.x.data(), kTokens);
      EXPECT_LT(e_awq, 0.5 * e_rtn) << "duo " << duo << " linear " << k;
    }
  }
}

TEST(Awq, ClipNeverHurtsItsObjectiveAndShrinksOutlierWeights) {
  // Row 0, group 0 has one huge weight on a channel whose input is tiny: clipping it costs little output error
  // and buys resolution for the other weights.
  const int64_t n_out = 8, n_in = 64;
  auto x = correlated_inputs(256, n_in, 7);
  testing::scale_column(x, n_in, 9, 0.01f);
  auto w = gaussian(n_out * n_in, 0.05f, 8);
  w[9] = 2.f;
  AwqOptions opt;
  opt.quant.group_size = 32;
  const auto max_val = awq_search_clip(w.data(), n_out, n_in, x.data(), 256, opt);
  ASSERT_EQ(max_val.size(), static_cast<size_t>(n_out * 2));
  EXPECT_FLOAT_EQ(max_val[0], 2.f * 0.55f);  // the grid's last shrink: 1 - 9/20 (i < 0.5 * 20)
  auto clipped = w;
  awq_apply_clip(clipped.data(), n_out, n_in, 32, max_val);
  const auto e_clip = awq_pseudo_quantize(clipped.data(), n_out, n_in, opt.quant).dequantize();
  const auto e_plain = awq_pseudo_quantize(w.data(), n_out, n_in, opt.quant).dequantize();
  const double err_clip = reconstruction_error(w.data(), e_clip.data(), n_out, n_in, x.data(), 256);
  const double err_plain = reconstruction_error(w.data(), e_plain.data(), n_out, n_in, x.data(), 256);
  EXPECT_LT(err_clip, err_plain);
  for (int64_t k = 0; k < n_out * 2; ++k) {
    float org = 0.f;
    for (int64_t i = 0; i < 32; ++i) org = std::max(org, std::fabs(w[(k / 2) * n_in + (k % 2) * 32 + i]));
    EXPECT_LE(max_val[k], org);
    EXPECT_GE(max_val[k], 0.55f * org * 0.999f);
  }
}

TEST(Awq, CustomLossPicksItsRatio) {
  const OutlierGroup g = outlier_group(200);
  const auto linears = g.linears();
  AwqOptions opt;
  int calls = 0;
  // A loss that only likes the 11th candidate (ratio 0.5).
  AwqLossFn loss = [&](const std::vector<std::vector<float>>& cand) {
    EXPECT_EQ(cand.size(), 2u);
    return std::fabs(static_cast<double>(calls++) - 10.0);
  };
  const AwqScaleResult r = awq_search_scales(linears, kIn, g.x.data(), kTokens, opt, loss);
  EXPECT_EQ(calls, 20);
  EXPECT_DOUBLE_EQ(r.best_ratio, 0.5);
}

TEST(Awq, PacksAndIsDeterministic) {
  const OutlierGroup g = outlier_group(300);
  const auto linears = g.linears();
  AwqOptions opt;  // w4 g128, duo scaling, clip
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const AwqGroupResult a = awq_quantize_group(linears, kIn, g.x.data(), kTokens, opt);
  omp_set_num_threads(2);
  const AwqGroupResult b = awq_quantize_group(linears, kIn, g.x.data(), kTokens, opt);
  omp_set_num_threads(saved);
  EXPECT_EQ(a.scale.scales, b.scale.scales);
  EXPECT_EQ(a.clip_max, b.clip_max);
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(a.layers[k].q, b.layers[k].q);
    EXPECT_EQ(a.layers[k].scales, b.layers[k].scales);
    const AwqPacked p = pack_awq_gemm(a.layers[k]);
    EXPECT_EQ(p.n_groups, 2);
    EXPECT_EQ(unpack_awq_gemm(p).q, a.layers[k].q);
  }
}

TEST(Awq, RejectsEmptyGroup) {
  AwqOptions opt;
  const float x[4] = {};
  EXPECT_THROW(awq_search_scales({}, 4, x, 1, opt), Error);
}

}  // namespace
}  // namespace lowbit
