// The batched scale searches of quant_search.h: many independent groups at once, one group per SIMD lane.
// Each lane runs its group through exactly the scalar function's float operations in the scalar order (the
// groups' values are transposed so that value i of every group sits in one vector); branches become per-lane
// selects. Nothing is reassociated or fused (this file, like all of src/quant/, is built with
// -ffp-contract=off), so every lane's result is bit-identical to the scalar function's.
// Compiled for every x86 target Highway knows and picked at run time; the scalar target runs one lane.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/quant_search_batch.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstddef>

#include "quant/legacy_quants.h"
#include "quant/quant_search.h"
#include "util/error.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;
using MF = hn::Mask<DF>;

constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);

// One batch of up to Lanes(df) groups of n values, transposed: at(i) holds value i of every group of the batch
// (lanes past the last group hold zeros, and their results are dropped).
class Transposed {
 public:
  void load(const float* groups, int n, int64_t first, int used) {
    const size_t lanes = hn::Lanes(DF());
    for (size_t l = 0; l < lanes; ++l) {
      const float* g = groups + (first + static_cast<int64_t>(l)) * n;
      for (int i = 0; i < n; ++i) values_[static_cast<size_t>(i) * lanes + l] = static_cast<int>(l) < used ? g[i] : 0.f;
    }
  }
  // The weights x^2 that the searches use when given none: the same product the scalar code forms.
  void load_squares(const Transposed& x, int n) {
    for (int i = 0; i < n; ++i) hn::Store(hn::Mul(x.at(i), x.at(i)), DF(), values_ + static_cast<size_t>(i) * hn::Lanes(DF()));
  }
  VF at(int i) const { return hn::Load(DF(), values_ + static_cast<size_t>(i) * hn::Lanes(DF())); }

 private:
  HWY_ALIGN float values_[kMaxSearchGroup * kMaxLanes];
};

// Loads the batch starting at group `first` (x, and the weights or x^2).
void LoadBatch(const float* x, const float* weights, int n, int64_t first, int used, Transposed& xt, Transposed& wt) {
  xt.load(x, n, first, used);
  if (weights) {
    wt.load(weights, n, first, used);
  } else {
    wt.load_squares(xt, n);
  }
}

// Per-lane results back to group-major arrays: out[(first + l) * stride + i] = v[l] for the used lanes.
template <typename T>
void ScatterLanes(VI v, int64_t first, int used, int stride, int i, T* out) {
  HWY_ALIGN int32_t lanes[kMaxLanes];
  hn::Store(v, DI(), lanes);
  for (int l = 0; l < used; ++l) out[(first + l) * stride + i] = static_cast<T>(lanes[l]);
}
void ScatterLanes(VF v, int64_t first, int used, float* out) {
  HWY_ALIGN float lanes[kMaxLanes];
  hn::Store(v, DF(), lanes);
  for (int l = 0; l < used; ++l) out[first + l] = lanes[l];
}

// nearest_int() of every lane: the same add-and-mask trick, so the same result for every input.
HWY_INLINE VI GgmlNearestInt(VF v) {
  const DF df;
  const DI di;
  const VI bits = hn::BitCast(di, hn::Add(v, hn::Set(df, 12582912.f)));
  return hn::Sub(hn::And(bits, hn::Set(di, 0x007fffff)), hn::Set(di, 0x00400000));
}
HWY_INLINE VF Clamped(VI l, int lo, int hi) {
  const DI di;
  return hn::ConvertTo(DF(), hn::Min(hn::Max(l, hn::Set(di, lo)), hn::Set(di, hi)));
}

// signed_abs_max() per lane: the first value of largest magnitude and that magnitude.
struct PeakLanes {
  VF value, abs;
};
HWY_INLINE PeakLanes Peak(const Transposed& x, int n) {
  const DF df;
  PeakLanes p{hn::Zero(df), hn::Zero(df)};
  for (int i = 0; i < n; ++i) {
    const VF ax = hn::Abs(x.at(i));
    const MF larger = hn::Gt(ax, p.abs);
    p.abs = hn::IfThenElse(larger, ax, p.abs);
    p.value = hn::IfThenElse(larger, x.at(i), p.value);
  }
  return p;
}

