// GPTQ/AWQ layers as the engine multiplies them (algo/int_quant.h engine_tensor): I4G blocks for 2-4 bits, Q8_0
// for symmetric 8 bits, the act-order columns sorted by group. They must stand for exactly the dequantized
// weights, and their kernels must give the reference's bits on every target.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "algo/int_quant.h"
#include "core/float_formats.h"
#include "ops/dot_reference.h"
#include "ops/matmul.h"
#include "ops/packed_weight.h"
#include "support/simd_targets.h"

namespace lowbit {
namespace {

// A layer with random levels, zeros and fp16-valued scales; act_order shuffles which columns form each group.
QuantizedLinear random_layer(int64_t n_out, int64_t n_in, int bits, int group, bool act_order, bool sym, uint32_t seed) {
  IntQuantConfig cfg;
  cfg.bits = bits;
  cfg.group_size = group;
  cfg.sym = sym;
  QuantizedLinear ql = QuantizedLinear::allocate(n_out, n_in, cfg);
  std::mt19937 rng(seed);
  for (auto& q : ql.q) q = static_cast<uint8_t>(rng() % (1u << bits));
  for (size_t i = 0; i < ql.scales.size(); ++i) {
    ql.scales[i] = f16_to_f32(f32_to_f16(0.001f + 0.01f * static_cast<float>(rng() % 1000) / 1000.f));
    ql.zeros[i] = sym ? static_cast<float>(1 << (bits - 1)) : static_cast<float>(rng() % ((1u << bits) + 1));  // v1 zeros reach 2^bits
  }
  if (act_order) {
    std::vector<int32_t> perm(static_cast<size_t>(n_in));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int64_t k = 0; k < n_in; ++k) ql.g_idx[perm[k]] = static_cast<int32_t>(k / cfg.group_len(n_in));
  }
  return ql;
}

std::vector<float> activations(int64_t n_in, int64_t n_tokens) {
  std::vector<float> x(static_cast<size_t>(n_in * n_tokens));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.13f * static_cast<float>(i)) * 2.0f;
  return x;
}

TEST(IntEngineTensor, StandsForTheDequantizedWeights) {
  struct Case {
    int bits, group;
    bool act_order, sym;
    DType want;
  };
  for (const Case& c : {Case{4, 128, false, false, DType::I4G}, Case{4, 32, true, false, DType::I4G},
                        Case{3, 64, false, false, DType::I4G}, Case{2, -1, false, true, DType::I4G},
                        Case{8, 128, true, true, DType::Q8_0}}) {
    const int64_t n_out = 20, n_in = 256;
    const QuantizedLinear ql = random_layer(n_out, n_in, c.bits, c.group, c.act_order, c.sym, 7);
    const auto t = engine_tensor(ql, "w");
    ASSERT_TRUE(t.has_value()) << c.bits << " bits";
    EXPECT_EQ(t->type(), c.want);
    EXPECT_EQ(t->input_order != nullptr, c.act_order);
    const std::vector<float> want = ql.dequantize();
    std::vector<float> row(static_cast<size_t>(n_in));
    for (const Tensor& w : {*t, pack_for_matmul(*t)})
      for (int64_t r = 0; r < n_out; ++r) {
        dequantize_row(w, r, row.data());
        for (int64_t i = 0; i < n_in; ++i) ASSERT_EQ(row[i], want[r * n_in + i]) << c.bits << " bits, row " << r << " col " << i;
      }
  }
}

TEST(IntEngineTensor, RefusesWhatTheBlocksCannotHold) {
  QuantizedLinear ql = random_layer(4, 256, 4, 16, false, false, 3);  // groups of 16 split a block
  EXPECT_FALSE(engine_tensor(ql, "w").has_value());
  ql = random_layer(4, 256, 8, 128, false, false, 3);  // 8-bit with zeros other than 128
  EXPECT_FALSE(engine_tensor(ql, "w").has_value());
  ql = random_layer(4, 256, 4, 128, false, false, 3);
  ql.scales[0] = 0.1f;  // not an fp16 value
  EXPECT_FALSE(engine_tensor(ql, "w").has_value());
}

// The kernels on I4G (plain and act-order, packed and not) give the reference's bits on every target, and agree
// with the exact product of the dequantized weights up to the activations' 8-bit rounding.
TEST(IntEngineTensor, KernelsMatchTheReference) {
  const int64_t n_out = 27, n_in = 512, n_tokens = 5;
  const auto x = activations(n_in, n_tokens);
  for (bool act_order : {false, true}) {
    const QuantizedLinear ql = random_layer(n_out, n_in, 4, 128, act_order, false, 11);
    const Tensor t = *engine_tensor(ql, "w");
    std::vector<float> ref(static_cast<size_t>(n_out * n_tokens)), exact(ref.size());
    matmul_reference(t, x.data(), n_tokens, ref.data(), 1);
    matmul_exact(t, x.data(), n_tokens, exact.data(), 1);
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(ref[i], exact[i], 0.02 * (1 + std::fabs(exact[i])));
    const Tensor packed = pack_for_matmul(t);
    for_each_simd_target([&](int64_t target) {
      for (const Tensor* w : {&t, &packed})
        for (int threads : {1, 2}) {
          std::vector<float> y(ref.size());
          matmul(*w, x.data(), n_tokens, y.data(), threads);
          for (size_t i = 0; i < y.size(); ++i)
            ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(ref[i]))
                << hwy::TargetName(target) << (act_order ? " act-order" : "") << (w == &packed ? " packed" : "")
                << " threads " << threads << " output " << i;
          std::vector<float> one(static_cast<size_t>(n_out));  // one token: the generation tile
          matmul(*w, x.data() + 2 * n_in, 1, one.data(), threads);
          for (int64_t r = 0; r < n_out; ++r) ASSERT_EQ(one[r], ref[2 * n_out + r]);
        }
    });
  }
}

}  // namespace
}  // namespace lowbit
