#include "quant/k_quant_common.h"

#include <cmath>

namespace lowbit::kquant {

void quantize_scale_min_k4(const float* x, const float* importance, int nmax, float rmin, int nstep,
                           uint8_t* levels, uint16_t* d, uint16_t* dmin, uint8_t* scales) {
  constexpr int kSub = kSuperBlock / 32;
  float sub_scales[kSub];
  float sub_mins[kSub];  // stored negated (>= 0), as the searches return them
  float weights[32];
  uint8_t scratch[32];

  if (!importance) {
    // ggml's *_ref: weights |x| + rms of the sub-block, scale/min codes relative to the largest ones.
    float max_scale = 0;  // scales are positive once the min is taken out
    float max_min = 0;
    for (int j = 0; j < kSub; ++j) {
      const float* xs = x + 32 * j;
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
      sub_scales[j] = make_qkx2_quants(32, nmax, xs, weights, levels + 32 * j, &sub_mins[j], scratch, rmin, 0.1f,
                                       nstep, false);
      if (sub_scales[j] > max_scale) max_scale = sub_scales[j];
      if (sub_mins[j] > max_min) max_min = sub_mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < kSub; ++j) {
      // ggml stores the rounded value in a uint8_t before clamping to 63; keep that truncation.
      const auto ls = static_cast<uint8_t>(nearest_int(inv_scale * sub_scales[j]));
      const auto lm = static_cast<uint8_t>(nearest_int(inv_min * sub_mins[j]));
      pack_scale_min_k4(j, std::min<uint8_t>(63, ls), std::min<uint8_t>(63, lm), scales);
    }
    *d = f32_to_f16(max_scale / 63.f);
    *dmin = f32_to_f16(max_min / 63.f);
  } else {
    // ggml's *_impl: importance * sqrt(sigma^2 + x^2) weights, codes by a weighted search (make_qp_quants).
    const float sigma2 = 2 * super_block_sum_sq(x) / kSuperBlock;
    float sub_weight_sums[kSub];
    for (int j = 0; j < kSub; ++j) {
      const float* xs = x + 32 * j;
      sub_weight_sums[j] = importance_weights(xs, importance + 32 * j, sigma2, 32, weights);
      sub_scales[j] = make_qkx3_quants(32, nmax, xs, weights, levels + 32 * j, &sub_mins[j], scratch, -0.9f, 0.05f,
                                       36, false);
    }
    uint8_t scale_codes[kSub], min_codes[kSub];
    const float d_block = make_qp_quants(kSub, 63, sub_scales, scale_codes, sub_weight_sums);
    const float m_block = make_qp_quants(kSub, 63, sub_mins, min_codes, sub_weight_sums);
    for (int j = 0; j < kSub; ++j) pack_scale_min_k4(j, scale_codes[j], min_codes[j], scales);
    *d = f32_to_f16(d_block);
    *dmin = f32_to_f16(m_block);
  }

  // Final levels against the scales as they will be decoded (fp16 super-scales times 6-bit codes).
  const float d_all = f16_to_f32(*d);
  const float dmin_all = f16_to_f32(*dmin);
  for (int j = 0; j < kSub; ++j) {
    uint8_t sc, m;
    unpack_scale_min_k4(j, scales, &sc, &m);
    const float dl = d_all * sc;
    if (!dl) continue;
    requantize_with_min(x + 32 * j, 32, dl, dmin_all * m, nmax, levels + 32 * j);
  }
}

}  // namespace lowbit::kquant