// ---- make_qkx2_quants / make_qkx3_quants ----

void ScaleMinBatch(int64_t n_groups, int n, int nmax, const float* x, const float* weights, uint8_t* levels,
                   float* scales, float* neg_mins, float rmin, float rdelta, int nstep, bool use_mad) {
  const DF df;
  const VF zero = hn::Zero(df);
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  HWY_ALIGN float best_levels[kMaxSearchGroup * kMaxLanes];
  HWY_ALIGN float trial_levels[kMaxSearchGroup * kMaxLanes];
  Transposed xt, wt;
  auto level_at = [&](float* lv, int i) { return lv + static_cast<size_t>(i) * static_cast<size_t>(lanes); };

  for (int64_t first = 0; first < n_groups; first += lanes) {
    const int used = static_cast<int>(std::min(lanes, n_groups - first));
    LoadBatch(x, weights, n, first, used, xt, wt);
    auto w_at = [&](int i) { return wt.at(i); };

    VF min = xt.at(0), max = xt.at(0);
    VF sum_w = w_at(0);
    VF sum_x = hn::Mul(sum_w, xt.at(0));
    for (int i = 1; i < n; ++i) {
      const VF xi = xt.at(i);
      min = hn::IfThenElse(hn::Lt(xi, min), xi, min);
      max = hn::IfThenElse(hn::Gt(xi, max), xi, max);
      const VF w = w_at(i);
      sum_w = hn::Add(sum_w, w);
      sum_x = hn::Add(sum_x, hn::Mul(w, xi));
    }
    min = hn::IfThenElse(hn::Gt(min, zero), zero, min);
    const MF flat = hn::Le(max, min);  // scalar: all levels 0, scale 0, this min
    const VF flat_neg_min = hn::Neg(min);

    auto error_of = [&](VF scale, VF offset, float* lv) {
      VF err = zero;
      for (int i = 0; i < n; ++i) {
        VF diff = hn::Sub(hn::Add(hn::Mul(scale, hn::Load(df, level_at(lv, i))), offset), xt.at(i));
        diff = use_mad ? hn::Abs(diff) : hn::Mul(diff, diff);
        err = hn::Add(err, hn::Mul(w_at(i), diff));
      }
      return err;
    };

    VF iscale = hn::Div(hn::Set(df, static_cast<float>(nmax)), hn::Sub(max, min));
    VF scale = hn::Div(hn::Set(df, 1.f), iscale);
    for (int i = 0; i < n; ++i) {
      hn::Store(Clamped(GgmlNearestInt(hn::Mul(iscale, hn::Sub(xt.at(i), min))), 0, nmax), df, level_at(best_levels, i));
    }
    VF best_error = error_of(scale, min, best_levels);
    for (int is = 0; nstep >= 1 && is <= nstep; ++is) {
      // Over max minus the best min so far, as in the scalar code (not the range of the values).
      iscale = hn::Div(hn::Set(df, rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)), hn::Sub(max, min));
      VF sum_l = zero, sum_l2 = zero, sum_xl = zero;
      for (int i = 0; i < n; ++i) {
        const VF xi = xt.at(i);
        const VF l = Clamped(GgmlNearestInt(hn::Mul(iscale, hn::Sub(xi, min))), 0, nmax);
        hn::Store(l, df, level_at(trial_levels, i));
        const VF wl = hn::Mul(w_at(i), l);
        sum_l = hn::Add(sum_l, wl);
        sum_l2 = hn::Add(sum_l2, hn::Mul(wl, l));
        sum_xl = hn::Add(sum_xl, hn::Mul(wl, xi));
      }
      const VF det = hn::Sub(hn::Mul(sum_w, sum_l2), hn::Mul(sum_l, sum_l));
      const MF solvable = hn::AndNot(flat, hn::Gt(det, zero));
      if (hn::AllFalse(df, solvable)) continue;
      VF this_scale = hn::Div(hn::Sub(hn::Mul(sum_w, sum_xl), hn::Mul(sum_x, sum_l)), det);
      VF this_min = hn::Div(hn::Sub(hn::Mul(sum_l2, sum_x), hn::Mul(sum_l, sum_xl)), det);
      const MF positive_min = hn::Gt(this_min, zero);
      this_min = hn::IfThenElse(positive_min, zero, this_min);
      this_scale = hn::IfThenElse(positive_min, hn::Div(sum_xl, sum_l2), this_scale);
      const VF err = error_of(this_scale, this_min, trial_levels);
      const MF better = hn::And(solvable, hn::Lt(err, best_error));
      if (hn::AllFalse(df, better)) continue;
      for (int i = 0; i < n; ++i) {
        hn::Store(hn::IfThenElse(better, hn::Load(df, level_at(trial_levels, i)), hn::Load(df, level_at(best_levels, i))),
                  df, level_at(best_levels, i));
      }
      best_error = hn::IfThenElse(better, err, best_error);
      scale = hn::IfThenElse(better, this_scale, scale);
      min = hn::IfThenElse(better, this_min, min);
    }
    const DI di;
    for (int i = 0; i < n; ++i) {
      const VF l = hn::IfThenZeroElse(flat, hn::Load(df, level_at(best_levels, i)));
      ScatterLanes(hn::ConvertTo(di, l), first, used, n, i, levels);
    }
    ScatterLanes(hn::IfThenZeroElse(flat, scale), first, used, scales);
    ScatterLanes(hn::IfThenElse(flat, flat_neg_min, hn::Neg(min)), first, used, neg_mins);
  }
}

