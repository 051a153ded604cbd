// The small per-row operations of a transformer forward pass, in float with a fixed evaluation order (so the
// engine's results do not depend on how rows are split across threads).
#pragma once

#include <cstdint>

namespace lowbit {

// out = x / sqrt(mean(x^2) + eps) * w (the sum of squares in double, in eight parts added pairwise: the same bits on
// every target). `out` may equal `x`.
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out);
// Its sum of squares: part k sums x[i]^2 (exact in double) over i = k mod 8 below n rounded down to 8, in order,
// the rest goes to part 0, and the parts are added ((0 + 4) + (2 + 6)) + ((1 + 5) + (3 + 7)).
double sum_of_squares(const float* x, int64_t n);

// In place, n > 0: e_i = fixed_exp(x_i - max), their sum in 16 parts (part k adds e_i for i = k mod 16 below n
// rounded down to 16, in order of i, the rest go to part 0; then parts k and k + 8 are added, k and k + 4, k and
// k + 2, k and k + 1), and x_i = e_i * (1 / sum): the same bits on every target, as vectors of 16 or 8 lanes or
// plainly.
void softmax(float* x, int64_t n);

// e^x within 2 ulp for SiLU and softmax: x clamped to [-87.3, 88.3] (0 below, +Inf above, NaN kept), then
// x = n ln2 + r with n = round(x / ln2) and ln2 in two parts, e^r by a degree-7 polynomial (Cephes' expf
// coefficients), times 2^n. Every step is one IEEE operation or FMA, so the SIMD lanes (ops/elementwise.cc) give
// these bits exactly on every target, where libm's expf would not.
// Its constants, here once for both.
struct FixedExp {
  static constexpr float kLow = -87.3f, kHigh = 88.3f, kLog2e = 1.44269504088896341f;
  static constexpr float kMinusLn2[2] = {-0.693359375f, 2.12194440e-4f};  // -ln 2 in two parts, high first
  static constexpr float kPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                     4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};  // highest power first
};
inline float fixed_exp(float x) {
  if (x > FixedExp::kHigh) return __builtin_inff();
  if (x < FixedExp::kLow) return 0.0f;
  if (x != x) return x;
  const float n = __builtin_nearbyintf(x * FixedExp::kLog2e);
  float r = __builtin_fmaf(n, FixedExp::kMinusLn2[0], x);
  r = __builtin_fmaf(n, FixedExp::kMinusLn2[1], r);
  float p = FixedExp::kPoly[0];
  for (int i = 1; i < 6; ++i) p = __builtin_fmaf(p, r, FixedExp::kPoly[i]);
  const float y = __builtin_fmaf(p, r * r, r) + 1.0f;
  return y * __builtin_bit_cast(float, (static_cast<int>(n) + 127) << 23);
}

inline float silu(float x) { return x / (1.0f + fixed_exp(-x)); }

// SwiGLU's gating, in place: gate[i] = silu(gate[i]) * up[i], in SIMD with silu's bits.
void swiglu(float* gate, const float* up, int64_t n);

}  // namespace lowbit
