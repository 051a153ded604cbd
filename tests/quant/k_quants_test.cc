// K-quants against ggml's own output: tests/data/ggml-vectors/ holds, for 16 rows x 512 inputs and an importance
// vector, the bytes ggml-quants.c of llama.cpp c392e50 produced (with and without importance) and ggml's
// dequantization of them. Every byte and every float bit must match.
#include "quant/k_quants.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "quant/quant_search.h"
#include "support/ggml_vectors.h"
#include "util/error.h"

namespace lowbit {
namespace {

constexpr int kRows = 16;
constexpr int kCols = 512;

std::vector<char> read_bytes(const std::string& name) {
  const std::string path = std::string(LOWBIT_SOURCE_DIR) + "/tests/data/ggml-vectors/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<float> read_floats(const std::string& name) {
  const std::vector<char> bytes = read_bytes(name);
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

using Case = testing_support::VectorCase;
using testing_support::vector_case_name;

class GgmlVectors : public testing::TestWithParam<Case> {};

TEST_P(GgmlVectors, BytesAndDequantizedValuesMatchGgml) {
  const Case c = GetParam();
  const std::vector<float> inputs = read_floats("inputs.f32");
  const std::vector<float> imatrix = read_floats("imatrix.f32");
  ASSERT_EQ(inputs.size(), size_t{kRows} * kCols);
  ASSERT_EQ(imatrix.size(), size_t{kCols});
  const std::string stem = std::string(dtype_name(c.type)) + (c.imatrix ? ".imatrix" : ".plain");
  const std::vector<char> want = read_bytes(stem + ".q");
  const std::vector<float> want_values = read_floats(stem + ".deq.f32");
  const size_t block_bytes = type_traits(c.type).block_bytes;
  ASSERT_EQ(want.size(), row_bytes(c.type, kCols) * kRows);
  ASSERT_EQ(want_values.size(), inputs.size());

  std::vector<char> got(want.size());
  quantize_rows(c.type, inputs.data(), got.data(), kRows, kCols, c.imatrix ? imatrix.data() : nullptr);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(static_cast<uint8_t>(got[i]), static_cast<uint8_t>(want[i]))
        << "block " << i / block_bytes << " (row " << i / block_bytes / (kCols / kSuperBlock) << "), byte "
        << i % block_bytes;
  }
  // Dequantize ggml's bytes (not ours), so this half checks to_float on its own.
  std::vector<float> values(inputs.size());
  to_float(c.type, want.data(), values.data(), static_cast<int64_t>(values.size()));
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(values[i]), std::bit_cast<uint32_t>(want_values[i]))
        << "value " << i << ": " << values[i] << " vs " << want_values[i];
  }
}

INSTANTIATE_TEST_SUITE_P(KQuants, GgmlVectors,
                         testing::Values(Case{DType::Q2_K, false}, Case{DType::Q2_K, true}, Case{DType::Q3_K, false},
                                         Case{DType::Q3_K, true}, Case{DType::Q4_K, false}, Case{DType::Q4_K, true},
                                         Case{DType::Q5_K, false}, Case{DType::Q5_K, true}, Case{DType::Q6_K, false},
                                         Case{DType::Q6_K, true}, Case{DType::Q8_K, false}),
                         vector_case_name);

constexpr DType kKTypes[] = {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K};

TEST(KQuants, SpecialRowsRoundTrip) {
  // All zeros must come back as zeros; a constant row exactly or nearly so.
  for (DType t : kKTypes) {
    std::vector<float> src(512, 0.f);
    for (int j = 256; j < 512; ++j) src[j] = 0.5f;
    std::vector<char> q(row_bytes(t, 512));
    std::vector<float> back(512);
    quantize_rows(t, src.data(), q.data(), 1, 512);
    to_float(t, q.data(), back.data(), 512);
    for (int j = 0; j < 256; ++j) ASSERT_EQ(back[j], 0.f) << dtype_name(t) << " value " << j;
    for (int j = 256; j < 512; ++j) ASSERT_NEAR(back[j], 0.5f, 0.01f) << dtype_name(t) << " value " << j;
  }
}

TEST(KQuants, Q8KLevelsScaleAndBlockSums) {
  std::vector<float> src(512);
  for (int j = 0; j < 512; ++j) src[j] = std::sin(0.37f * j) * (j < 256 ? 3.f : 0.01f);
  src[300] = -0.05f;  // block 1's largest magnitude; as in ggml it gets level -127, so the scale is positive
  std::vector<BlockQ8K> q(2);
  quantize_rows(DType::Q8_K, src.data(), q.data(), 1, 512);
  EXPECT_FLOAT_EQ(q[1].d, 0.05f / 127);
  EXPECT_EQ(q[1].qs[300 - 256], -127);
  EXPECT_LT(q[0].d, 0.f);  // block 0's largest magnitude, 3*sin(0.37*j) near +3, is positive
  std::vector<float> back(512);
  to_float(DType::Q8_K, q.data(), back.data(), 512);
  for (int b = 0; b < 2; ++b) {
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) {
        const int i = 256 * b + 16 * g + l;
        sum += q[b].qs[16 * g + l];
        EXPECT_GE(q[b].qs[16 * g + l], -127);
        EXPECT_LE(std::fabs(back[i] - src[i]), 0.5001f * std::fabs(q[b].d)) << "value " << i;
      }
      EXPECT_EQ(q[b].bsums[g], sum);
    }
  }
  std::vector<float> zeros(256, 0.f);
  BlockQ8K z;
  std::memset(&z, 0xAB, sizeof(z));
  quantize_q8_K(zeros.data(), &z, 1, 256, nullptr);
  const BlockQ8K zero_block{};
  EXPECT_EQ(std::memcmp(&z, &zero_block, sizeof(z)), 0);
}

