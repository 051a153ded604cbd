#include "algo/gptq.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "algo/rtn.h"
#include "support/synthetic_layer.h"
#include "util/error.h"

namespace lowbit {
namespace {

using testing::correlated_inputs;
using testing::gaussian;

constexpr int64_t kIn = 256, kOut = 64, kTokens = 1024;

IntQuantConfig config(int bits, int group_size, bool desc_act = false) {
  IntQuantConfig cfg;
  cfg.bits = bits;
  cfg.group_size = group_size;
  cfg.desc_act = desc_act;
  return cfg;
}

HessianAccumulator hessian_of(const std::vector<float>& x, int64_t n_in) {
  HessianAccumulator h(n_in);
  h.add_batch(x.data(), static_cast<int64_t>(x.size()) / n_in);
  return h;
}

double error_of(const std::vector<float>& w, const QuantizedLinear& ql, const std::vector<float>& x) {
  const std::vector<float> wq = ql.dequantize();
  return reconstruction_error(w.data(), wq.data(), ql.n_out, ql.n_in, x.data(),
                              static_cast<int64_t>(x.size()) / ql.n_in);
}

TEST(Hessian, RunningAverageEqualsTwoOverNXtX) {
  const int64_t n = 8, t = 10;
  const auto x = gaussian(t * n, 1.f, 3);
  HessianAccumulator split(n);
  split.add_batch(x.data(), 3);
  split.add_batch(x.data() + 3 * n, 7);
  EXPECT_EQ(split.n_samples(), 10);
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < n; ++b) {
      double s = 0;
      for (int64_t k = 0; k < t; ++k) s += static_cast<double>(x[k * n + a]) * x[k * n + b];
      EXPECT_NEAR(split.matrix()[a * n + b], 2.0 / t * s, 1e-12) << a << " " << b;
    }
}

// Wide enough for several column chunks of the BLAS accumulation (the last one partial): every entry equals the
// double sum, the matrix is exactly symmetric, and the thread count changes no bit.
TEST(Hessian, ChunkedAccumulationIsExactlySymmetricAndThreadInvariant) {
  const int64_t n = 150, t = 37;
  const auto x = gaussian(t * n, 1.f, 5);
  auto accumulate = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    HessianAccumulator h(n);
    h.add_batch(x.data(), 20);
    h.add_batch(x.data() + 20 * n, t - 20);
    omp_set_num_threads(saved);
    return h;
  };
  const HessianAccumulator one = accumulate(1);
  const HessianAccumulator three = accumulate(3);
  EXPECT_EQ(one.matrix(), three.matrix());
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < n; ++b) {
      ASSERT_EQ(one.matrix()[a * n + b], one.matrix()[b * n + a]) << a << " " << b;
      double s = 0;
      for (int64_t k = 0; k < t; ++k) s += static_cast<double>(x[k * n + a]) * x[k * n + b];
      ASSERT_NEAR(one.matrix()[a * n + b], 2.0 / t * s, 1e-12 * (1 + std::fabs(s))) << a << " " << b;
    }
}

TEST(Gptq, IdentityHessianIsRtnWithKnownLoss) {
  // H = 4 I and no damping: Hinv's upper factor is I / 2, no error is propagated, so GPTQ rounds like RTN and the
  // loss is sum (w - q)^2 / 0.5^2 / 2.
  const int64_t n_out = 8, n_in = 64;
  const auto w = gaussian(n_out * n_in, 0.1f, 5);
  std::vector<double> h(static_cast<size_t>(n_in * n_in), 0.0);
  for (int64_t i = 0; i < n_in; ++i) h[i * n_in + i] = 4.0;
  const auto hess = HessianAccumulator::from_matrix(n_in, h, 1);
  GptqOptions opt;
  opt.damp_percent = 0;
  for (int gs : {-1, 16}) {
    const IntQuantConfig cfg = config(4, gs);
    const GptqResult r = gptq_quantize(w.data(), n_out, n_in, hess, cfg, opt);
    const QuantizedLinear rtn = rtn_quantize(w.data(), n_out, n_in, cfg);
    EXPECT_EQ(r.layer.q, rtn.q);
    EXPECT_EQ(r.layer.scales, rtn.scales);
    const auto wq = rtn.dequantize();
    double loss = 0;
    for (size_t k = 0; k < w.size(); ++k) loss += 2.0 * (w[k] - wq[k]) * (w[k] - wq[k]);
    EXPECT_NEAR(r.loss, loss, 1e-5 * loss);
    EXPECT_EQ(r.damp_percent, 0.0);
  }
}

TEST(Gptq, BeatsRtnOnCorrelatedInputs) {
  const auto x = correlated_inputs(kTokens, kIn, 11);
  const auto w = gaussian(kOut * kIn, 0.05f, 12);
  const auto h = hessian_of(x, kIn);
  for (int bits : {4, 3}) {
    for (int gs : {-1, 128}) {
      const IntQuantConfig cfg = config(bits, gs);
      const double e_rtn = error_of(w, rtn_quantize(w.data(), kOut, kIn, cfg), x);
      const GptqResult r = gptq_quantize(w.data(), kOut, kIn, h, cfg);
      const double e_gptq = error_of(w, r.layer, x);
      EXPECT_LT(e_gptq, 0.8 * e_rtn) << bits << " bits, group " << gs;
      EXPECT_GT(r.loss, 0);
      EXPECT_EQ(r.damp_percent, 0.01);
    }
  }
}

