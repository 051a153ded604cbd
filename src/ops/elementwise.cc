// The per-row operations, compiled for every x86 target Highway knows and picked at run time; swiglu's and
// softmax's lanes compute fixed_exp's exact steps (ops/elementwise.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/elementwise.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>

#include "ops/elementwise.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The lanes below use fixed_exp only on targets with FMA: Highway's MulAdd elsewhere rounds twice, which would
// change the bits; the others take the scalar steps.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// fixed_exp of every lane, step for step. kNonPositive: for x <= 0 or NaN only (softmax's x - max), which never
// reaches the upper clamp. n = round(x log2 e) by adding and taking away 1.5 * 2^23 (round to nearest even, as
// nearbyintf; |x log2 e| < 2^22), and 2^n from that sum's bits (0x4B400000 + n): Highway's float-to-int conversion
// added a fix-up for lanes out of int range, five instructions of the ~30. With the upper clamp gone as well, and
// the max pass below in four chains, softmax ran 1.22-1.29x as fast at 1024-4096 scores and 1.10x at 256 on Zen 5
// (the code before and this in one process, alternated; the same bits).
template <bool kNonPositive = false, class D>
HWY_INLINE hn::Vec<D> FixedExpLanes(D df, hn::Vec<D> x) {
  const auto c = [&](float v) { return hn::Set(df, v); };
  auto xc = hn::Max(x, c(FixedExp::kLow));
  if constexpr (!kNonPositive) xc = hn::Min(xc, c(FixedExp::kHigh));
  constexpr float kRounder = 12582912.0f;  // 1.5 * 2^23
  const auto shifted = hn::Add(hn::Mul(xc, c(FixedExp::kLog2e)), c(kRounder));
  const auto k = hn::Sub(shifted, c(kRounder));
  auto r = hn::MulAdd(k, c(FixedExp::kMinusLn2[0]), xc);
  r = hn::MulAdd(k, c(FixedExp::kMinusLn2[1]), r);
  auto p = c(FixedExp::kPoly[0]);
#pragma GCC unroll 6
  for (int i = 1; i < 6; ++i) p = hn::MulAdd(p, r, c(FixedExp::kPoly[i]));
  const auto y = hn::Add(hn::MulAdd(p, hn::Mul(r, r), r), c(1.0f));
  const hn::RebindToSigned<decltype(df)> di;
  const auto biased = hn::Add(hn::BitCast(di, shifted), hn::Set(di, 127 - 0x4B400000));  // n + 127
  const auto two_k = hn::BitCast(df, hn::ShiftLeft<23>(biased));
  auto e = hn::Mul(y, two_k);
  e = hn::IfThenElse(hn::IsNaN(x), x, e);
  e = hn::IfThenZeroElse(hn::Lt(x, c(FixedExp::kLow)), e);
  if constexpr (kNonPositive) return e;
  return hn::IfThenElse(hn::Gt(x, c(FixedExp::kHigh)), c(HUGE_VALF), e);
}
#endif

void Swiglu(float* gate, const float* up, int64_t n) {
  int64_t i = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const hn::ScalableTag<float> df;
  const int64_t step = static_cast<int64_t>(hn::Lanes(df));
  for (; i + step <= n; i += step) {
    const auto g = hn::LoadU(df, gate + i);
    const auto e = FixedExpLanes(df, hn::Neg(g));
    hn::StoreU(hn::Mul(hn::Div(g, hn::Add(hn::Set(df, 1.0f), e)), hn::LoadU(df, up + i)), df, gate + i);
  }
#endif
  for (; i < n; ++i) gate[i] = silu(gate[i]) * up[i];
}

