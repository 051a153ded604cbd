// Legacy block types (Q4_0 .. Q8_1, IQ4_NL, IQ4_XS) and F16/BF16 against ggml's own output: for 16 rows x 512
// inputs and an importance vector, tests/data/ggml-vectors/ holds the bytes llama.cpp c392e50's
// ggml_quantize_chunk produced (with and without importance) and ggml's to_float of those bytes. Every byte
// and every float bit must match.
#include "quant/legacy_quants.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "support/ggml_vectors.h"
#include "util/error.h"

namespace lowbit {
namespace {

using testing_support::ggml_vector_bytes;
using testing_support::ggml_vector_floats;
using testing_support::kVectorCols;
using testing_support::kVectorRows;

using Case = testing_support::VectorCase;
using testing_support::vector_case_name;

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
        << "value " << i << " (row " << i / kVectorCols << "): " << got[i] << " vs " << want[i];
  }
}

class LegacyGgmlVectors : public testing::TestWithParam<Case> {};

TEST_P(LegacyGgmlVectors, BytesAndDequantizedValuesMatchGgml) {
  const Case c = GetParam();
  const std::vector<float> inputs = ggml_vector_floats("inputs.f32");
  const std::vector<float> imatrix = ggml_vector_floats("imatrix.f32");
  ASSERT_EQ(inputs.size(), size_t{kVectorRows} * kVectorCols);
  ASSERT_EQ(imatrix.size(), size_t{kVectorCols});
  const std::string stem = std::string(dtype_name(c.type)) + (c.imatrix ? ".imatrix" : ".plain");
  const std::vector<uint8_t> want = ggml_vector_bytes(stem + ".q");
  const size_t row_size = row_bytes(c.type, kVectorCols);
  ASSERT_EQ(want.size(), row_size * kVectorRows);

  std::vector<uint8_t> got(want.size());
  quantize_rows(c.type, inputs.data(), got.data(), kVectorRows, kVectorCols, c.imatrix ? imatrix.data() : nullptr);
  const size_t block_bytes = type_traits(c.type).block_bytes;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i], want[i]) << "row " << i / row_size << ", block " << i % row_size / block_bytes << ", byte "
                               << i % block_bytes;
  }
  // Dequantize ggml's bytes (not ours), so this half checks to_float on its own.
  std::vector<float> values(inputs.size());
  to_float(c.type, want.data(), values.data(), static_cast<int64_t>(values.size()));
  expect_same_bits(values, ggml_vector_floats(stem + ".deq.f32"));
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (DType t : {DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                  DType::IQ4_NL, DType::IQ4_XS}) {
    cases.push_back({t, false});
    cases.push_back({t, true});
  }
  return cases;
}
INSTANTIATE_TEST_SUITE_P(Legacy, LegacyGgmlVectors, testing::ValuesIn(all_cases()), vector_case_name);

TEST(LegacyQuants, Q8_1MatchesGgmlReferenceAndDequantizesAsQ8_0) {
  // ggml has only quantize_row_q8_1_ref (no weighted search, no to_float). Its blocks carry Q8_0's d and levels
  // plus s = d * sum(q), so their values must be ggml's Q8_0 values bit for bit.
  const std::vector<float> inputs = ggml_vector_floats("inputs.f32");
  const std::vector<float> imatrix = ggml_vector_floats("imatrix.f32");
  const std::vector<uint8_t> want = ggml_vector_bytes("q8_1.plain.q");
  ASSERT_EQ(want.size(), row_bytes(DType::Q8_1, kVectorCols) * kVectorRows);
  for (const float* importance : {static_cast<const float*>(nullptr), imatrix.data()}) {
    std::vector<uint8_t> got(want.size());
    quantize_rows(DType::Q8_1, inputs.data(), got.data(), kVectorRows, kVectorCols, importance);
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "byte " << i;
  }
  std::vector<float> values(inputs.size());
  to_float(DType::Q8_1, want.data(), values.data(), static_cast<int64_t>(values.size()));
  expect_same_bits(values, ggml_vector_floats("q8_0.plain.deq.f32"));
}

constexpr DType kLegacyTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0,   DType::Q5_1,
                                  DType::Q8_0, DType::Q8_1, DType::IQ4_NL, DType::IQ4_XS};

TEST(LegacyQuants, RowLengthNotMultipleOfBlockIsAnError) {
  std::vector<float> src(300, 1.f);
  std::vector<uint8_t> dst(4096);
  for (DType t : kLegacyTypes) {
    const TypeTraits& tt = type_traits(t);
    const int64_t bad = tt.block_size + 16;  // 48 for the 32-blocks, 272 for IQ4_XS
    EXPECT_THROW(quantize_rows(t, src.data(), dst.data(), 1, bad), Error) << tt.name;
    EXPECT_THROW(tt.quantize(src.data(), dst.data(), 1, bad, nullptr), Error) << tt.name;
    EXPECT_THROW(tt.to_float(dst.data(), src.data(), bad), Error) << tt.name;
  }
  EXPECT_THROW(quantize_rows(DType::IQ4_XS, src.data(), dst.data(), 1, 32), Error);  // a block of IQ4_NL, not XS
}

TEST(LegacyQuants, RowsAreQuantizedIndependently) {
  // Splitting the work by rows (as the threaded pipeline does) must not change a byte: quantize rows 12..15 alone
  // and compare with the same rows of a whole-matrix run, with importance (its per-row statistics matter).
  const std::vector<float> inputs = ggml_vector_floats("inputs.f32");
  const std::vector<float> imatrix = ggml_vector_floats("imatrix.f32");
  for (DType t : kLegacyTypes) {
    const size_t rb = row_bytes(t, kVectorCols);
    std::vector<uint8_t> whole(rb * kVectorRows), part(rb * 4);
    quantize_rows(t, inputs.data(), whole.data(), kVectorRows, kVectorCols, imatrix.data());
    quantize_rows(t, inputs.data() + 12 * kVectorCols, part.data(), 4, kVectorCols, imatrix.data());
    EXPECT_EQ(0, std::memcmp(part.data(), whole.data() + 12 * rb, part.size())) << dtype_name(t);
  }
}

