#include "algo/gptq_ggml.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <vector>

#include "support/synthetic_layer.h"
#include "util/error.h"

namespace lowbit {
namespace {

using testing::correlated_inputs;
using testing::gaussian;

constexpr int64_t kIn = 512, kOut = 32, kTokens = 2048;

const DType kGridTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,   DType::Q2_K,
                            DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS};

std::vector<float> dequantize(DType type, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  to_float(type, bytes.data(), out.data(), n);
  return out;
}

// set_levels is the inverse of what the quantizer stored: recovering each element's level from its dequantized
// value (through the level table built with set_levels) and writing those levels back gives the same bytes.
TEST(SetLevels, RewritingTheLevelsOfAQuantizedRowGivesItsBytes) {
  const auto w = gaussian(kIn, 1.0f, 5);
  for (DType type : kGridTypes) {
    const TypeTraits& t = type_traits(type);
    ASSERT_NE(t.set_levels, nullptr) << t.name;
    std::vector<uint8_t> bytes(row_bytes(type, kIn));
    quantize_rows(type, w.data(), bytes.data(), 1, kIn);
    const auto values = dequantize(type, bytes, kIn);
    std::vector<uint8_t> levels(static_cast<size_t>(kIn));
    for (int64_t b = 0; b < kIn / t.block_size; ++b) {
      const size_t off = static_cast<size_t>(b) * t.block_bytes;
      std::vector<std::vector<float>> table(static_cast<size_t>(t.n_levels));
      for (int level = 0; level < t.n_levels; ++level) {
        std::vector<uint8_t> block(bytes.begin() + off, bytes.begin() + off + t.block_bytes);
        std::vector<uint8_t> all(static_cast<size_t>(t.block_size), static_cast<uint8_t>(level));
        t.set_levels(block.data(), all.data(), t.block_size);
        table[level] = dequantize(type, block, t.block_size);
      }
      for (int64_t i = 0; i < t.block_size; ++i) {
        int found = -1;
        for (int level = 0; level < t.n_levels && found < 0; ++level)
          if (table[level][i] == values[b * t.block_size + i]) found = level;
        ASSERT_GE(found, 0) << t.name << " element " << b * t.block_size + i;
        levels[b * t.block_size + i] = static_cast<uint8_t>(found);
      }
    }
    // Levels whose values coincide (a zero scale) are interchangeable: compare values, and bytes where unique.
    std::vector<uint8_t> rewritten = bytes;
    t.set_levels(rewritten.data(), levels.data(), kIn);
    EXPECT_EQ(dequantize(type, rewritten, kIn), values) << t.name;
    EXPECT_EQ(rewritten, bytes) << t.name;
  }
}

TEST(SetLevels, NearestLevelInBothDirections) {
  const float up[] = {-3, -1, 0, 2, 5};
  EXPECT_EQ(nearest_level(up, 5, -10.f), 0);
  EXPECT_EQ(nearest_level(up, 5, 0.9f), 2);
  EXPECT_EQ(nearest_level(up, 5, 1.1f), 3);
  EXPECT_EQ(nearest_level(up, 5, 1.0f), 2);  // tie: lower index
  EXPECT_EQ(nearest_level(up, 5, 99.f), 4);
  const float down[] = {5, 2, 0, -1, -3};
  EXPECT_EQ(nearest_level(down, 5, 3.6f), 0);
  EXPECT_EQ(nearest_level(down, 5, -2.2f), 4);
  EXPECT_EQ(nearest_level(down, 5, 0.4f), 2);
}

double output_error(const std::vector<float>& w, const std::vector<float>& wq, const std::vector<float>& x) {
  return reconstruction_error(w.data(), wq.data(), kOut, kIn, x.data(), static_cast<int64_t>(x.size()) / kIn);
}

// The point of the exercise: on correlated inputs GPTQ's error compensation beats the type's own search given
// the same importance (diag H, what an importance matrix holds), for every block type.
TEST(GptqGgml, BeatsImportanceWeightedQuantizationOnCorrelatedInputs) {
  const auto x = correlated_inputs(kTokens, kIn, 21);
  const auto w = gaussian(kOut * kIn, 0.05f, 22);
  HessianAccumulator h(kIn);
  h.add_batch(x.data(), kTokens);
  std::vector<float> diag(kIn);
  for (int64_t i = 0; i < kIn; ++i) diag[i] = static_cast<float>(h.matrix()[i * kIn + i]);
  for (DType type : kGridTypes) {
    std::vector<uint8_t> plain(row_bytes(type, kIn) * kOut);
    quantize_rows(type, w.data(), plain.data(), kOut, kIn, diag.data());
    const double e_plain = output_error(w, dequantize(type, plain, kOut * kIn), x);
    const GgmlGptqResult g = gptq_quantize_ggml(w.data(), kOut, kIn, h, type);
    ASSERT_EQ(g.bytes.size(), plain.size());
    const double e_gptq = output_error(w, dequantize(type, g.bytes, kOut * kIn), x);
    EXPECT_LT(e_gptq, 0.85 * e_plain) << dtype_name(type) << ": gptq " << e_gptq << " vs " << e_plain;
    EXPECT_GT(g.loss, 0) << dtype_name(type);
  }
}

TEST(GptqGgml, SameBytesWhateverTheThreadCount) {
  const auto x = correlated_inputs(512, kIn, 31);
  const auto w = gaussian(kOut * kIn, 0.05f, 32);
  HessianAccumulator h(kIn);
  h.add_batch(x.data(), 512);
  for (DType type : {DType::Q4_K, DType::Q4_0}) {
    omp_set_num_threads(1);
    const auto one = gptq_quantize_ggml(w.data(), kOut, kIn, h, type).bytes;
    omp_set_num_threads(2);
    const auto two = gptq_quantize_ggml(w.data(), kOut, kIn, h, type).bytes;
    EXPECT_EQ(one, two) << dtype_name(type);
  }
}

TEST(GptqGgml, RefusesTypesWithoutAGridAndMisfitRows) {
  HessianAccumulator h(kIn);
  const std::vector<float> w(static_cast<size_t>(kIn * 2), 0.1f);
  EXPECT_THROW(gptq_quantize_ggml(w.data(), 2, kIn, h, DType::F16), Error);
  HessianAccumulator h100(100);
  const std::vector<float> w100(200, 0.1f);
  EXPECT_THROW(gptq_quantize_ggml(w100.data(), 2, 100, h100, DType::Q4_K), Error);
}

}  // namespace
}  // namespace lowbit