// ---- make_qx_quants, rmse_type 1 ----

// Weighted sums of the symmetric rounding at inverse scale `iscale` (qx_sums): sum w*x*l and sum w*l*l.
struct QxSums {
  VF sumlx, suml2;
};
HWY_INLINE QxSums QxSumsOf(const Transposed& x, const Transposed& w, int n, int nmax, VF iscale) {
  const DF df;
  QxSums s{hn::Zero(df), hn::Zero(df)};
  for (int i = 0; i < n; ++i) {
    const VF xi = x.at(i);
    const VF l = Clamped(GgmlNearestInt(hn::Mul(iscale, xi)), -nmax, nmax - 1);
    const VF wi = w.at(i);
    s.sumlx = hn::Add(s.sumlx, hn::Mul(hn::Mul(wi, xi), l));
    s.suml2 = hn::Add(s.suml2, hn::Mul(hn::Mul(wi, l), l));
  }
  return s;
}

void SymmetricBatch(int64_t n_groups, int n, int nmax, const float* x, const float* weights, int8_t* levels,
                    float* scales) {
  const DF df;
  const DI di;
  const VF zero = hn::Zero(df);
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  Transposed xt, wt;
  for (int64_t first = 0; first < n_groups; first += lanes) {
    const int used = static_cast<int>(std::min(lanes, n_groups - first));
    LoadBatch(x, weights, n, first, used, xt, wt);

    const PeakLanes peak = Peak(xt, n);
    const MF empty = hn::Lt(peak.abs, hn::Set(df, kGroupMaxEps));
    VF best_iscale = hn::Div(hn::Set(df, static_cast<float>(-nmax)), peak.value);
    QxSums s = QxSumsOf(xt, wt, n, nmax, best_iscale);
    VF scale = hn::IfThenElseZero(hn::Ne(s.suml2, zero), hn::Div(s.sumlx, s.suml2));
    VF best = hn::Mul(scale, s.sumlx);
    for (int is = -9; is <= 9; ++is) {
      if (is == 0) continue;
      const VF iscale =
          hn::Div(hn::Set(df, -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is))), peak.value);
      s = QxSumsOf(xt, wt, n, nmax, iscale);
      const MF better = hn::And(hn::Gt(s.suml2, zero), hn::Gt(hn::Mul(s.sumlx, s.sumlx), hn::Mul(best, s.suml2)));
      if (hn::AllFalse(df, better)) continue;
      // The scalar code re-rounds the levels here; rounding once at the end with the winning scale is the same.
      best_iscale = hn::IfThenElse(better, iscale, best_iscale);
      scale = hn::IfThenElse(better, hn::Div(s.sumlx, s.suml2), scale);
      best = hn::IfThenElse(better, hn::Mul(scale, s.sumlx), best);
    }
    const VI mask_empty = hn::VecFromMask(di, hn::RebindMask(di, empty));
    for (int i = 0; i < n; ++i) {
      const VI l = hn::Add(hn::ConvertTo(di, Clamped(GgmlNearestInt(hn::Mul(best_iscale, xt.at(i))), -nmax, nmax - 1)),
                           hn::Set(di, nmax));
      ScatterLanes(hn::AndNot(mask_empty, l), first, used, n, i, levels);
    }
    ScatterLanes(hn::IfThenZeroElse(empty, scale), first, used, scales);
  }
}

