#include "ops/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/float_formats.h"
#include "support/weight_matrices.h"

namespace lowbit {
namespace {

std::vector<float> pseudo_random(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(seed >> 8) / static_cast<float>(1u << 24) * 2.0f - 1.0f;
  }
  return v;
}

Tensor make_weight(DType type, int64_t n_in, int64_t n_out, uint32_t seed) {
  const std::vector<float> values = pseudo_random(static_cast<size_t>(n_in * n_out), seed);
  return testing_support::quantized_matrix(type, n_in, n_out, values.data());
}

// y must equal x . W^T for the weights as the type stores them (dequantized), whatever the type and threads.
TEST(Matmul, EveryTypeMatchesDequantizedDoubleProduct) {
  const int64_t n_in = 256, n_out = 37, n_tokens = 5;  // 37: the last row block is partial
  const std::vector<float> x = pseudo_random(static_cast<size_t>(n_in * n_tokens), 7);
  int tested = 0;
  for (const TypeTraits& t : all_types()) {
    if (!t.to_float || !t.quantize || t.needs_importance || !row_fits(t.type, n_in)) continue;
    SCOPED_TRACE(t.name);
    const Tensor w = make_weight(t.type, n_in, n_out, 3);
    const std::vector<float> wf = tensor_to_f32(w);
    std::vector<float> y1(static_cast<size_t>(n_tokens * n_out)), y2(y1.size()), y3(y1.size());
    matmul(w, x.data(), n_tokens, y1.data(), 1, false);
    matmul(w, x.data(), n_tokens, y2.data(), 2, false);
    matmul(w, x.data(), n_tokens, y3.data(), 3, false);
    EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(y1.data(), y3.data(), y1.size() * sizeof(float)));
    for (int64_t tk = 0; tk < n_tokens; ++tk) {
      for (int64_t o = 0; o < n_out; ++o) {
        double want = 0, mag = 0;
        for (int64_t i = 0; i < n_in; ++i) {
          want += static_cast<double>(wf[o * n_in + i]) * x[tk * n_in + i];
          mag += std::abs(static_cast<double>(wf[o * n_in + i]) * x[tk * n_in + i]);
        }
        ASSERT_NEAR(y1[tk * n_out + o], want, 1e-6 * mag + 1e-7) << "token " << tk << " row " << o;
      }
    }
    ++tested;
  }
  EXPECT_GE(tested, 3);  // at least F32, F16, BF16
}

TEST(Matmul, RoundingModeMultipliesF16WeightsByF16Activations) {
  // As ggml does for F16 weights: the activations are converted to F16 first.
  const Tensor w = make_weight(DType::F16, 64, 20, 21);
  std::vector<float> x = pseudo_random(64 * 2, 4), y(40), want(40);
  matmul(w, x.data(), 2, y.data(), 2);
  for (float& v : x) v = f16_to_f32(f32_to_f16(v));
  matmul_exact(w, x.data(), 2, want.data(), 1);
  std::vector<float> unrounded(40), x_raw = pseudo_random(64 * 2, 4);
  matmul_exact(w, x_raw.data(), 2, unrounded.data(), 1);
  // Equal to the product with F16-rounded activations up to summation order, and measurably not the unrounded one.
  double apart = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_NEAR(y[i], want[i], 2e-6 * (1.0 + std::fabs(want[i]))) << i;
    apart = std::max(apart, static_cast<double>(std::fabs(unrounded[i] - want[i])));
  }
  EXPECT_GT(apart, 1e-5);
  EXPECT_EQ(activation_type(DType::Q4_K), DType::Q8_K);
  EXPECT_EQ(activation_type(DType::Q4_0), DType::Q8_0);
  EXPECT_EQ(activation_type(DType::F32), DType::F32);
}

TEST(Matmul, SingleTokenEqualsBatchRow) {
  const Tensor w = make_weight(DType::F16, 64, 40, 5);
  const std::vector<float> x = pseudo_random(64 * 3, 9);
  std::vector<float> all(3 * 40), one(40);
  matmul(w, x.data(), 3, all.data(), 2);
  matmul(w, x.data() + 64 * 2, 1, one.data(), 2);
  EXPECT_EQ(0, std::memcmp(one.data(), all.data() + 80, 40 * sizeof(float)));
}

int g_calls = 0;
void counting_kernel(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads) {
  ++g_calls;
  matmul_generic(w, x, n_tokens, y, threads);
}

TEST(Matmul, RegisteredKernelReplacesTheDefaultUntilRemoved) {
  const Tensor w = make_weight(DType::BF16, 64, 8, 11);
  const std::vector<float> x = pseudo_random(64, 2);
  std::vector<float> y(8);
  g_calls = 0;
  register_matmul_kernel(DType::BF16, counting_kernel);
  matmul(w, x.data(), 1, y.data(), 1);
  EXPECT_EQ(g_calls, 1);
  register_matmul_kernel(DType::BF16, nullptr);
  matmul(w, x.data(), 1, y.data(), 1);
  EXPECT_EQ(g_calls, 1);
}

TEST(Matmul, DequantizeRowReadsTheRightRow) {
  const Tensor w = make_weight(DType::F32, 16, 4, 13);
  std::vector<float> row(16);
  dequantize_row(w, 2, row.data());
  EXPECT_EQ(0, std::memcmp(row.data(), w.data + 2 * 16 * sizeof(float), 16 * sizeof(float)));
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// The SIMD Q4_0 kernel (ggml's summation order) agrees with the generic dequantize-then-dot path.
TEST(SimdKernels, Q4_0MatchesGenericPath) {
  const int64_t n_in = 256, n_out = 48, n_tokens = 5;
  std::vector<float> w(static_cast<size_t>(n_in * n_out)), x(static_cast<size_t>(n_in * n_tokens));
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37f * static_cast<float>(i)) * (1.0f + static_cast<float>(i % 7));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.11f * static_cast<float>(i)) * 3.0f;
  const Tensor t = testing_support::quantized_matrix(DType::Q4_0, n_in, n_out, w.data());
  std::vector<float> fused(static_cast<size_t>(n_out * n_tokens)), generic(fused.size()), fused2(fused.size());
  matmul(t, x.data(), n_tokens, fused.data(), 1);
  matmul_generic(t, x.data(), n_tokens, generic.data(), 1);
  matmul(t, x.data(), n_tokens, fused2.data(), 2);
  EXPECT_EQ(fused, fused2);  // thread count does not matter
  for (size_t i = 0; i < fused.size(); ++i) ASSERT_NEAR(fused[i], generic[i], 1e-4f * (1.0f + std::fabs(generic[i]))) << i;
}

}  // namespace
}  // namespace lowbit
