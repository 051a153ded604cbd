#include "quant/quant_search.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lowbit {
namespace {

inline int clamp_symmetric(int level, int nmax) { return std::max(-nmax, std::min(nmax - 1, level)); }

// make_qx_quants' error weight for value i: the caller's weights if any, else the one rmse_type names.
inline float qx_weight(const float* weights, const float* x, int i, int rmse_type) {
  if (weights) return weights[i];
  switch (rmse_type) {
    case 1: return x[i] * x[i];
    case 2: return 1.f;
    case 3: return std::fabs(x[i]);
    default: return std::sqrt(std::fabs(x[i]));
  }
}

// Weighted sums of a symmetric rounding with inverse scale `iscale`: sum w*x*l and sum w*l*l.
struct LevelSums {
  float sumlx = 0;
  float suml2 = 0;
};
LevelSums qx_sums(int n, int nmax, const float* x, float iscale, int rmse_type, const float* weights) {
  LevelSums s;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_symmetric(nearest_int(iscale * x[i]), nmax);
    const float w = qx_weight(weights, x, i, rmse_type);
    s.sumlx += w * x[i] * l;
    s.suml2 += w * l * l;
  }
  return s;
}

void round_symmetric(int n, int nmax, const float* x, float iscale, int8_t* levels) {
  for (int i = 0; i < n; ++i) levels[i] = static_cast<int8_t>(nmax + clamp_symmetric(nearest_int(iscale * x[i]), nmax));
}

// The scale + min search shared by make_qkx2_quants and make_qkx3_quants; `weights` null means x^2. The two
// ggml functions differ only in that (and in a max == min vs max <= min test that no input tells apart).
float search_scale_and_min(int n, int nmax, const float* x, const float* weights, uint8_t* levels, float* min_out,
                           uint8_t* scratch, float rmin, float rdelta, int nstep, bool use_mad) {
  auto weight = [&](int i) { return weights ? weights[i] : x[i] * x[i]; };
  float min = x[0];
  float max = x[0];
  float sum_w = weight(0);
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weight(i);
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;  // the offset only ever shifts up: a group of positives keeps level 0 = 0
  if (max <= min) {
    std::memset(levels, 0, static_cast<size_t>(n));
    *min_out = -min;
    return 0.f;
  }
  auto error_of = [&](float scale, float offset, const uint8_t* lv) {
    float err = 0;
    for (int i = 0; i < n; ++i) {
      float diff = scale * lv[i] + offset - x[i];
      diff = use_mad ? std::fabs(diff) : diff * diff;
      err += weight(i) * diff;
    }
    return err;
  };

  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  for (int i = 0; i < n; ++i) {
    levels[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min)))));
  }
  float best_error = error_of(scale, min, levels);
  if (nstep < 1) {
    *min_out = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      // `min` is the best fit so far, so this can leave nearest_int's range; its (deterministic) result is then
      // clamped, exactly as in ggml c392e50 (later ggml clamps v first: same levels for every in-range v).
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      scratch[i] = static_cast<uint8_t>(l);
      const float w = weight(i);
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    // Closed-form weighted least squares for (scale, min) given the levels.
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      const float err = error_of(this_scale, this_min, scratch);
      if (err < best_error) {
        std::memcpy(levels, scratch, static_cast<size_t>(n));
        best_error = err;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *min_out = -min;
  return scale;
}

}  // namespace

SignedAbsMax signed_abs_max(const float* x, int n) {
  SignedAbsMax r{0.f, 0.f};
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > r.abs) {
      r.abs = ax;
      r.value = x[i];
    }
  }
  return r;
}

