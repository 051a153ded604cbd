// The plain (no importance) roundings of the 32-value block formats, many blocks per call, each block in SIMD
// registers: legacy_quants.h's symmetric_plain / affine_plain and Q8_0's rounding, with the same result for every
// input. Maxima and minima are exact in any order; where the scalar code's order decides something (which of two
// equal magnitudes is the block's peak, the sign of a zero minimum) it is looked up in element order. The
// per-element arithmetic is the scalar expression, lane by lane, unfused (src/quant/ is built with
// -ffp-contract=off). Compiled for every x86 target Highway knows and picked at run time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/legacy_plain_batch.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cfloat>

#include "quant/legacy_quants.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;

// The first element of x[0..32) equal to `value` (which one of +0/-0, or of x/-x for a magnitude).
template <typename Match>
HWY_INLINE float FirstMatch(const float* x, const Match& match) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  for (size_t c = 0; c < kLegacyBlock; c += lanes) {
    const auto m = match(hn::LoadU(df, x + c));
    if (!hn::AllFalse(df, m)) return x[c + static_cast<size_t>(hn::FindFirstTrue(df, m))];
  }
  return 0.f;  // not reached: callers look for a value the block holds
}

// legacy.cc's truncate_level: 0 for v <= 0 (and NaN), max_level from max_level up, else v truncated.
HWY_INLINE VI TruncateLevel(VF v, int max_level) {
  const DF df;
  const DI di;
  const VI truncated = hn::ConvertTo(di, v);
  const VI capped = hn::IfThenElse(hn::RebindMask(di, hn::Ge(v, hn::Set(df, static_cast<float>(max_level)))),
                                   hn::Set(di, max_level), truncated);
  return hn::IfThenElseZero(hn::RebindMask(di, hn::Gt(v, hn::Zero(df))), capped);
}

HWY_INLINE void StoreLevels(VI l, uint8_t* out) {
  const hn::Rebind<uint8_t, DI> du8;
  hn::StoreU(hn::DemoteTo(du8, l), du8, out);
}

void SymmetricPlainBatch(const float* x, int64_t n_blocks, int nmax, uint8_t* levels, float* d) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* xb = x + kLegacyBlock * b;
    VF amax = hn::Zero(df);
    for (size_t c = 0; c < kLegacyBlock; c += lanes) amax = hn::Max(amax, hn::Abs(hn::LoadU(df, xb + c)));
    const float peak_abs = hn::GetLane(hn::MaxOfLanes(df, amax));
    // signed_abs_max: the first value of that magnitude, 0 for an all-zero block.
    const VF peak_v = hn::Set(df, peak_abs);
    const float peak = peak_abs > 0 ? FirstMatch(xb, [&](VF v) { return hn::Eq(hn::Abs(v), peak_v); }) : 0.f;
    const float scale = peak / static_cast<float>(-nmax);
    const float id = scale != 0 ? 1.0f / scale : 0.0f;
    const VF vid = hn::Set(df, id);
    const VF offset = hn::Set(df, static_cast<float>(nmax) + 0.5f);
    for (size_t c = 0; c < kLegacyBlock; c += lanes) {
      const VF v = hn::Add(hn::Mul(hn::LoadU(df, xb + c), vid), offset);
      StoreLevels(TruncateLevel(v, 2 * nmax - 1), levels + kLegacyBlock * b + c);
    }
    d[b] = scale;
  }
}

void AffinePlainBatch(const float* x, int64_t n_blocks, int nmax, uint8_t* levels, legacy::ScaleAndMin* out) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* xb = x + kLegacyBlock * b;
    VF vmin = hn::Set(df, FLT_MAX), vmax = hn::Set(df, -FLT_MAX);
    for (size_t c = 0; c < kLegacyBlock; c += lanes) {
      const VF v = hn::LoadU(df, xb + c);
      vmin = hn::Min(vmin, v);
      vmax = hn::Max(vmax, v);
    }
    float min = hn::GetLane(hn::MinOfLanes(df, vmin));
    float max = hn::GetLane(hn::MaxOfLanes(df, vmax));
    // The scalar scan keeps the first of equal values: a zero extreme has the sign of the block's first zero.
    const VF zero = hn::Zero(df);
    auto is_zero = [&](VF v) { return hn::Eq(v, zero); };
    if (min == 0) min = FirstMatch(xb, is_zero);
    if (max == 0) max = FirstMatch(xb, is_zero);
    const float scale = (max - min) / static_cast<float>(nmax);
    const float id = scale != 0 ? 1.0f / scale : 0.0f;
    const VF vmin_s = hn::Set(df, min), vid = hn::Set(df, id), half = hn::Set(df, 0.5f);
    for (size_t c = 0; c < kLegacyBlock; c += lanes) {
      const VF scaled = hn::Mul(hn::Sub(hn::LoadU(df, xb + c), vmin_s), vid);
      StoreLevels(TruncateLevel(hn::Add(scaled, half), nmax), levels + kLegacyBlock * b + c);
    }
    out[b] = {scale, min};
  }
}

void Q8PlainBatch(const float* x, int64_t n_blocks, int8_t* qs, float* d) {
  const DF df;
  const DI di;
  const hn::Rebind<int8_t, DI> di8;
  const size_t lanes = hn::Lanes(df);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* xb = x + kLegacyBlock * b;
    VF amax = hn::Zero(df);
    for (size_t c = 0; c < kLegacyBlock; c += lanes) amax = hn::Max(amax, hn::Abs(hn::LoadU(df, xb + c)));
    const float scale = hn::GetLane(hn::MaxOfLanes(df, amax)) / 127;
    const float id = scale != 0 ? 1.0f / scale : 0.0f;
    const VF vid = hn::Set(df, id);
    for (size_t c = 0; c < kLegacyBlock; c += lanes) {
      const VF v = hn::Mul(hn::LoadU(df, xb + c), vid);
      // std::round: halves away from zero. v - trunc(v) is exact, so the test on it is too.
      const VF t = hn::Trunc(v);
      const auto away = hn::Ge(hn::Abs(hn::Sub(v, t)), hn::Set(df, 0.5f));
      const VF r = hn::IfThenElse(away, hn::Add(t, hn::CopySign(hn::Set(df, 1.f), v)), t);
      // NaN (only from non-finite input) becomes 0, as in the scalar code; finite r is within [-127, 127].
      const VI q = hn::IfThenZeroElse(hn::RebindMask(di, hn::IsNaN(r)), hn::ConvertTo(di, r));
      hn::StoreU(hn::DemoteTo(di8, q), di8, qs + kLegacyBlock * b + c);
    }
    d[b] = scale;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::legacy {

HWY_EXPORT(SymmetricPlainBatch);
HWY_EXPORT(AffinePlainBatch);
HWY_EXPORT(Q8PlainBatch);

void symmetric_plain_batch(const float* x, int64_t n_blocks, int nmax, uint8_t* levels, float* d) {
  HWY_DYNAMIC_DISPATCH(SymmetricPlainBatch)(x, n_blocks, nmax, levels, d);
}
void affine_plain_batch(const float* x, int64_t n_blocks, int nmax, uint8_t* levels, ScaleAndMin* out) {
  HWY_DYNAMIC_DISPATCH(AffinePlainBatch)(x, n_blocks, nmax, levels, out);
}
void q8_0_plain_batch(const float* x, int64_t n_blocks, int8_t* qs, float* d) {
  HWY_DYNAMIC_DISPATCH(Q8PlainBatch)(x, n_blocks, qs, d);
}

}  // namespace lowbit::legacy
#endif  // HWY_ONCE