TEST(KQuants, NonFiniteValuesStayInTheirBlock) {
  // ggml does not check for NaN/Inf (lowbit's pipeline does, before quantizing); here they must neither crash nor
  // change any other block: row 0 is quantized alone and next to a row of NaN/Inf blocks.
  std::vector<float> src(2 * 512);
  for (int j = 0; j < 512; ++j) src[j] = std::cos(0.11f * j) * (1 + j % 5);
  for (int j = 512; j < 1024; ++j) src[j] = j % 3 == 0 ? NAN : (j % 3 == 1 ? INFINITY : -INFINITY);
  std::vector<float> importance(512, 1.f);
  for (DType t : kKTypes) {
    for (const float* w : {static_cast<const float*>(nullptr), static_cast<const float*>(importance.data())}) {
      const size_t rb = row_bytes(t, 512);
      std::vector<char> alone(rb), both(2 * rb);
      quantize_rows(t, src.data(), alone.data(), 1, 512, w);
      quantize_rows(t, src.data(), both.data(), 2, 512, w);
      EXPECT_EQ(0, std::memcmp(alone.data(), both.data(), rb)) << dtype_name(t);
    }
  }
}

TEST(KQuants, ZeroImportanceGroupGivesFiniteScales) {
  // Only the first 32 values (with zero importance) are negative, so the only non-zero mins have zero weight.
  // ggml c392e50 then divides 0 by 0 in make_qp_quants and writes a NaN dmin for Q2_K/Q4_K/Q5_K (the whole block
  // dequantizes to NaN); lowbit returns 0 there, as later ggml does.
  std::vector<float> x(256), importance(256, 1.f);
  for (int j = 0; j < 256; ++j) x[j] = j < 32 ? -1.f - 0.01f * j : 0.1f + 0.003f * j;
  for (int j = 0; j < 32; ++j) importance[j] = 0.f;
  for (DType t : kKTypes) {
    std::vector<char> q(row_bytes(t, 256));
    std::vector<float> back(256);
    quantize_rows(t, x.data(), q.data(), 1, 256, importance.data());
    to_float(t, q.data(), back.data(), 256);
    for (int j = 0; j < 256; ++j) ASSERT_TRUE(std::isfinite(back[j])) << dtype_name(t) << " value " << j;
    for (int j = 32; j < 256; ++j) EXPECT_NEAR(back[j], x[j], 0.1f) << dtype_name(t) << " value " << j;
  }
}

TEST(KQuants, RowLengthNotMultipleOf256IsAnError) {
  std::vector<float> src(300, 1.f);
  std::vector<char> dst(4096);
  for (DType t : kKTypes) {
    const TypeTraits& tt = type_traits(t);
    EXPECT_THROW(tt.quantize(src.data(), dst.data(), 1, 300, nullptr), Error) << tt.name;
    EXPECT_THROW(tt.quantize(src.data(), dst.data(), 1, 0, nullptr), Error) << tt.name;
    EXPECT_THROW(tt.to_float(dst.data(), src.data(), 300), Error) << tt.name;
    EXPECT_THROW(quantize_rows(t, src.data(), dst.data(), 1, 300), Error) << tt.name;
  }
}

TEST(QuantSearch, NearestIntRoundsHalfToEven) {
  EXPECT_EQ(nearest_int(0.5f), 0);
  EXPECT_EQ(nearest_int(1.5f), 2);
  EXPECT_EQ(nearest_int(2.5f), 2);
  EXPECT_EQ(nearest_int(-0.5f), 0);
  EXPECT_EQ(nearest_int(-1.5f), -2);
  EXPECT_EQ(nearest_int(-3.7f), -4);
  EXPECT_EQ(nearest_int(4194303.f), 4194303);
  EXPECT_EQ(nearest_int(-4194303.f), -4194303);
}

TEST(QuantSearch, SignedAbsMaxKeepsSignAndFirstTie) {
  const float x[] = {0.5f, -2.f, 2.f, 1.f};
  const SignedAbsMax m = signed_abs_max(x, 4);
  EXPECT_EQ(m.value, -2.f);
  EXPECT_EQ(m.abs, 2.f);
}

}  // namespace
}  // namespace lowbit
