#include "core/float_formats.h"

#include <cmath>

namespace lowbit {
namespace {

// A binary minifloat with `E` exponent bits and `M` mantissa bits (no sign), IEEE-style bias.
struct Minifloat {
  int exp_bits;
  int man_bits;
  bool has_inf;  // IEEE-style all-ones exponent = Inf/NaN; otherwise only the all-ones code is NaN (E4M3)

  int bias() const { return (1 << (exp_bits - 1)) - 1; }
  uint32_t sign_bit() const { return 1u << (exp_bits + man_bits); }
  uint32_t inf_code() const { return ((1u << exp_bits) - 1) << man_bits; }
  uint32_t nan_code() const { return has_inf ? inf_code() | (1u << (man_bits - 1)) : (1u << (exp_bits + man_bits)) - 1; }
  uint32_t max_finite_code() const { return has_inf ? inf_code() - 1 : nan_code() - 1; }

  float decode(uint32_t v) const {
    const bool neg = v & sign_bit();
    const uint32_t mag = v & (sign_bit() - 1);
    const uint32_t e = mag >> man_bits;
    const uint32_t m = mag & ((1u << man_bits) - 1);
    float r;
    if (has_inf && e == (1u << exp_bits) - 1) {
      r = m == 0 ? INFINITY : NAN;
    } else if (!has_inf && mag == nan_code()) {
      r = NAN;
    } else if (e == 0) {
      r = std::ldexp(static_cast<float>(m), 1 - bias() - man_bits);
    } else {
      r = std::ldexp(static_cast<float>(m | (1u << man_bits)), static_cast<int>(e) - bias() - man_bits);
    }
    return neg ? -r : r;
  }

  uint32_t encode(float f, bool saturate) const {
    const uint32_t u = std::bit_cast<uint32_t>(f);
    const uint32_t sign = (u >> 31) ? sign_bit() : 0;
    const uint32_t abs_bits = u & 0x7fffffffu;
    if (abs_bits > 0x7f800000u) return sign | nan_code();
    const uint32_t overflow = saturate ? max_finite_code() : (has_inf ? inf_code() : nan_code());
    if (abs_bits == 0x7f800000u) return sign | overflow;

    const int min_normal_exp = 1 - bias();  // unbiased exponent of the smallest normal
    const int f32_exp = static_cast<int>(abs_bits >> 23) - 127;
    uint32_t code;
    if (f32_exp >= min_normal_exp) {
      // Round the float's exponent+mantissa field as one integer: a carry out of the mantissa bumps the exponent.
      const int shift = 23 - man_bits;
      const uint32_t half = (1u << (shift - 1)) - 1 + ((abs_bits >> shift) & 1);
      const uint32_t rounded = (abs_bits + half) >> shift;
      const uint32_t rebias = static_cast<uint32_t>(127 - bias()) << man_bits;
      code = rounded - rebias;
      if (code > max_finite_code()) return sign | overflow;
    } else {
      // Subnormal target: value / smallest-subnormal is exact in float; round it half to even.
      const float scaled = std::ldexp(std::bit_cast<float>(abs_bits), man_bits - min_normal_exp);
      code = static_cast<uint32_t>(std::nearbyint(scaled));  // default rounding mode is ties-to-even
    }
    return sign | code;
  }
};

constexpr Minifloat kHalf{5, 10, true};
constexpr Minifloat kE4M3{4, 3, false};
constexpr Minifloat kE5M2{5, 2, true};

}  // namespace

// Half-precision decoding is on the hot path (activation scales, the F16 KV cache, attention's rounding): the
// half's exponent and mantissa moved into a float's fields, then scaled by 2^(127 - 15), which is exact for normal
// and subnormal halves alike; the same values as kHalf.decode (Inf and NaN as it gives them). It replaced a
// 256 KiB table, which generation's weight stream kept evicting: its lookups were 2.5 % of tg time.
float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t mag = h & 0x7FFFu;
  const float r = mag >= 0x7C00u ? (mag == 0x7C00u ? INFINITY : NAN) : std::bit_cast<float>(mag << 13) * 0x1p112f;
  return std::bit_cast<float>(std::bit_cast<uint32_t>(r) | sign);
}
uint16_t f32_to_f16(float f) { return static_cast<uint16_t>(kHalf.encode(f, false)); }

uint16_t f32_to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64);
  return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

float fp8_e4m3_to_f32(uint8_t v) { return kE4M3.decode(v); }
uint8_t f32_to_fp8_e4m3(float f, bool saturate) { return static_cast<uint8_t>(kE4M3.encode(f, saturate)); }
float fp8_e5m2_to_f32(uint8_t v) { return kE5M2.decode(v); }
uint8_t f32_to_fp8_e5m2(float f, bool saturate) { return static_cast<uint8_t>(kE5M2.encode(f, saturate)); }

}  // namespace lowbit
