// Activations are quantized exactly as ggml's x86 CPU backend does: the bytes of tests/data/ggml-vectors/vecdot/
// act.*.q (ggml's from_float of inputs.f32, see the README there), and the quad sums the VNNI kernels use.
#include "ops/activation_quant.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/float_formats.h"
#include "quant/k_quants.h"
#include "quant/legacy_quants.h"
#include "support/ggml_vectors.h"
#include "support/simd_targets.h"

namespace lowbit {
namespace {

using namespace testing_support;  // NOLINT: the vectors' readers and sizes

TEST(ActivationQuant, SameBytesAsGgml) {
  const std::vector<float> x = ggml_vector_floats("inputs.f32");
  for (DType type : {DType::Q8_0, DType::Q8_1, DType::Q8_K, DType::F16, DType::BF16}) {
    const std::vector<uint8_t> want = ggml_vector_bytes(std::string("vecdot/act.") + dtype_name(type) + ".q");
    for (int threads : {1, 2}) {
      const QuantizedActivations acts = quantize_activations(type, x.data(), kVectorRows, kVectorCols, threads);
      ASSERT_EQ(acts.row_bytes() * kVectorRows, want.size()) << dtype_name(type);
      for (int t = 0; t < kVectorRows; ++t)
        EXPECT_EQ(0, std::memcmp(acts.row(t), want.data() + acts.row_bytes() * t, acts.row_bytes()))
            << dtype_name(type) << " row " << t;
    }
  }
}

// Rows that probe each rule: two blocks whose largest magnitude comes twice with both signs (the first decides
// the sign of Q8_K's scale), an all-zero block, values that land on .5 after scaling (ties go to even), denormals
// and huge values.
std::vector<float> hostile_row() {
  std::vector<float> x(1024);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) * 2.5f;
  x[3] = -4.0f, x[200] = 4.0f;   // block 0: -4 first
  x[260] = 4.0f, x[300] = -4.0f;  // block 1: +4 first
  for (size_t i = 512; i < 768; ++i) x[i] = 0.0f;
  for (size_t i = 768; i < 800; ++i) x[i] = (static_cast<float>(i % 9) - 4.0f) * (127.0f / 254.0f);  // halves of 1/254
  x[800] = 1e-40f, x[801] = -3e30f, x[802] = 3e30f;
  return x;
}

// ggml's input rows and, as one more row, the hostile row's second half (the zero block, ties, denormals, huge
// values): the quad sum tests' input.
std::vector<float> ggml_inputs_and_hostile_half() {
  std::vector<float> x = ggml_vector_floats("inputs.f32");
  const std::vector<float> hostile = hostile_row();
  x.insert(x.end(), hostile.end() - kVectorCols, hostile.end());
  return x;
}

TEST(ActivationQuant, EveryTargetRoundsAsTheScalarDefinition) {
  const std::vector<float> x = hostile_row();
  const int64_t n = static_cast<int64_t>(x.size());
  // The definitions, written plainly: Q8_0 with id = 127/amax, Q8_K with iscale = -127/(first value of largest
  // magnitude); both round half to even.
  std::vector<BlockQ8_0> want0(static_cast<size_t>(n / 32));
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[static_cast<size_t>(b * 32 + j)]));
    const float id = amax != 0 ? 127.f / amax : 0.f;
    want0[static_cast<size_t>(b)].d = f32_to_f16(amax / 127.f);
    for (int j = 0; j < 32; ++j) want0[static_cast<size_t>(b)].qs[j] = static_cast<int8_t>(std::nearbyint(x[static_cast<size_t>(b * 32 + j)] * id));
  }
  std::vector<BlockQ8K> wantk(static_cast<size_t>(n / 256));
  for (int64_t b = 0; b < n / 256; ++b) {
    BlockQ8K& y = wantk[static_cast<size_t>(b)];
    std::memset(&y, 0, sizeof(y));
    float amax = 0, peak = 0;
    for (int j = 0; j < 256; ++j) {
      const float v = x[static_cast<size_t>(b * 256 + j)];
      if (std::fabs(v) > amax) amax = std::fabs(v), peak = v;
    }
    if (amax == 0) continue;
    const float iscale = -127.f / peak;
    for (int j = 0; j < 256; ++j)
      y.qs[j] = static_cast<int8_t>(std::min(127.f, std::nearbyint(iscale * x[static_cast<size_t>(b * 256 + j)])));
    for (int j = 0; j < 16; ++j)
      for (int l = 0; l < 16; ++l) y.bsums[j] = static_cast<int16_t>(y.bsums[j] + y.qs[16 * j + l]);
    y.d = 1 / iscale;
  }
  EXPECT_GT(wantk[0].d, 0);  // -4 came first in block 0: iscale = -127 / -4
  EXPECT_LT(wantk[1].d, 0);
  const int targets = for_each_simd_target([&](int64_t target) {
    std::vector<BlockQ8_0> got0(want0.size());
    std::vector<BlockQ8K> gotk(wantk.size());
    quantize_activation_q8_0(x.data(), got0.data(), n);
    quantize_activation_q8_k(x.data(), gotk.data(), n);
    EXPECT_EQ(0, std::memcmp(got0.data(), want0.data(), want0.size() * sizeof(BlockQ8_0))) << hwy::TargetName(target);
    EXPECT_EQ(0, std::memcmp(gotk.data(), wantk.data(), wantk.size() * sizeof(BlockQ8K))) << hwy::TargetName(target);
  });
  EXPECT_GE(targets, 2);
}

