// fp16 to float in SIMD without F16C, exactly as f16_to_f32 but for NaN payloads, on every Highway target:
// core/float_rows.cc's rows and the SSE4 matmul tiles' scales (ops/simd_vectors-inl.h) on CPUs without the
// instruction. (Highway 1.0.3's own emulation in PromoteTo gives fp16's Inf and NaN as finite floats.)
// Included once per target, hence the toggling guard.
#if defined(LOWBIT_CORE_F16_BITS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWBIT_CORE_F16_BITS_INL_H_
#undef LOWBIT_CORE_F16_BITS_INL_H_
#else
#define LOWBIT_CORE_F16_BITS_INL_H_
#endif

#include <hwy/highway.h>

// Only the targets without F16C need it (nor could AVX2's AVX-VNNI pass, ops/simd_matmul_avx_vnni.cc, whose
// HWY_NAMESPACE is not Highway's, name its ops so).
#if HWY_TARGET >= HWY_SSE4
HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {

// The fp16 in the low 16 bits of each 32-bit lane of `bits` (the high bits ignored) as float: the magnitude's bits
// moved to a float's place and scaled by 2^112, which makes fp16's subnormals normal; exponent 31 (Inf, NaN) to
// float's top one, its payload kept as F16C keeps it; the sign.
template <class DF>
HWY_INLINE hwy::HWY_NAMESPACE::Vec<DF> F32FromF16Bits(DF df,
                                                      hwy::HWY_NAMESPACE::Vec<hwy::HWY_NAMESPACE::RebindToSigned<DF>> bits) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::RebindToSigned<DF> di;
  const auto magnitude = hn::And(bits, hn::Set(di, 0x7FFF));
  const auto scaled = hn::Mul(hn::BitCast(df, hn::ShiftLeft<13>(magnitude)), hn::Set(df, 0x1p112f));
  const auto special = hn::IfThenElseZero(hn::Gt(magnitude, hn::Set(di, 0x7BFF)), hn::Set(di, 0x7F800000));
  const auto sign = hn::ShiftLeft<16>(hn::And(bits, hn::Set(di, 0x8000)));
  return hn::Or(scaled, hn::BitCast(df, hn::Or(special, sign)));
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();
#endif  // HWY_TARGET >= HWY_SSE4

#endif  // LOWBIT_CORE_F16_BITS_INL_H_
