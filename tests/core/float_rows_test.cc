#include "core/float_rows.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/float_formats.h"

namespace lowbit {
namespace {

// Every 16-bit code, so subnormals, infinities and every NaN payload are covered.
std::vector<uint16_t> all_codes() {
  std::vector<uint16_t> codes(65536);
  for (uint32_t c = 0; c < 65536; ++c) codes[c] = static_cast<uint16_t>(c);
  return codes;
}

TEST(FloatRows, F16RowMatchesScalarDecoderBitForBit) {
  const std::vector<uint16_t> codes = all_codes();
  std::vector<float> out(codes.size());
  f16_to_f32_row(codes.data(), out.data(), static_cast<int64_t>(codes.size()));
  for (uint32_t c = 0; c < 65536; ++c) {
    ASSERT_EQ(std::bit_cast<uint32_t>(out[c]), std::bit_cast<uint32_t>(f16_to_f32(static_cast<uint16_t>(c))))
        << "code " << c;
  }
}

TEST(FloatRows, Bf16RowMatchesScalarDecoderBitForBit) {
  const std::vector<uint16_t> codes = all_codes();
  std::vector<float> out(codes.size());
  bf16_to_f32_row(codes.data(), out.data(), static_cast<int64_t>(codes.size()));
  for (uint32_t c = 0; c < 65536; ++c) {
    ASSERT_EQ(std::bit_cast<uint32_t>(out[c]), std::bit_cast<uint32_t>(bf16_to_f32(static_cast<uint16_t>(c))))
        << "code " << c;
  }
}

// Lengths that leave a tail after the vector loop, from unaligned starts; nothing past n is written.
TEST(FloatRows, OddLengthsAndOffsetsConvertExactlyTheirRange) {
  const std::vector<uint16_t> codes = all_codes();
  for (int64_t offset : {0, 1, 3}) {
    for (int64_t n : {0, 1, 7, 15, 17, 33, 100}) {
      std::vector<float> out(static_cast<size_t>(n) + 1, -7.f);
      f16_to_f32_row(codes.data() + 15360 + offset, out.data(), n);  // from 1.0 upwards
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(out[i], f16_to_f32(codes[15360 + offset + i])) << n << " " << i;
      EXPECT_EQ(out[n], -7.f);
      bf16_to_f32_row(codes.data() + 16256 + offset, out.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(out[i], bf16_to_f32(codes[16256 + offset + i])) << n << " " << i;
      EXPECT_EQ(out[n], -7.f);
    }
  }
}

TEST(FloatRows, FirstNonFiniteFindsTheEarliestNaNOrInf) {
  std::vector<float> v(203, 1.5f);
  EXPECT_EQ(first_non_finite(v.data(), static_cast<int64_t>(v.size())), -1);
  EXPECT_EQ(first_non_finite(v.data(), 0), -1);
  v[190] = -INFINITY;  // in the scalar tail for any vector width up to 16
  EXPECT_EQ(first_non_finite(v.data(), static_cast<int64_t>(v.size())), 190);
  EXPECT_EQ(first_non_finite(v.data(), 190), -1);
  v[77] = NAN;
  v[41] = INFINITY;
  EXPECT_EQ(first_non_finite(v.data(), static_cast<int64_t>(v.size())), 41);
  EXPECT_EQ(first_non_finite(v.data() + 42, 161), 35);  // the NaN at 77, from an unaligned start
  v[0] = std::numeric_limits<float>::max();  // large but finite
  v[1] = std::numeric_limits<float>::denorm_min();
  EXPECT_EQ(first_non_finite(v.data(), 41), -1);
}

}  // namespace
}  // namespace lowbit
