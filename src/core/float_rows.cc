// Compiled for every x86 target Highway knows and picked at run time (see core/float_rows.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/float_rows.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>

#include "core/f16_bits-inl.h"
#include "core/float_formats.h"
#include "core/float_rows.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// v with every NaN made the quiet NaN of its sign with no payload (0x7fc00000 | sign), as the scalar converters
// give them; the F16C instructions keep payload bits.
template <class DF, class VF>
HWY_INLINE VF CanonicalNaNs(DF df, VF v) {
  const hn::RebindToUnsigned<DF> du;
  const auto nan = hn::Or(hn::And(hn::BitCast(du, v), hn::Set(du, 0x80000000u)), hn::Set(du, 0x7fc00000u));
  return hn::IfThenElse(hn::IsNaN(v), hn::BitCast(df, nan), v);
}

void F16ToF32Row(const uint16_t* src, float* dst, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t step = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + step <= n; i += step) {
#if HWY_TARGET >= HWY_SSE4  // no F16C: integer steps (core/f16_bits-inl.h)
    const hn::RebindToSigned<decltype(df)> di;
    const hn::RebindToUnsigned<decltype(df)> du32;
    const hn::Rebind<uint16_t, decltype(df)> du16;
    const auto values = F32FromF16Bits(df, hn::BitCast(di, hn::PromoteTo(du32, hn::LoadU(du16, src + i))));
#else
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    const auto values = hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(src + i)));
#endif
    hn::StoreU(CanonicalNaNs(df, values), df, dst + i);
  }
  for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

void BF16ToF32Row(const uint16_t* src, float* dst, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du32;
  const hn::Rebind<uint16_t, decltype(du32)> du16;
  const int64_t step = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + step <= n; i += step) {
    const auto wide = hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, src + i)));
    hn::StoreU(hn::BitCast(df, wide), df, dst + i);
  }
  for (; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

void F32ToF16Row(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2  // F16C's vcvtps2ph (round to nearest even); Highway's SSE4 emulation is not used
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t step = static_cast<int64_t>(hn::Lanes(df));
  // The scalar encoder gives every NaN as 0x7E00 with its sign, which the canonical NaN converts to.
  for (; i + step <= n; i += step)
    hn::StoreU(hn::DemoteTo(dh, CanonicalNaNs(df, hn::LoadU(df, src + i))), dh, reinterpret_cast<hwy::float16_t*>(dst + i));
#endif
  for (; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

void F32ToBF16Row(const float* src, uint16_t* dst, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<uint16_t, decltype(di)> du16;
  const int64_t step = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  // f32_to_bf16's integer rounding (to nearest even by adding 0x7FFF plus the kept half's low bit), its NaNs the
  // top half with the quiet bit set. Every code fits 16 bits, so the (signed, saturating) demotion only narrows.
  for (; i + step <= n; i += step) {
    const auto v = hn::LoadU(df, src + i);
    const auto u = hn::BitCast(du, v);
    const auto high = hn::ShiftRight<16>(u);
    const auto rounded = hn::ShiftRight<16>(hn::Add(u, hn::Add(hn::Set(du, 0x7FFFu), hn::And(high, hn::Set(du, 1u)))));
    const auto code = hn::IfThenElse(hn::RebindMask(du, hn::IsNaN(v)), hn::Or(high, hn::Set(du, 64u)), rounded);
    hn::StoreU(hn::DemoteTo(du16, hn::BitCast(di, code)), du16, dst + i);
  }
  for (; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

// Both conversions of F32ToF16Row and F16ToF32Row in one pass, in place (F16C as there; SSE4 the scalar ones).
void RoundThroughF16(float* v, int64_t n) {
  int64_t i = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t step = static_cast<int64_t>(hn::Lanes(df));
  const auto round_trip = [&](hn::Vec<decltype(df)> x) {
    return CanonicalNaNs(df, hn::PromoteTo(df, hn::DemoteTo(dh, x)));
  };
  for (; i + step <= n; i += step) hn::StoreU(round_trip(hn::LoadU(df, v + i)), df, v + i);
  if (i < n) {  // the rest in one masked vector (attention's weights at 1-32 keys: 5.0-5.1 -> 4.6-4.8 us a layer)
    const auto first = hn::FirstN(df, static_cast<size_t>(n - i));
    hn::BlendedStore(round_trip(hn::MaskedLoad(first, df, v + i)), first, df, v + i);
    return;
  }
#endif
  for (; i < n; ++i) v[i] = f16_to_f32(f32_to_f16(v[i]));
}

int64_t FirstNonFinite(const float* values, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t step = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + step <= n; i += step) {
    const auto bad = hn::Not(hn::IsFinite(hn::LoadU(df, values + i)));
    if (!hn::AllFalse(df, bad)) return i + static_cast<int64_t>(hn::FindFirstTrue(df, bad));
  }
  for (; i < n; ++i)
    if (!std::isfinite(values[i])) return i;
  return -1;
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {

HWY_EXPORT(F16ToF32Row);
HWY_EXPORT(BF16ToF32Row);
HWY_EXPORT(F32ToF16Row);
HWY_EXPORT(F32ToBF16Row);
HWY_EXPORT(RoundThroughF16);
HWY_EXPORT(FirstNonFinite);

void f16_to_f32_row(const uint16_t* src, float* dst, int64_t n) { HWY_DYNAMIC_DISPATCH(F16ToF32Row)(src, dst, n); }
void bf16_to_f32_row(const uint16_t* src, float* dst, int64_t n) { HWY_DYNAMIC_DISPATCH(BF16ToF32Row)(src, dst, n); }
void f32_to_f16_row(const float* src, uint16_t* dst, int64_t n) { HWY_DYNAMIC_DISPATCH(F32ToF16Row)(src, dst, n); }
void f32_to_bf16_row(const float* src, uint16_t* dst, int64_t n) { HWY_DYNAMIC_DISPATCH(F32ToBF16Row)(src, dst, n); }
int64_t first_non_finite(const float* values, int64_t n) { return HWY_DYNAMIC_DISPATCH(FirstNonFinite)(values, n); }

void round_through_f16(float* v, int64_t n) { HWY_DYNAMIC_DISPATCH(RoundThroughF16)(v, n); }

}  // namespace lowbit
#endif  // HWY_ONCE