// ---- make_q3_quants with do_rmse ----

void Q3Batch(int64_t n_groups, int n, int nmax, const float* x, int8_t* levels, float* scales) {
  const DF df;
  const DI di;
  const VF zero = hn::Zero(df);
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  HWY_ALIGN float lv[kMaxSearchGroup * kMaxLanes];  // signed levels during the refinement
  Transposed xt;
  for (int64_t first = 0; first < n_groups; first += lanes) {
    const int used = static_cast<int>(std::min(lanes, n_groups - first));
    xt.load(x, n, first, used);
    const PeakLanes peak = Peak(xt, n);
    const MF empty = hn::Lt(peak.abs, hn::Set(df, kGroupMaxEps));
    const VF iscale = hn::Div(hn::Set(df, static_cast<float>(-nmax)), peak.value);
    VF sumlx = zero, suml2 = zero;
    for (int i = 0; i < n; ++i) {
      const VF xi = xt.at(i);
      const VF l = Clamped(GgmlNearestInt(hn::Mul(iscale, xi)), -nmax, nmax - 1);
      hn::Store(l, df, lv + i * lanes);
      const VF w = hn::Mul(xi, xi);
      sumlx = hn::Add(sumlx, hn::Mul(hn::Mul(w, xi), l));
      suml2 = hn::Add(suml2, hn::Mul(hn::Mul(w, l), l));
    }
    // A lane whose pass changes nothing would change nothing in later passes either, so running passes until
    // no lane changes is the scalar loop with its early exit.
    for (int pass = 0; pass < 5; ++pass) {
      MF changed = hn::FirstN(df, 0);
      for (int i = 0; i < n; ++i) {
        const VF xi = xt.at(i);
        const VF w = hn::Mul(xi, xi);
        const VF l = hn::Load(df, lv + i * lanes);
        VF slx = hn::Sub(sumlx, hn::Mul(hn::Mul(w, xi), l));
        const MF positive = hn::Gt(slx, zero);
        VF sl2 = hn::Sub(suml2, hn::Mul(hn::Mul(w, l), l));
        const VF new_l = Clamped(GgmlNearestInt(hn::Div(hn::Mul(xi, sl2), slx)), -nmax, nmax - 1);
        const MF moved = hn::And(positive, hn::Ne(new_l, l));
        slx = hn::Add(slx, hn::Mul(hn::Mul(w, xi), new_l));
        sl2 = hn::Add(sl2, hn::Mul(hn::Mul(w, new_l), new_l));
        const MF better = hn::And(moved, hn::And(hn::Gt(sl2, zero), hn::Gt(hn::Mul(hn::Mul(slx, slx), suml2),
                                                                           hn::Mul(hn::Mul(sumlx, sumlx), sl2))));
        hn::Store(hn::IfThenElse(better, new_l, l), df, lv + i * lanes);
        sumlx = hn::IfThenElse(better, slx, sumlx);
        suml2 = hn::IfThenElse(better, sl2, suml2);
        changed = hn::Or(changed, better);
      }
      if (hn::AllFalse(df, changed)) break;
    }
    const VI mask_empty = hn::VecFromMask(di, hn::RebindMask(di, empty));
    for (int i = 0; i < n; ++i) {
      const VI l = hn::Add(hn::ConvertTo(di, hn::Load(df, lv + i * lanes)), hn::Set(di, nmax));
      ScatterLanes(hn::AndNot(mask_empty, l), first, used, n, i, levels);
    }
    const VF scale = hn::IfThenElseZero(hn::Gt(suml2, zero), hn::Div(sumlx, suml2));
    ScatterLanes(hn::IfThenZeroElse(empty, scale), first, used, scales);
  }
}