// On every target (the quad sums are SIMD), for the ggml inputs and the hostile row's second half (the zero block,
// ties, denormals, huge values).
TEST(ActivationQuant, QuadStartsAndBlockSumsAddTheirValues) {
  const std::vector<float> x = ggml_inputs_and_hostile_half();
  const int targets = for_each_simd_target([&](int64_t target) {
    const QuantizedActivations acts = quantize_activations(DType::Q8_0, x.data(), kVectorRows + 1, kVectorCols, 1);
    for (int t = 0; t <= kVectorRows; ++t) {
      const ActRow r = acts.kernel_row(t);
      ASSERT_NE(r.quad_starts, nullptr);
      const auto* blocks = reinterpret_cast<const int8_t*>(r.blocks);
      for (int b = 0; b < kVectorCols / 32; ++b) {
        int32_t total = 0;
        for (int l = 0; l < 8; ++l) {
          const int8_t* q = blocks + b * 34 + 2 + 4 * l;  // BlockQ8_0: fp16 d, then 32 values
          ASSERT_EQ(r.quad_starts[8 * b + l], -16 * (q[0] + q[1] + q[2] + q[3]))
              << hwy::TargetName(target) << " row " << t << " block " << b;
          total += q[0] + q[1] + q[2] + q[3];
        }
        ASSERT_EQ(r.block_sums[b], total) << hwy::TargetName(target) << " row " << t << " block " << b;
      }
    }
  });
  EXPECT_GE(targets, 2);
  EXPECT_EQ(quantize_activations(DType::Q8_K, x.data(), 1, kVectorCols, 1).kernel_row(0).quad_starts, nullptr);
}

// Q8_K rows' quad sum pairs (the Q3_K/Q6_K tiles' offsets) on every target: word 8w + l of a super-block's table for
// Q6_K's offset holds -32 A(2w, l) in its low int16 and -32 A(2w + 1, l) in its high, A(g, l) the sum of values
// 32g+4l..32g+4l+3, and the table for Q3_K's the same times -4. Rows
// of +-127 put |A| at its largest (508), where a pair's halves would spill into each other if packed wrongly. And
// the values with their groups paired.
TEST(ActivationQuant, Q8KQuadPairsHoldEachGroupsNegatedQuadSums) {
  std::vector<float> x = ggml_inputs_and_hostile_half();
  for (int64_t i = 0; i < kVectorCols; ++i) x.push_back(i % 64 < 32 ? 1.0f : -1.0f);  // all levels -127 or 127
  const int n_rows = kVectorRows + 2;
  const int targets = for_each_simd_target([&](int64_t target) {
    const QuantizedActivations acts = quantize_activations(DType::Q8_K, x.data(), n_rows, kVectorCols, 1);
    for (int t = 0; t < n_rows; ++t) {
      const ActRow r = acts.kernel_row(t);
      ASSERT_NE(r.quad_pairs, nullptr);
      for (int b = 0; b < kVectorCols / 256; ++b) {
        const int8_t* qs = reinterpret_cast<const BlockQ8K*>(r.blocks)[b].qs;
        const auto quad = [&](int g, int l) { return qs[32 * g + 4 * l] + qs[32 * g + 4 * l + 1] + qs[32 * g + 4 * l + 2] + qs[32 * g + 4 * l + 3]; };
        for (const int bits : {5, 2}) {  // Q6_K's factor, 32, and Q3_K's, 4
          const int factor = 1 << bits;
          const int32_t* table = r.quad_pairs + kQuadPairsWords * b + quad_pairs_table(bits);
          for (int w = 0; w < 4; ++w)
            for (int l = 0; l < 8; ++l) {
              const auto word = static_cast<uint32_t>(table[8 * w + l]);
              const std::string at = std::string(hwy::TargetName(target)) + " row " + std::to_string(t) + ", x" +
                                     std::to_string(factor);
              ASSERT_EQ(static_cast<int16_t>(word & 0xFFFF), -factor * quad(2 * w, l)) << at;
              ASSERT_EQ(static_cast<int16_t>(word >> 16), -factor * quad(2 * w + 1, l)) << at;
            }
        }
        // The values with their groups paired, as the Q3_K/Q6_K tiles' weights (ops/packed_weight.h): byte
        // 4l + 2a + b of group 2w + s is value 4l + 2s + b of group 2w + a.
        ASSERT_NE(r.paired_qs, nullptr);
        for (int g = 0; g < 8; ++g)
          for (int i = 0; i < 32; ++i) {
            const int l = i / 4, a = i / 2 % 2, bit = i % 2;
            ASSERT_EQ(r.paired_qs[256 * b + 32 * g + i], qs[32 * (2 * (g / 2) + a) + 4 * l + 2 * (g % 2) + bit])
                << hwy::TargetName(target) << " row " << t << ", paired group " << g << ", byte " << i;
          }
      }
    }
    const int8_t* extreme = reinterpret_cast<const BlockQ8K*>(acts.kernel_row(n_rows - 1).blocks)[0].qs;
    EXPECT_EQ(std::abs(extreme[0] + extreme[1] + extreme[2] + extreme[3]), 508);  // the +-127 row reaches |A| = 508
  });
  EXPECT_GE(targets, 2);
  EXPECT_EQ(quantize_activations(DType::Q8_0, x.data(), 1, kVectorCols, 1).kernel_row(0).quad_pairs, nullptr);
}

}  // namespace
}  // namespace lowbit
