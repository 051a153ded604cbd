#include "core/float_formats.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace lowbit {
namespace {

// Independent reference: the nearest representable value by exhaustive search over all codes (ties to the
// code with an even last bit), instead of the bit tricks the encoder uses.
template <typename Decode>
uint32_t nearest_code(float x, int n_codes, Decode decode) {
  uint32_t best = 0;
  double best_err = std::numeric_limits<double>::infinity();
  for (int c = 0; c < n_codes; ++c) {
    const float v = decode(static_cast<uint32_t>(c));
    if (std::isnan(v) || std::isinf(v)) continue;
    if ((std::signbit(v) != std::signbit(x)) && v != 0.0f) continue;
    if (std::signbit(v) != std::signbit(x)) continue;  // keep the sign of zero
    const double err = std::fabs(static_cast<double>(v) - static_cast<double>(x));
    if (err < best_err || (err == best_err && (c & 1) == 0)) {
      best_err = err;
      best = static_cast<uint32_t>(c);
    }
  }
  return best;
}

TEST(Float16, EveryCodeRoundTrips) {
  for (uint32_t c = 0; c < 65536; ++c) {
    const float f = f16_to_f32(static_cast<uint16_t>(c));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f)))) << c;
      continue;
    }
    EXPECT_EQ(f32_to_f16(f), c) << "code " << c;
  }
}

// Every code decodes to sign * 2^(e - 15) * 1.m (e > 0) or sign * 2^-14 * 0.m, bit for bit; Inf as Inf and every
// NaN as the canonical quiet NaN with the code's sign.
TEST(Float16, EveryCodeDecodesFromItsFields) {
  for (uint32_t c = 0; c < 65536; ++c) {
    const uint32_t e = (c >> 10) & 0x1F, m = c & 0x3FF;
    float want = e == 31 ? (m == 0 ? INFINITY : NAN)
                 : e == 0 ? std::ldexp(static_cast<float>(m), -24)
                          : std::ldexp(static_cast<float>(m | 0x400), static_cast<int>(e) - 25);
    if (c & 0x8000) want = -want;
    EXPECT_EQ(std::bit_cast<uint32_t>(f16_to_f32(static_cast<uint16_t>(c))), std::bit_cast<uint32_t>(want)) << "code " << c;
  }
}

TEST(Float16, KnownValues) {
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);                 // rounds up to Inf
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);    // exactly half the smallest subnormal: ties to even
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);    // 1.5 subnormals: ties to even (2)
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(INFINITY), 0x7C00);
  EXPECT_EQ(f32_to_f16(NAN) & 0x7FFF, 0x7E00);
}

TEST(Float16, RandomValuesMatchExhaustiveNearest) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mant(-1.0f, 1.0f);
  std::uniform_int_distribution<int> expo(-27, 15);
  for (int i = 0; i < 300; ++i) {
    const float x = std::ldexp(mant(rng), expo(rng));
    EXPECT_EQ(f32_to_f16(x), nearest_code(x, 65536, [](uint32_t c) { return f16_to_f32(static_cast<uint16_t>(c)); }))
        << x;
  }
}

TEST(BFloat16, EveryCodeRoundTripsAndRoundsToNearestEven) {
  for (uint32_t c = 0; c < 65536; ++c) {
    const float f = bf16_to_f32(static_cast<uint16_t>(c));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_bf16(f), c);
  }
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(Fp8, E4M3AllCodes) {
  int nan_codes = 0;
  for (uint32_t c = 0; c < 256; ++c) {
    const float f = fp8_e4m3_to_f32(static_cast<uint8_t>(c));
    if (std::isnan(f)) {
      ++nan_codes;
      continue;
    }
    EXPECT_FALSE(std::isinf(f));
    EXPECT_EQ(f32_to_fp8_e4m3(f), c);
  }
  EXPECT_EQ(nan_codes, 2);  // 0x7F and 0xFF only
  EXPECT_EQ(fp8_e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(f32_to_fp8_e4m3(500.0f), 0x7F);                  // overflow -> NaN
  EXPECT_EQ(f32_to_fp8_e4m3(500.0f, true), 0x7E);            // saturating
  EXPECT_EQ(f32_to_fp8_e4m3(-1e9f, true), 0xFE);
  EXPECT_EQ(f32_to_fp8_e4m3(463.0f), 0x7E);                  // below the halfway point to 480
}

TEST(Fp8, E5M2AllCodes) {
  for (uint32_t c = 0; c < 256; ++c) {
    const float f = fp8_e5m2_to_f32(static_cast<uint8_t>(c));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_fp8_e5m2(f), c);
  }
  EXPECT_EQ(fp8_e5m2_to_f32(0x7B), 57344.0f);
  EXPECT_TRUE(std::isinf(fp8_e5m2_to_f32(0x7C)));
  EXPECT_EQ(f32_to_fp8_e5m2(1e6f), 0x7C);
  EXPECT_EQ(f32_to_fp8_e5m2(1e6f, true), 0x7B);
}

TEST(Fp8, RandomValuesMatchExhaustiveNearest) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> mant(-1.0f, 1.0f);
  std::uniform_int_distribution<int> expo(-12, 8);
  for (int i = 0; i < 500; ++i) {
    const float x = std::ldexp(mant(rng), expo(rng));
    auto e4 = [](uint32_t c) { return fp8_e4m3_to_f32(static_cast<uint8_t>(c)); };
    auto e5 = [](uint32_t c) { return fp8_e5m2_to_f32(static_cast<uint8_t>(c)); };
    if (std::fabs(x) <= 448.0f) {
      EXPECT_EQ(f32_to_fp8_e4m3(x), nearest_code(x, 256, e4)) << x;
    }
    EXPECT_EQ(f32_to_fp8_e5m2(x), nearest_code(x, 256, e5)) << x;
  }
}

}  // namespace
}  // namespace lowbit