// ggml's best_index_int8, restated: binary search for the bracketing pair, then the nearer one (ties go up).
int nearest_level_by_bisection(float x) {
  const int8_t* v = kIq4nlValues;
  if (x <= v[0]) return 0;
  if (x >= v[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    (x < v[mid] ? hi : lo) = mid;
  }
  return x - v[hi - 1] < v[hi] - x ? hi - 1 : hi;
}

TEST(LegacyQuants, Iq4nlNearestLevelMatchesGgmlSearch) {
  // Every table value, every midpoint (a tie) and its float neighbours, then a dense sweep beyond both ends.
  std::vector<float> probes;
  for (int k = 0; k < 16; ++k) {
    const float v = kIq4nlValues[k];
    probes.insert(probes.end(), {v, std::nextafter(v, -1e9f), std::nextafter(v, 1e9f)});
    if (k < 15) {
      const float mid = 0.5f * (v + static_cast<float>(kIq4nlValues[k + 1]));
      probes.insert(probes.end(), {mid, std::nextafter(mid, -1e9f), std::nextafter(mid, 1e9f)});
    }
  }
  for (float x = -200.f; x <= 200.f; x += 0.0625f) probes.push_back(x);
  probes.insert(probes.end(), {INFINITY, -INFINITY, 1e30f, -1e30f, 0.f, -0.f});
  for (float x : probes) ASSERT_EQ(legacy::iq4nl_nearest_level(x), nearest_level_by_bisection(x)) << "x = " << x;
  EXPECT_EQ(legacy::iq4nl_nearest_level(-115.5f), 1);  // the -127/-104 tie goes to the larger value
}

TEST(LegacyQuants, ZeroImportanceBlocksStayFinite) {
  // The first block of 32 has zero importance. ggml c392e50 writes a NaN IQ4_NL scale there (0/0); lowbit, as
  // later ggml, writes 0. Either way the other blocks must come back close to the input.
  std::vector<float> x(256), importance(256, 1.f);
  for (int j = 0; j < 256; ++j) x[j] = 0.1f * static_cast<float>((j * 37) % 17 - 8);
  for (int j = 0; j < 32; ++j) importance[j] = 0.f;
  for (DType t : kLegacyTypes) {
    std::vector<uint8_t> q(row_bytes(t, 256));
    std::vector<float> back(256);
    quantize_rows(t, x.data(), q.data(), 1, 256, importance.data());
    to_float(t, q.data(), back.data(), 256);
    for (int j = 0; j < 256; ++j) ASSERT_TRUE(std::isfinite(back[j])) << dtype_name(t) << " value " << j;
    for (int j = 32; j < 256; ++j) EXPECT_NEAR(back[j], x[j], 0.1f) << dtype_name(t) << " value " << j;
  }
}

TEST(LegacyQuants, NonFiniteValuesStayInTheirBlock) {
  // ggml does not check for NaN/Inf (lowbit's pipeline does, before quantizing); here they must neither crash nor
  // change any other row: row 0 is quantized alone and next to a row of NaN/Inf values.
  std::vector<float> src(2 * 512);
  for (int j = 0; j < 512; ++j) src[j] = std::cos(0.11f * static_cast<float>(j)) * static_cast<float>(1 + j % 5);
  for (int j = 512; j < 1024; ++j) src[j] = j % 3 == 0 ? NAN : (j % 3 == 1 ? INFINITY : -INFINITY);
  const std::vector<float> importance(512, 1.f);
  for (DType t : kLegacyTypes) {
    for (const float* w : {static_cast<const float*>(nullptr), importance.data()}) {
      const size_t rb = row_bytes(t, 512);
      std::vector<uint8_t> alone(rb), both(2 * rb);
      quantize_rows(t, src.data(), alone.data(), 1, 512, w);
      quantize_rows(t, src.data(), both.data(), 2, 512, w);
      EXPECT_EQ(0, std::memcmp(alone.data(), both.data(), rb)) << dtype_name(t);
    }
  }
}

TEST(LegacyQuants, KnownBlockLayouts) {
  // A hand-checked Q4_0 block: values k - 8 for k = 0..15, twice. The largest magnitude is -8, so d = 1.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j % 16 - 8);
  BlockQ4_0 q4;
  quantize_q4_0(x, &q4, 1, 32, nullptr);
  EXPECT_EQ(q4.d, 0x3C00);  // fp16 1.0
  for (int j = 0; j < 16; ++j) EXPECT_EQ(q4.qs[j], (j % 16) | ((j % 16) << 4)) << j;
  // Q5_1 of 0..31: min 0, d = 1, levels equal the values; bit 4 is set exactly for values 16..31 (qh = 0xFFFF0000).
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j);
  BlockQ5_1 q5;
  quantize_q5_1(x, &q5, 1, 32, nullptr);
  EXPECT_EQ(q5.d, 0x3C00);
  EXPECT_EQ(q5.m, 0);
  const uint8_t qh_want[4] = {0x00, 0x00, 0xFF, 0xFF};
  EXPECT_EQ(0, std::memcmp(q5.qh, qh_want, 4));
  float back[32];
  dequantize_q5_1(&q5, back, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(back[j], x[j]);
}

}  // namespace
}  // namespace lowbit