// softmax (ops/elementwise.h): a vector's lanes are parts of the sum (one vector of 16 on AVX-512, two of 8 on
// AVX2). Plainly (std::exp, one chain of adds) attention's softmax took 14 % of an r1b-Q4_K_M token at 1024 keys
// (perf, -t 1); against that, alternated token by token in one process: 1.04x at 256 keys, 1.14x at 1024, 1.20x at
// 2000 (-t 1), 1.10x at 1024 (-t 2).
void Softmax(float* x, int64_t n) {
  constexpr int64_t kParts = 16;
  float part[kParts] = {};
  float mx = -INFINITY;
  int64_t i = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const hn::CappedTag<float, kParts> df;
  const size_t lanes = hn::Lanes(df), vectors = kParts / lanes;
  constexpr size_t kMaxVectors = kParts / 8;  // AVX2's 8-lane vectors: two; AVX-512's: one
  // The max in four chains: one waited on each vmaxps.
  const int64_t step = static_cast<int64_t>(lanes);
  auto top = hn::Set(df, -INFINITY), top1 = top, top2 = top, top3 = top;
  for (; i + 4 * step <= n; i += 4 * step) {
    top = hn::Max(top, hn::LoadU(df, x + i));
    top1 = hn::Max(top1, hn::LoadU(df, x + i + step));
    top2 = hn::Max(top2, hn::LoadU(df, x + i + 2 * step));
    top3 = hn::Max(top3, hn::LoadU(df, x + i + 3 * step));
  }
  top = hn::Max(hn::Max(top, top1), hn::Max(top2, top3));
  for (; i + step <= n; i += step) top = hn::Max(top, hn::LoadU(df, x + i));
  mx = hn::GetLane(hn::MaxOfLanes(df, top));
#endif
  for (; i < n; ++i) mx = std::max(mx, x[i]);
  i = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  hn::Vec<decltype(df)> acc[kMaxVectors];
  for (auto& a : acc) a = hn::Zero(df);
  const auto m = hn::Set(df, mx);
  for (; i + kParts <= n; i += kParts)
    for (size_t v = 0; v < vectors; ++v) {
      float* at = x + i + v * lanes;
      const auto e = FixedExpLanes<true>(df, hn::Sub(hn::LoadU(df, at), m));  // x - max <= 0 (or NaN)
      hn::StoreU(e, df, at);
      acc[v] = hn::Add(acc[v], e);
    }
  for (size_t v = 0; v < vectors; ++v) hn::StoreU(acc[v], df, part + v * lanes);
#else
  for (; i + kParts <= n; i += kParts)
    for (int64_t k = 0; k < kParts; ++k) part[k] += (x[i + k] = fixed_exp(x[i + k] - mx));
#endif
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  // The last values, fewer than kParts: their exps a vector at a time (masked load), summed in order as the scalar
  // loop sums them. A generated token's attention (ops/attention.cc) has such a rest at most positions: this took
  // its average over 1-32 keys from 5.2-5.5 to 5.0-5.1 us a layer (TinyLlama's heads, F16 cache, -t 1; a masked
  // store and scalar reloads of it instead made one key slower).
  for (; i < n; i += step) {
    float e[kParts];
    const auto count = std::min(step, n - i);
    const auto rest = hn::MaskedLoad(hn::FirstN(df, static_cast<size_t>(count)), df, x + i);
    hn::StoreU(FixedExpLanes<true>(df, hn::Sub(rest, m)), df, e);  // the lanes past n are not used
    for (int64_t k = 0; k < count; ++k) part[0] += (x[i + k] = e[k]);
  }
#else
  for (; i < n; ++i) part[0] += (x[i] = fixed_exp(x[i] - mx));
#endif
  for (int64_t half = kParts / 2; half > 0; half /= 2)
    for (int64_t k = 0; k < half; ++k) part[k] += part[k + half];
  // Times the sum's reciprocal, as ggml scales its weights, not divided by the sum: a division of 16 lanes held a
  // pipe for 5.3 cycles on Zen 5, a third of the softmax of attention's weights.
  const float inverse = 1.0f / part[0];
  i = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const auto s = hn::Set(df, inverse);
  for (; i + step <= n; i += step)
    hn::StoreU(hn::Mul(hn::LoadU(df, x + i), s), df, x + i);
#endif
  for (; i < n; ++i) x[i] *= inverse;
}

// rms_norm's sum of squares: part[k] sums x[i]^2 for i = k mod 8 below n rounded down to 8 (the double products
// are exact, so only the sums round, each in order of i), the rest into part[0]; the parts added pairwise. The
// same bits on every target: a vector's lanes are parts (8 doubles on AVX-512, two vectors of 4 on AVX2).
double SumOfSquares(const float* x, int64_t n) {
  constexpr int64_t kParts = 8;
  double part[kParts] = {};
  int64_t i = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const hn::CappedTag<double, kParts> dd;
  const hn::Rebind<float, decltype(dd)> df;
  constexpr size_t kMaxVectors = kParts / 4;  // AVX2's 4-lane vectors: two; AVX-512's: one
  const size_t lanes = hn::Lanes(dd), vectors = kParts / lanes;
  hn::Vec<decltype(dd)> acc[kMaxVectors];
  for (auto& a : acc) a = hn::Zero(dd);
  for (; i + kParts <= n; i += kParts)
    for (size_t v = 0; v < vectors; ++v) {
      const auto xv = hn::PromoteTo(dd, hn::LoadU(df, x + i + v * lanes));
      acc[v] = hn::Add(acc[v], hn::Mul(xv, xv));
    }
  for (size_t v = 0; v < vectors; ++v) hn::StoreU(acc[v], dd, part + v * lanes);
#else
  for (; i + kParts <= n; i += kParts)
    for (int64_t k = 0; k < kParts; ++k) part[k] += static_cast<double>(x[i + k]) * x[i + k];
#endif
  for (; i < n; ++i) part[0] += static_cast<double>(x[i]) * x[i];
  return ((part[0] + part[4]) + (part[2] + part[6])) + ((part[1] + part[5]) + (part[3] + part[7]));
}

// out[i] = x[i] * scale * w[i], two IEEE multiplies in that order in every lane.
void ScaleRow(const float* x, float scale, const float* w, int64_t n, float* out) {
  int64_t i = 0;
  const hn::ScalableTag<float> df;
  const int64_t step = static_cast<int64_t>(hn::Lanes(df));
  for (; i + step <= n; i += step)
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), hn::Set(df, scale)), hn::LoadU(df, w + i)), df, out + i);
  for (; i < n; ++i) out[i] = x[i] * scale * w[i];
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {

HWY_EXPORT(Swiglu);
HWY_EXPORT(Softmax);
HWY_EXPORT(SumOfSquares);
HWY_EXPORT(ScaleRow);

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
  // The sum in eight parts (SumOfSquares): one chain of dependent double adds took 2.1-2.3 us for 2048 values
  // (0.7 % of a Q4_K_M token at -t 1, perf).
  const double ss = sum_of_squares(x, n);
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  HWY_DYNAMIC_DISPATCH(ScaleRow)(x, scale, w, n, out);
}

double sum_of_squares(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(SumOfSquares)(x, n); }

void softmax(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(Softmax)(x, n); }

void swiglu(float* gate, const float* up, int64_t n) { HWY_DYNAMIC_DISPATCH(Swiglu)(gate, up, n); }

}  // namespace lowbit
#endif  // HWY_ONCE