// GPTQ written the slow textbook way (OBS with a fixed column order, in double): quantize column j, spread its
// error over the later columns with the current inverse Hessian, then remove j from that inverse. The Cholesky
// / lazy batch formulation must give the same integers.
std::vector<uint8_t> naive_gptq(std::vector<double> w, int64_t n_out, int64_t n, std::vector<double> h,
                                double damp_percent, int bits, int64_t group, double& loss) {
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += h[i * n + i] / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) h[i * n + i] += damp_percent * mean;
  // Inverse by Gauss-Jordan.
  std::vector<double> a = h, inv(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) inv[i * n + i] = 1.0;
  for (int64_t c = 0; c < n; ++c) {
    const double piv = a[c * n + c];
    for (int64_t k = 0; k < n; ++k) {
      a[c * n + k] /= piv;
      inv[c * n + k] /= piv;
    }
    for (int64_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = a[r * n + c];
      for (int64_t k = 0; k < n; ++k) {
        a[r * n + k] -= f * a[c * n + k];
        inv[r * n + k] -= f * inv[c * n + k];
      }
    }
  }
  std::vector<uint8_t> q(static_cast<size_t>(n_out * n));
  std::vector<ScaleZero> p(static_cast<size_t>(n_out));
  loss = 0;
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t o = 0; o < n_out; ++o) {
      if (j % group == 0) {
        std::vector<float> seg;
        for (int64_t k = j; k < std::min(n, j + group); ++k) seg.push_back(static_cast<float>(w[o * n + k]));
        p[o] = find_scale_zero(seg.data(), static_cast<int64_t>(seg.size()), bits, false, false);
      }
      const float wj = static_cast<float>(w[o * n + j]);
      const int qv = quantize_value(wj, p[o], (1 << bits) - 1);
      q[o * n + j] = static_cast<uint8_t>(qv);
      const double err = w[o * n + j] - dequantize_value(qv, p[o]);
      const double d = inv[j * n + j];
      loss += err * err / d / 2;
      for (int64_t k = j + 1; k < n; ++k) w[o * n + k] -= err / d * inv[j * n + k];
    }
    const double d = inv[j * n + j];
    for (int64_t r = j + 1; r < n; ++r)
      for (int64_t k = j + 1; k < n; ++k) inv[r * n + k] -= inv[r * n + j] * inv[j * n + k] / d;
  }
  return q;
}

TEST(Gptq, AgreesWithTextbookObs) {
  const int64_t n = 64, n_out = 8;
  const auto x = correlated_inputs(256, n, 91);
  const auto w = gaussian(n_out * n, 0.05f, 92);
  const auto h = hessian_of(x, n);
  for (int64_t group : {int64_t{64}, int64_t{16}}) {
    double naive_loss = 0;
    const auto ref = naive_gptq(std::vector<double>(w.begin(), w.end()), n_out, n, h.matrix(), 0.01, 3, group,
                                naive_loss);
    GptqOptions opt;
    opt.block_size = 16;  // group starts coincide with block starts: the scale sees every earlier update
    const GptqResult r = gptq_quantize(w.data(), n_out, n, h, config(3, group == n ? -1 : static_cast<int>(group)),
                                       opt);
    size_t same = 0;
    for (size_t k = 0; k < ref.size(); ++k) same += ref[k] == r.layer.q[k];
    EXPECT_GE(same, ref.size() * 99 / 100) << group;  // all 512 here; float vs double may flip a rare tie
    EXPECT_NEAR(r.loss, naive_loss, 1e-3 * naive_loss) << group;
  }
}

TEST(Gptq, BlockSizeDoesNotChangeTheAlgorithm) {
  // The lazy batch update is an exact reordering of the per-column update.
  const auto x = correlated_inputs(512, 128, 21);
  const auto w = gaussian(16 * 128, 0.05f, 22);
  const auto h = hessian_of(x, 128);
  GptqOptions one, big;
  one.block_size = 1;
  big.block_size = 48;  // not a divisor of 128 on purpose
  const IntQuantConfig cfg = config(3, -1);
  const GptqResult a = gptq_quantize(w.data(), 16, 128, h, cfg, one);
  const GptqResult b = gptq_quantize(w.data(), 16, 128, h, cfg, big);
  size_t same = 0;
  for (size_t k = 0; k < a.layer.q.size(); ++k) same += a.layer.q[k] == b.layer.q[k];
  EXPECT_GE(same, a.layer.q.size() * 99 / 100);  // float rounding may flip a rare tie
  EXPECT_NEAR(a.loss, b.loss, 0.01 * a.loss);
}