float make_qx_quants(int n, int nmax, const float* x, int8_t* levels, int rmse_type, const float* weights) {
  const SignedAbsMax peak = signed_abs_max(x, n);
  if (peak.abs < kGroupMaxEps) {
    std::memset(levels, 0, static_cast<size_t>(n));
    return 0.f;
  }
  float iscale = static_cast<float>(-nmax) / peak.value;
  if (rmse_type == 0) {
    round_symmetric(n, nmax, x, iscale, levels);
    return 1 / iscale;
  }
  const bool return_early = rmse_type < 0;
  if (return_early) rmse_type = -rmse_type;

  round_symmetric(n, nmax, x, iscale, levels);
  LevelSums sums = qx_sums(n, nmax, x, iscale, rmse_type, weights);
  float scale = sums.suml2 != 0 ? sums.sumlx / sums.suml2 : 0.0f;
  if (return_early) return sums.suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;

  // Try inverse scales around nmax/max and keep the one maximising sumlx^2/suml2 (= least weighted error).
  float best = scale * sums.sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / peak.value;
    sums = qx_sums(n, nmax, x, iscale, rmse_type, weights);
    if (sums.suml2 > 0 && sums.sumlx * sums.sumlx > best * sums.suml2) {
      round_symmetric(n, nmax, x, iscale, levels);
      scale = sums.sumlx / sums.suml2;
      best = scale * sums.sumlx;
    }
  }
  return scale;
}

float make_q3_quants(int n, int nmax, const float* x, int8_t* levels, bool do_rmse) {
  const SignedAbsMax peak = signed_abs_max(x, n);
  if (peak.abs < kGroupMaxEps) {
    std::memset(levels, 0, static_cast<size_t>(n));
    return 0.f;
  }
  const float iscale = static_cast<float>(-nmax) / peak.value;
  if (!do_rmse) {
    round_symmetric(n, nmax, x, iscale, levels);
    return 1 / iscale;
  }
  // Levels are kept signed during the refinement and offset by +nmax at the end.
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_symmetric(nearest_int(iscale * x[i]), nmax);
    levels[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int pass = 0; pass < 5; ++pass) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      // Re-pick level i optimally for the scale the other levels imply; keep it if the fit improves.
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * levels[i];
      if (slx > 0) {
        float sl2 = suml2 - w * levels[i] * levels[i];
        const int new_l = clamp_symmetric(nearest_int(x[i] * sl2 / slx), nmax);
        if (new_l != levels[i]) {
          slx += w * x[i] * new_l;
          sl2 += w * new_l * new_l;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            levels[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) levels[i] = static_cast<int8_t>(levels[i] + nmax);
  // Guarded as in later ggml (llama/15379); c392e50 returns NaN when x^2 underflows to 0 for the whole group.
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* levels, float* min_out,
                       uint8_t* scratch, float rmin, float rdelta, int nstep, bool use_mad) {
  return search_scale_and_min(n, nmax, x, weights, levels, min_out, scratch, rmin, rdelta, nstep, use_mad);
}

float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* levels, float* min_out,
                       uint8_t* scratch, float rmin, float rdelta, int nstep, bool use_mad) {
  return search_scale_and_min(n, nmax, x, weights, levels, min_out, scratch, rmin, rdelta, nstep, use_mad);
}

float make_qp_quants(int n, int nmax, const float* x, uint8_t* levels, const float* weights) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];  // ggml's MAX(), which lets a NaN through
  // Exactly zero, as in c392e50 (later ggml uses kGroupMaxEps): a tiny max still gives finite, if meaningless,
  // codes, and the only NaN c392e50 can produce here is the 0/0 guarded at the end.
  if (!max) {
    std::memset(levels, 0, static_cast<size_t>(n));
    return 0.f;
  }
  // Coarse search: the plain rounding at nmax/max, then 8 neighbouring inverse scales, by weighted squared error.
  float iscale = nmax / max;
  for (int i = 0; i < n; ++i) levels[i] = static_cast<uint8_t>(nearest_int(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * levels[i];
    best_mse += weights[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * is + nmax) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::min(nmax, nearest_int(iscale_is * x[i]));
      const float diff = x[i] - scale_is * l;
      mse += weights[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, nearest_int(iscale * x[i]));
    levels[i] = static_cast<uint8_t>(l);
    const float w = weights[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  // Refinement: move single levels while the least-squares fit improves (at most 5 passes).
  for (int pass = 0; pass < 5; ++pass) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = weights[i];
      float slx = sumlx - w * x[i] * levels[i];
      float sl2 = suml2 - w * levels[i] * levels[i];
      if (slx > 0 && sl2 > 0) {
        const int new_l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
        if (new_l != levels[i]) {
          slx += w * x[i] * new_l;
          sl2 += w * new_l * new_l;
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            levels[i] = static_cast<uint8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  // c392e50 returns sumlx/suml2 unguarded: NaN when every weight is zero (an unused imatrix column range).
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

}  // namespace lowbit
