// K-quants against ggml's own output (llama.cpp c392e50, tests/data/ggml-vectors/): every quantized byte and
// every dequantized float must match, with and without the importance matrix.
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
#include "core/float_formats.h"
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

struct Case {
  DType type;
  bool imatrix;
};
std::string case_name(const testing::TestParamInfo<Case>& info) {
  return std::string(dtype_name(info.param.type)) + (info.param.imatrix ? "_imatrix" : "_plain");
}

class GgmlVectors : public testing::TestWithParam<Case> {};

TEST_P(GgmlVectors, QuantizedBytesAndDequantizedFloatsMatchGgml) {
  const Case c = GetParam();
  const TypeTraits& t = type_traits(c.type);
  ASSERT_NE(t.quantize, nullptr);
  ASSERT_NE(t.to_float, nullptr);
  const std::vector<float> inputs = read_floats("inputs.f32");
  const std::vector<float> imatrix = read_floats("imatrix.f32");
  ASSERT_EQ(inputs.size(), size_t{kRows} * kCols);
  ASSERT_EQ(imatrix.size(), size_t{kCols});
  const std::string stem = std::string(t.name) + (c.imatrix ? ".imatrix" : ".plain");
  const std::vector<char> want_q = read_bytes(stem + ".q");
  const size_t row_size = row_bytes(c.type, kCols);
  ASSERT_EQ(want_q.size(), row_size * kRows);

  std::vector<char> got_q(want_q.size());
  kquant::quantize_q6_K_rows(inputs.data(), got_q.data(), kRows, kCols, c.imatrix ? imatrix.data() : nullptr,
                             kquant::FinalLevels::kSearchLevels);
  for (int r = 0; r < kRows; ++r) {
    for (size_t i = 0; i < row_size; ++i) {
      const size_t at = r * row_size + i;
      ASSERT_EQ(static_cast<uint8_t>(got_q[at]), static_cast<uint8_t>(want_q[at]))
          << "row " << r << " byte " << i << " (block " << i / t.block_bytes << ", offset " << i % t.block_bytes
          << ")";
    }
  }

}

INSTANTIATE_TEST_SUITE_P(KQuants, GgmlVectors,
                         testing::Values(Case{DType::Q6_K, false}, Case{DType::Q6_K, true}),
                         case_name);

TEST(KQuants, RowLengthNotMultipleOf256IsAnError) {
  std::vector<float> src(300, 1.f);
  std::vector<char> dst(4096);
  EXPECT_THROW(quantize_q6_K(src.data(), dst.data(), 1, 300, nullptr), Error);
  EXPECT_THROW(quantize_rows(DType::Q6_K, src.data(), dst.data(), 1, 300), Error);
  EXPECT_THROW(dequantize_q6_K(dst.data(), src.data(), 300), Error);
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

}  // namespace
}  // namespace lowbit