TEST(Gptq, ActOrderHelpsWithSkewedHessian) {
  auto x = correlated_inputs(kTokens, kIn, 31);
  for (int64_t j = 0; j < kIn; j += 16) testing::scale_column(x, kIn, j, 10.f + 6.f * static_cast<float>(j / 16));
  const auto w = gaussian(kOut * kIn, 0.05f, 32);
  const auto h = hessian_of(x, kIn);
  for (int gs : {-1, 32}) {
    const double e_plain = error_of(w, gptq_quantize(w.data(), kOut, kIn, h, config(3, gs, false)).layer, x);
    const GptqResult act = gptq_quantize(w.data(), kOut, kIn, h, config(3, gs, true));
    const double e_act = error_of(w, act.layer, x);
    EXPECT_LT(e_act, 0.9 * e_plain) << "group " << gs;
    if (gs > 0) {
      // Dynamic groups follow the processing order: the 16 boosted columns come first, so they share group 0.
      for (int64_t j = 0; j < kIn; j += 16) EXPECT_EQ(act.layer.g_idx[j], 0) << j;
    }
    IntQuantConfig stat = config(3, gs, true);
    stat.static_groups = true;
    const GptqResult st = gptq_quantize(w.data(), kOut, kIn, h, stat);
    for (int64_t j = 0; j < kIn; ++j) ASSERT_EQ(st.layer.g_idx[j], gs > 0 ? j / gs : 0);
    EXPECT_LT(error_of(w, st.layer, x), e_plain);
  }
}

TEST(Gptq, DeadColumnIsZeroed) {
  auto x = correlated_inputs(256, 64, 41);
  testing::scale_column(x, 64, 5, 0.f);
  const auto w = gaussian(16 * 64, 0.05f, 42);
  const GptqResult r = gptq_quantize(w.data(), 16, 64, hessian_of(x, 64), config(4, 32, true));
  EXPECT_EQ(r.dead_columns, 1);
  const auto wq = r.layer.dequantize();
  for (int64_t o = 0; o < 16; ++o) EXPECT_EQ(wq[o * 64 + 5], 0.f) << o;
  EXPECT_TRUE(std::isfinite(r.loss));
}

TEST(Gptq, IndefiniteHessianGetsMoreDamping) {
  // Eigenvalues of [[1, 1.012], [1.012, 1]] are 2.012 and -0.012: 1% of the mean diagonal is not enough, 1.25%
  // (one GPTQModel step of 0.25%) is.
  const int64_t n = 32;
  std::vector<double> h(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) h[i * n + i] = 1.0;
  h[0 * n + 1] = h[1 * n + 0] = 1.012;
  const auto hess = HessianAccumulator::from_matrix(n, h, 1);
  const auto w = gaussian(8 * n, 0.05f, 51);
  const GptqResult r = gptq_quantize(w.data(), 8, n, hess, config(4, -1));
  EXPECT_NEAR(r.damp_percent, 0.0125, 1e-12);
  GptqOptions no_retry;
  no_retry.damp_auto_increment = 0;
  EXPECT_THROW(gptq_quantize(w.data(), 8, n, hess, config(4, -1), no_retry), Error);
}

TEST(Gptq, RankDeficientInputsQuantizeWithDefaultDamping) {
  // 16 tokens for 64 inputs: H has rank 16. Damping makes it factorisable and GPTQ still beats RTN on those tokens.
  const auto x = correlated_inputs(16, 64, 61);
  const auto w = gaussian(16 * 64, 0.05f, 62);
  const GptqResult r = gptq_quantize(w.data(), 16, 64, hessian_of(x, 64), config(3, -1));
  EXPECT_EQ(r.damp_percent, 0.01);
  EXPECT_LT(error_of(w, r.layer, x), error_of(w, rtn_quantize(w.data(), 16, 64, config(3, -1)), x));
}

TEST(Gptq, SameBytesWhateverTheThreadCount) {
  const auto x = correlated_inputs(kTokens, kIn, 71);
  const auto w = gaussian(kOut * kIn, 0.05f, 72);
  IntQuantConfig cfg = config(4, 64, true);
  cfg.mse = true;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto h1 = hessian_of(x, kIn);
  const GptqResult a = gptq_quantize(w.data(), kOut, kIn, h1, cfg);
  omp_set_num_threads(2);
  const auto h2 = hessian_of(x, kIn);
  const GptqResult b = gptq_quantize(w.data(), kOut, kIn, h2, cfg);
  omp_set_num_threads(saved);
  EXPECT_EQ(h1.matrix(), h2.matrix());
  EXPECT_EQ(a.layer.q, b.layer.q);
  EXPECT_EQ(a.layer.scales, b.layer.scales);
  EXPECT_EQ(a.layer.zeros, b.layer.zeros);
  EXPECT_EQ(a.loss, b.loss);
}

TEST(Gptq, RejectsMismatchedHessian) {
  const auto w = gaussian(4 * 32, 0.1f, 81);
  HessianAccumulator h(16);
  EXPECT_THROW(gptq_quantize(w.data(), 4, 32, h, config(4, -1)), Error);
  EXPECT_THROW(HessianAccumulator(0), Error);
}

}  // namespace
}  // namespace lowbit
