// rms_norm and softmax plainly; swiglu compiled for every x86 target Highway knows and picked at run time, its
// lanes computing silu_exp's exact steps (ops/elementwise.h).
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

void Swiglu(float* gate, const float* up, int64_t n) {
  int64_t i = 0;
  // Only targets with FMA: Highway's MulAdd elsewhere rounds twice, which would change the bits.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const hn::ScalableTag<float> df;
  const auto c = [&](float v) { return hn::Set(df, v); };
  const int64_t step = static_cast<int64_t>(hn::Lanes(df));
  for (; i + step <= n; i += step) {
    const auto g = hn::LoadU(df, gate + i);
    const auto x = hn::Neg(g);  // silu_exp(-g), step for step
    const auto xc = hn::Min(hn::Max(x, c(SiluExp::kLow)), c(SiluExp::kHigh));
    const auto k = hn::Round(hn::Mul(xc, c(SiluExp::kLog2e)));
    auto r = hn::MulAdd(k, c(SiluExp::kMinusLn2[0]), xc);
    r = hn::MulAdd(k, c(SiluExp::kMinusLn2[1]), r);
    auto p = c(SiluExp::kPoly[0]);
#pragma GCC unroll 6
    for (int i = 1; i < 6; ++i) p = hn::MulAdd(p, r, c(SiluExp::kPoly[i]));
    const auto y = hn::Add(hn::MulAdd(p, hn::Mul(r, r), r), c(1.0f));
    const hn::RebindToSigned<decltype(df)> di;
    const auto two_k = hn::BitCast(df, hn::ShiftLeft<23>(hn::Add(hn::ConvertTo(di, k), hn::Set(di, 127))));
    auto e = hn::Mul(y, two_k);
    e = hn::IfThenElse(hn::IsNaN(x), x, e);
    e = hn::IfThenElse(hn::Lt(x, c(SiluExp::kLow)), c(0.0f), e);
    e = hn::IfThenElse(hn::Gt(x, c(SiluExp::kHigh)), c(HUGE_VALF), e);
    hn::StoreU(hn::Mul(hn::Div(g, hn::Add(c(1.0f), e)), hn::LoadU(df, up + i)), df, gate + i);
  }
#endif
  for (; i < n; ++i) gate[i] = silu(gate[i]) * up[i];
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {

HWY_EXPORT(Swiglu);

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - mx));
  for (int64_t i = 0; i < n; ++i) x[i] /= sum;
}

void swiglu(float* gate, const float* up, int64_t n) { HWY_DYNAMIC_DISPATCH(Swiglu)(gate, up, n); }

}  // namespace lowbit
#endif  // HWY_ONCE
