#include "quant/k_quant_common.h"

#include <cmath>

namespace lowbit::kquant {

template <typename Block>
void quantize_scale_min_k4(const float* x, const float* importance, int n, int nmax, float rmin, int nstep,
                           uint8_t* levels, Block* y) {
  constexpr int kSub = kSuperBlock / 32;
  float sub_scales[kRunBlocks * kSub];
  float sub_mins[kRunBlocks * kSub];  // stored negated (>= 0), as the searches return them
  float weights[kRunBlocks * kSuperBlock] = {};  // zeroed for -Wmaybe-uninitialized; only n blocks are read

  if (!importance) {
    // ggml's *_ref: weights |x| + rms of the sub-block, scale/min codes relative to the largest ones.
    for (int j = 0; j < n * kSub; ++j) {
      const float* xs = x + 32 * j;
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[32 * j + l] = av_x + std::fabs(xs[l]);
    }
    make_qkx_quants_batch(n * kSub, 32, nmax, x, weights, levels, sub_scales, sub_mins, rmin, 0.1f, nstep, false);
    for (int b = 0; b < n; ++b) {
      const float* scales_b = sub_scales + kSub * b;
      const float* mins_b = sub_mins + kSub * b;
      const float max_scale = largest_or_zero(scales_b, kSub);  // scales are positive once the min is taken out
      const float max_min = largest_or_zero(mins_b, kSub);
      const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
      const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
      for (int j = 0; j < kSub; ++j) {
        // ggml stores the rounded value in a uint8_t before clamping to 63; keep that truncation.
        const auto ls = static_cast<uint8_t>(nearest_int(inv_scale * scales_b[j]));
        const auto lm = static_cast<uint8_t>(nearest_int(inv_min * mins_b[j]));
        pack_scale_min_k4(j, std::min<uint8_t>(63, ls), std::min<uint8_t>(63, lm), y[b].scales);
      }
      y[b].d = f32_to_f16(max_scale / 63.f);
      y[b].dmin = f32_to_f16(max_min / 63.f);
    }
  } else {
    // ggml's *_impl: importance * sqrt(sigma^2 + x^2) weights, codes by a weighted search (make_qp_quants).
    float sub_weight_sums[kRunBlocks * kSub];
    for (int b = 0; b < n; ++b) {
      const float* xb = x + kSuperBlock * b;
      const float sigma2 = 2 * super_block_sum_sq(xb) / kSuperBlock;
      for (int j = kSub * b; j < kSub * (b + 1); ++j) {
        sub_weight_sums[j] = importance_weights(x + 32 * j, importance + 32 * j, sigma2, 32, weights + 32 * j);
      }
    }
    make_qkx_quants_batch(n * kSub, 32, nmax, x, weights, levels, sub_scales, sub_mins, -0.9f, 0.05f, 36, false);
    for (int b = 0; b < n; ++b) {
      uint8_t scale_codes[kSub], min_codes[kSub];
      const float d_block = make_qp_quants(kSub, 63, sub_scales + kSub * b, scale_codes, sub_weight_sums + kSub * b);
      const float m_block = make_qp_quants(kSub, 63, sub_mins + kSub * b, min_codes, sub_weight_sums + kSub * b);
      for (int j = 0; j < kSub; ++j) pack_scale_min_k4(j, scale_codes[j], min_codes[j], y[b].scales);
      y[b].d = f32_to_f16(d_block);
      y[b].dmin = f32_to_f16(m_block);
    }
  }

  // Final levels against the scales as they will be decoded (fp16 super-scales times 6-bit codes).
  for (int b = 0; b < n; ++b) {
    const float d_all = f16_to_f32(y[b].d);
    const float dmin_all = f16_to_f32(y[b].dmin);
    for (int j = 0; j < kSub; ++j) {
      uint8_t sc, m;
      unpack_scale_min_k4(j, y[b].scales, &sc, &m);
      const float dl = d_all * sc;
      if (!dl) continue;
      requantize_with_min(x + kSuperBlock * b + 32 * j, 32, dl, dmin_all * m, nmax,
                          levels + kSuperBlock * b + 32 * j);
    }
  }
}

template void quantize_scale_min_k4(const float*, const float*, int, int, float, int, uint8_t*, BlockQ4K*);
template void quantize_scale_min_k4(const float*, const float*, int, int, float, int, uint8_t*, BlockQ5K*);

}  // namespace lowbit::kquant