// ---- IQ4_NL / IQ4_XS block scale search ----

// kIq4nlValues as floats, for broadcasts the compiler can keep in registers once the scans are unrolled.
constexpr float kIq4Table[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
static_assert([] {
  for (int k = 0; k < 16; ++k)
    if (kIq4Table[k] != kIq4nlValues[k]) return false;
  return true;
}());

// The kIq4nlValues entry nearest to each lane (ties to the larger), as the scalar nearest_level's value.
HWY_INLINE VF NearestIq4(VF v) {
  const DF df;
  VF lower = hn::Set(df, kIq4Table[0]);
  VF upper = hn::Set(df, kIq4Table[1]);
  HWY_UNROLL(14)
  for (int k = 1; k < 15; ++k) {
    const MF above = hn::Ge(v, hn::Set(df, kIq4Table[k]));
    lower = hn::IfThenElse(above, hn::Set(df, kIq4Table[k]), lower);
    upper = hn::IfThenElse(above, hn::Set(df, kIq4Table[k + 1]), upper);
  }
  return hn::IfThenElse(hn::Lt(hn::Sub(v, lower), hn::Sub(upper, v)), lower, upper);
}

// nearest_level() of every lane: the index of the nearest kIq4nlValues entry, ties to the larger.
void Iq4Levels(const float* x, int64_t n, float inverse_scale, uint8_t* levels) {
  const DF df;
  const DI di;
  const hn::Rebind<uint8_t, DI> du8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF id = hn::Set(df, inverse_scale);
  int64_t j = 0;
  for (; j + lanes <= n; j += lanes) {
    const VF v = hn::Mul(id, hn::LoadU(df, x + j));
    VI below = hn::Zero(di);
    VF lower = hn::Set(df, kIq4Table[0]);
    VF upper = hn::Set(df, kIq4Table[1]);
    HWY_UNROLL(14)
    for (int k = 1; k < 15; ++k) {
      const MF above = hn::Ge(v, hn::Set(df, kIq4Table[k]));
      below = hn::Sub(below, hn::VecFromMask(di, hn::RebindMask(di, above)));  // a true mask is -1
      lower = hn::IfThenElse(above, hn::Set(df, kIq4Table[k]), lower);
      upper = hn::IfThenElse(above, hn::Set(df, kIq4Table[k + 1]), upper);
    }
    const MF to_upper = hn::Not(hn::Lt(hn::Sub(v, lower), hn::Sub(upper, v)));
    const VI index = hn::Sub(below, hn::VecFromMask(di, hn::RebindMask(di, to_upper)));
    hn::StoreU(hn::DemoteTo(du8, index), du8, levels + j);
  }
  for (; j < n; ++j) levels[j] = static_cast<uint8_t>(legacy::iq4nl_nearest_level(inverse_scale * x[j]));
}

struct Iq4Fit {
  VF sum_qx, sum_q2;
};
HWY_INLINE Iq4Fit FitIq4(const Transposed& x, const Transposed& w, VF id) {
  const DF df;
  Iq4Fit f{hn::Zero(df), hn::Zero(df)};
  for (int j = 0; j < kLegacyBlock; ++j) {
    const VF xj = x.at(j);
    const VF q = NearestIq4(hn::Mul(id, xj));
    const VF wq = hn::Mul(w.at(j), q);
    f.sum_qx = hn::Add(f.sum_qx, hn::Mul(wq, xj));
    f.sum_q2 = hn::Add(f.sum_q2, hn::Mul(wq, q));
  }
  return f;
}

void Iq4ScalesBatch(int64_t n_blocks, const float* x, const float* weights, float* scales) {
  const DF df;
  const VF zero = hn::Zero(df);
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  constexpr int kTries = 7;
  Transposed xt, wt;
  for (int64_t first = 0; first < n_blocks; first += lanes) {
    const int used = static_cast<int>(std::min(lanes, n_blocks - first));
    LoadBatch(x, weights, kLegacyBlock, first, used, xt, wt);
    const PeakLanes peak = Peak(xt, kLegacyBlock);
    const MF empty = hn::Lt(peak.abs, hn::Set(df, kGroupMaxEps));
    VF d = hn::Div(hn::Neg(peak.value), hn::Set(df, static_cast<float>(kIq4nlValues[0])));
    const Iq4Fit start = FitIq4(xt, wt, hn::Div(hn::Set(df, 1.f), d));
    d = hn::IfThenElseZero(hn::Gt(start.sum_q2, zero), hn::Div(start.sum_qx, start.sum_q2));
    VF best = hn::Mul(d, start.sum_qx);
    for (int t = -kTries; t <= kTries; ++t) {
      const VF id = hn::Div(hn::Set(df, static_cast<float>(t + kIq4nlValues[0])), peak.value);
      const Iq4Fit f = FitIq4(xt, wt, id);
      const MF better = hn::And(hn::Gt(f.sum_q2, zero), hn::Gt(hn::Mul(f.sum_qx, f.sum_qx), hn::Mul(best, f.sum_q2)));
      d = hn::IfThenElse(better, hn::Div(f.sum_qx, f.sum_q2), d);
      best = hn::IfThenElse(better, hn::Mul(d, f.sum_qx), best);
    }
    ScatterLanes(hn::IfThenZeroElse(empty, d), first, used, scales);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {

HWY_EXPORT(ScaleMinBatch);
HWY_EXPORT(SymmetricBatch);
HWY_EXPORT(Q3Batch);
HWY_EXPORT(Iq4ScalesBatch);
HWY_EXPORT(Iq4Levels);

namespace {
void check_group(int n, const char* what) {
  check(n >= 1 && n <= kMaxSearchGroup, what, "group of {} values (batched searches take 1..{})", n, kMaxSearchGroup);
}
}  // namespace

void make_qkx_quants_batch(int64_t n_groups, int n, int nmax, const float* x, const float* weights, uint8_t* levels,
                           float* scales, float* neg_mins, float rmin, float rdelta, int nstep, bool use_mad) {
  check_group(n, "make_qkx_quants_batch");
  HWY_DYNAMIC_DISPATCH(ScaleMinBatch)(n_groups, n, nmax, x, weights, levels, scales, neg_mins, rmin, rdelta, nstep,
                                      use_mad);
}

void make_qx_quants_batch(int64_t n_groups, int n, int nmax, const float* x, const float* weights, int8_t* levels,
                          float* scales) {
  check_group(n, "make_qx_quants_batch");
  HWY_DYNAMIC_DISPATCH(SymmetricBatch)(n_groups, n, nmax, x, weights, levels, scales);
}

void make_q3_quants_batch(int64_t n_groups, int n, int nmax, const float* x, int8_t* levels, float* scales) {
  check_group(n, "make_q3_quants_batch");
  HWY_DYNAMIC_DISPATCH(Q3Batch)(n_groups, n, nmax, x, levels, scales);
}

void legacy::iq4nl_block_scales(int64_t n_blocks, const float* x, const float* weights, float* scales) {
  HWY_DYNAMIC_DISPATCH(Iq4ScalesBatch)(n_blocks, x, weights, scales);
}

void legacy::iq4nl_levels(const float* x, int64_t n, float inverse_scale, uint8_t* levels) {
  HWY_DYNAMIC_DISPATCH(Iq4Levels)(x, n, inverse_scale, levels);
}

}  // namespace lowbit
#endif  // HWY_ONCE
