// K-quants against ggml's own output (llama.cpp c392e50, tests/data/ggml-vectors/).
//
// Those vectors were generated with ggml's fp16->fp32 table uninitialised (it read 0), which skipped ggml's last
// step, the re-rounding of every level against the stored fp16 scales (and zeroed the *.deq.f32 files). So:
//  - with kquant::FinalLevels::kSearchLevels every byte must equal ggml's: this checks all the searches;
//  - the production path must keep every scale byte and may only move levels to ones that fit x better.
#include "quant/k_quants.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "quant/k_quant_common.h"
#include "quant/quant_search.h"
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

using RowsFn = void (*)(const char*, const float*, void*, int64_t, int64_t, const float*, kquant::FinalLevels);

struct KType {
  DType type;
  RowsFn rows;
  size_t levels_begin, levels_end;  // byte range of the levels within a block; the rest are scales
  double max_rel_rmse;              // bound on the relative RMSE of a N(0,1) row after a round trip
};
const KType kTypes[] = {
    {DType::Q2_K, kquant::quantize_k_rows<BlockQ2K>, 16, 80, 0.45},
    {DType::Q3_K, kquant::quantize_k_rows<BlockQ3K>, 0, 96, 0.25},
    {DType::Q4_K, kquant::quantize_k_rows<BlockQ4K>, 16, 144, 0.12},
    {DType::Q5_K, kquant::quantize_k_rows<BlockQ5K>, 16, 176, 0.06},
    {DType::Q6_K, kquant::quantize_k_rows<BlockQ6K>, 0, 192, 0.03},
};

struct Case {
  KType k;
  bool imatrix;
};
std::string case_name(const testing::TestParamInfo<Case>& info) {
  return std::string(dtype_name(info.param.k.type)) + (info.param.imatrix ? "_imatrix" : "_plain");
}
std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const KType& k : kTypes) {
    cases.push_back({k, false});
    cases.push_back({k, true});
  }
  return cases;
}

class GgmlVectors : public testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    inputs = read_floats("inputs.f32");
    imatrix = read_floats("imatrix.f32");
    ASSERT_EQ(inputs.size(), size_t{kRows} * kCols);
    ASSERT_EQ(imatrix.size(), size_t{kCols});
    const Case c = GetParam();
    want = read_bytes(std::string(dtype_name(c.k.type)) + (c.imatrix ? ".imatrix.q" : ".plain.q"));
    block_bytes = type_traits(c.k.type).block_bytes;
    ASSERT_EQ(want.size(), row_bytes(c.k.type, kCols) * kRows);
  }
  const float* importance() const { return GetParam().imatrix ? imatrix.data() : nullptr; }
  std::vector<char> quantize(kquant::FinalLevels mode) const {
    std::vector<char> out(want.size());
    GetParam().k.rows(dtype_name(GetParam().k.type), inputs.data(), out.data(), kRows, kCols, importance(), mode);
    return out;
  }
  std::vector<float> dequantize(const std::vector<char>& q) const {
    std::vector<float> out(inputs.size());
    to_float(GetParam().k.type, q.data(), out.data(), static_cast<int64_t>(out.size()));
    return out;
  }

  std::vector<float> inputs, imatrix;
  std::vector<char> want;
  size_t block_bytes = 0;
};

TEST_P(GgmlVectors, SearchIsByteIdenticalToGgml) {
  const std::vector<char> got = quantize(kquant::FinalLevels::kSearchLevels);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(static_cast<uint8_t>(got[i]), static_cast<uint8_t>(want[i]))
        << "block " << i / block_bytes << " (row " << i / block_bytes / (kCols / 256) << "), byte "
        << i % block_bytes;
  }
}

TEST_P(GgmlVectors, FinalLevelsKeepGgmlScalesAndFitBetter) {
  const KType& k = GetParam().k;
  const std::vector<char> got = quantize(kquant::FinalLevels::kRequantize);
  for (size_t i = 0; i < got.size(); ++i) {
    const size_t in_block = i % block_bytes;
    if (in_block >= k.levels_begin && in_block < k.levels_end) continue;
    ASSERT_EQ(static_cast<uint8_t>(got[i]), static_cast<uint8_t>(want[i])) << "block " << i / block_bytes
                                                                           << ", scale byte " << in_block;
  }
  // With the scales fixed, re-rounding picks the nearest representable value, so no value may get worse than with
  // the search's levels (up to float rounding in (x + m)/d), and the production path must differ somewhere.
  const std::vector<float> final_values = dequantize(got);
  const std::vector<float> search_values = dequantize(want);
  int improved = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const float x = inputs[i];
    const float e_final = std::fabs(x - final_values[i]);
    const float e_search = std::fabs(x - search_values[i]);
    ASSERT_LE(e_final, e_search + 1e-5f * std::fabs(x) + 1e-30f) << "value " << i << " x=" << x;
    if (e_final < e_search) ++improved;
  }
  EXPECT_GT(improved, 0);
  // Round trip quality on the N(0,1) rows (0, 3 and 12-15 are unit-scale random data).
  for (int row : {0, 12, 13, 14, 15}) {
    double err = 0, energy = 0;
    for (int j = 0; j < kCols; ++j) {
      const double x = inputs[row * kCols + j], e = x - final_values[row * kCols + j];
      err += e * e;
      energy += x * x;
    }
    EXPECT_LT(std::sqrt(err / energy), k.max_rel_rmse) << "row " << row;
  }
}

INSTANTIATE_TEST_SUITE_P(KQuants, GgmlVectors, testing::ValuesIn(all_cases()), case_name);

TEST(KQuants, SpecialRowsRoundTrip) {
  // All zeros must come back as zeros; a constant row exactly or nearly so.
  for (const KType& k : kTypes) {
    std::vector<float> src(512, 0.f);
    for (int j = 256; j < 512; ++j) src[j] = 0.5f;
    std::vector<char> q(row_bytes(k.type, 512));
    std::vector<float> back(512);
    quantize_rows(k.type, src.data(), q.data(), 1, 512);
    to_float(k.type, q.data(), back.data(), 512);
    for (int j = 0; j < 256; ++j) ASSERT_EQ(back[j], 0.f) << dtype_name(k.type) << " value " << j;
    for (int j = 256; j < 512; ++j) ASSERT_NEAR(back[j], 0.5f, 0.01f) << dtype_name(k.type) << " value " << j;
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
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K}) {
    for (const float* w : {static_cast<const float*>(nullptr), static_cast<const float*>(importance.data())}) {
      const size_t rb = row_bytes(t, 512);
      std::vector<char> alone(rb), both(2 * rb);
      quantize_rows(t, src.data(), alone.data(), 1, 512, w);
      quantize_rows(t, src.data(), both.data(), 2, 512, w);
      EXPECT_EQ(0, std::memcmp(alone.data(), both.data(), rb)) << dtype_name(t);
    }
  }
}

TEST(KQuants, RowLengthNotMultipleOf256IsAnError) {
  std::vector<float> src(300, 1.f);
  std::vector<char> dst(4096);
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K}) {
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
