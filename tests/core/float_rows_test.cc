#include "core/float_rows.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/float_formats.h"
#include "support/simd_targets.h"

namespace lowbit {
namespace {

// Every 16-bit code, so subnormals, infinities and every NaN payload are covered.
std::vector<uint16_t> all_codes() {
  std::vector<uint16_t> codes(65536);
  for (uint32_t c = 0; c < 65536; ++c) codes[c] = static_cast<uint16_t>(c);
  return codes;
}

// On every target: SSE4 and older have no F16C and convert by integer steps.
TEST(FloatRows, F16RowMatchesScalarDecoderBitForBit) {
  const std::vector<uint16_t> codes = all_codes();
  std::vector<float> out(codes.size());
  for_each_simd_target([&](int64_t) {
    f16_to_f32_row(codes.data(), out.data(), static_cast<int64_t>(codes.size()));
    for (uint32_t c = 0; c < 65536; ++c) {
      ASSERT_EQ(std::bit_cast<uint32_t>(out[c]), std::bit_cast<uint32_t>(f16_to_f32(static_cast<uint16_t>(c))))
          << "code " << c;
    }
  });
}

TEST(FloatRows, Bf16RowMatchesScalarDecoderBitForBit) {
  const std::vector<uint16_t> codes = all_codes();
  std::vector<float> out(codes.size());
  for_each_simd_target([&](int64_t) {
    bf16_to_f32_row(codes.data(), out.data(), static_cast<int64_t>(codes.size()));
    for (uint32_t c = 0; c < 65536; ++c) {
      ASSERT_EQ(std::bit_cast<uint32_t>(out[c]), std::bit_cast<uint32_t>(bf16_to_f32(static_cast<uint16_t>(c))))
          << "code " << c;
    }
  });
}

// Every float whose top 16 bits are any code and whose low 16 bits are 0, 0x1000 (below half an F16 step at every
// exponent), 0x8000 and 0x7FFF/0x8001 around it (ties and near-ties of BF16's rounding, and of F16's at the same
// places), 0xFFFF: the F16 range and its overflow, F16, BF16 and float subnormals, infinities and NaNs with
// payloads (BF16 keeps their top bits), each converted as the scalar encoder does, on every target.
TEST(FloatRows, F32ToF16AndBF16RowsMatchTheScalarEncodersBitForBit) {
  std::vector<float> in;
  for (uint32_t high = 0; high < 65536; ++high)
    for (uint32_t low : {0x0000u, 0x1000u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu}) in.push_back(std::bit_cast<float>(high << 16 | low));
  // F16 ties at the subnormal and normal steps: k + 0.5 units of 2^-24, and 1 + (k + 0.5) * 2^-10.
  for (int k = 0; k < 64; ++k) {
    in.push_back(std::ldexp(static_cast<float>(k) + 0.5f, -24));
    in.push_back(1.0f + std::ldexp(static_cast<float>(k) + 0.5f, -10));
    in.push_back(65504.0f + 16.0f * static_cast<float>(k));  // the largest half and past it, toward Inf
  }
  struct Encoder {
    const char* name;
    void (*row)(const float*, uint16_t*, int64_t);
    uint16_t (*scalar)(float);
  };
  for (const Encoder& e : {Encoder{"f16", f32_to_f16_row, f32_to_f16}, Encoder{"bf16", f32_to_bf16_row, f32_to_bf16}}) {
    std::vector<uint16_t> out(in.size() + 1);
    const int targets = for_each_simd_target([&](int64_t target) {  // AVX2 and AVX-512 alike
      out.assign(in.size() + 1, 0xABCD);
      e.row(in.data(), out.data(), static_cast<int64_t>(in.size()));
      for (size_t i = 0; i < in.size(); ++i)
        ASSERT_EQ(out[i], e.scalar(in[i])) << e.name << ", float bits " << std::hex << std::bit_cast<uint32_t>(in[i]) << " on "
                                           << hwy::TargetName(target);
      EXPECT_EQ(out[in.size()], 0xABCD);
    });
    EXPECT_GE(targets, 2);
  }
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);  // the tie at the top rounds to Inf, as IEEE has it
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // BF16's tie to even, down
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // and up
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0xFF800001u)), 0xFFC0);  // a signalling NaN made quiet, sign kept
}

// round_through_f16 is the scalar round trip, value by value, for ties, subnormals, overflow and NaN (one with a
// payload, which F16C's conversions keep), on every target, and touches nothing past n.
TEST(FloatRows, RoundThroughF16IsTheScalarRoundTrip) {
  std::vector<float> in = {0.0f, -0.0f, 1.0f / 3, 65504.0f, 65520.0f, -70000.0f, 1e-8f, -3e-5f, INFINITY, NAN,
                           std::bit_cast<float>(0xFFC12345u)};
  for (int k = 0; k < 40; ++k) in.push_back(1.0f + std::ldexp(static_cast<float>(k) + 0.5f, -10));
  for_each_simd_target([&](int64_t target) {
    // Every length, from the first value and from the fifth: each special goes through the masked rest (the lengths
    // short of a vector) and the whole vectors, in several lanes.
    for (size_t from : {size_t{0}, size_t{4}}) {
      for (size_t n = 1; from + n <= in.size(); ++n) {
        const auto first = in.begin() + static_cast<std::ptrdiff_t>(from);
        std::vector<float> v(first, first + static_cast<std::ptrdiff_t>(n));
        v.push_back(123.456f);
        round_through_f16(v.data(), static_cast<int64_t>(n));
        for (size_t i = 0; i < n; ++i)
          ASSERT_EQ(std::bit_cast<uint32_t>(v[i]), std::bit_cast<uint32_t>(f16_to_f32(f32_to_f16(in[from + i]))))
              << in[from + i] << " at " << i << " of " << n << " on " << hwy::TargetName(target);
        ASSERT_EQ(v.back(), 123.456f) << n << " values on " << hwy::TargetName(target);
      }
    }
  });
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
      std::vector<float> floats(static_cast<size_t>(n) + 3);
      for (size_t i = 0; i < floats.size(); ++i) floats[i] = 1.0f + 0.37f * static_cast<float>(i);
      std::vector<uint16_t> halves(static_cast<size_t>(n) + 1, 0xABCD);
      f32_to_f16_row(floats.data() + offset, halves.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(halves[i], f32_to_f16(floats[offset + i])) << n << " " << i;
      EXPECT_EQ(halves[n], 0xABCD);
      halves.assign(halves.size(), 0xABCD);
      f32_to_bf16_row(floats.data() + offset, halves.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(halves[i], f32_to_bf16(floats[offset + i])) << n << " " << i;
      EXPECT_EQ(halves[n], 0xABCD);
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
