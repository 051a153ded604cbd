// Q2_K: 16 sub-blocks of 16 values, each with a 4-bit scale and a 4-bit min code (one byte), 2-bit levels;
// x ~ d*scale*level - dmin*min.
#include <cmath>

#include "quant/k_quant_common.h"

namespace lowbit::kquant {
namespace {

constexpr int kSub = kSuperBlock / 16;

}  // namespace

void pack_levels(const uint8_t* levels, BlockQ2K& y) { pack_2bit(levels, y.qs); }

void quantize_run(const float* x, BlockQ2K* y, int n, const float* importance) {
  uint8_t levels[kRunBlocks * kSuperBlock];
  float weights[kRunBlocks * kSuperBlock] = {};  // zeroed for -Wmaybe-uninitialized; only n blocks are read
  float sub_scales[kRunBlocks * kSub];
  float sub_mins[kRunBlocks * kSub];  // negated mins (>= 0)

  if (!importance) {
    // ggml's quantize_row_q2_K_ref: |x| weights, absolute-error search, codes relative to the largest ones.
    for (int i = 0; i < n * kSuperBlock; ++i) weights[i] = std::fabs(x[i]);
    make_qkx_quants_batch(n * kSub, 16, 3, x, weights, levels, sub_scales, sub_mins, -0.5f, 0.1f, 15, true);
    for (int b = 0; b < n; ++b) {
      const float* scales_b = sub_scales + kSub * b;
      const float* mins_b = sub_mins + kSub * b;
      const float max_scale = largest_or_zero(scales_b, kSub);  // scales are positive once the min is taken out
      const float max_min = largest_or_zero(mins_b, kSub);
      if (max_scale > 0) {
        const float iscale = 15.f / max_scale;
        for (int j = 0; j < kSub; ++j) y[b].scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales_b[j]));
        y[b].d = f32_to_f16(max_scale / 15.f);
      } else {
        for (int j = 0; j < kSub; ++j) y[b].scales[j] = 0;
        y[b].d = f32_to_f16(0.f);
      }
      if (max_min > 0) {
        const float iscale = 15.f / max_min;
        for (int j = 0; j < kSub; ++j) y[b].scales[j] |= static_cast<uint8_t>(nearest_int(iscale * mins_b[j]) << 4);
        y[b].dmin = f32_to_f16(max_min / 15.f);
      } else {
        y[b].dmin = f32_to_f16(0.f);
      }
    }
  } else {
    // ggml's quantize_row_q2_K_impl: importance * sqrt(sigma^2 + x^2) weights, codes by make_qp_quants.
    float sub_weight_sums[kRunBlocks * kSub];
    for (int b = 0; b < n; ++b) {
      const float sigma2 = super_block_sum_sq(x + kSuperBlock * b) / kSuperBlock;
      for (int j = kSub * b; j < kSub * (b + 1); ++j) {
        sub_weight_sums[j] = importance_weights(x + 16 * j, importance + 16 * j, sigma2, 16, weights + 16 * j);
      }
    }
    make_qkx_quants_batch(n * kSub, 16, 3, x, weights, levels, sub_scales, sub_mins, -0.9f, 0.05f, 36, false);
    for (int b = 0; b < n; ++b) {
      uint8_t scale_codes[kSub], min_codes[kSub];
      const float dm = make_qp_quants(kSub, 15, sub_scales + kSub * b, scale_codes, sub_weight_sums + kSub * b);
      const float mm = make_qp_quants(kSub, 15, sub_mins + kSub * b, min_codes, sub_weight_sums + kSub * b);
      y[b].d = f32_to_f16(dm);
      y[b].dmin = f32_to_f16(mm);
      for (int j = 0; j < kSub; ++j) y[b].scales[j] = static_cast<uint8_t>(scale_codes[j] | (min_codes[j] << 4));
    }
  }

  for (int b = 0; b < n; ++b) {
    const float d_all = f16_to_f32(y[b].d);
    const float dmin_all = f16_to_f32(y[b].dmin);
    uint8_t* levels_b = levels + kSuperBlock * b;
    for (int j = 0; j < kSub; ++j) {
      const float dl = d_all * (y[b].scales[j] & 0xF);
      requantize_with_min(x + kSuperBlock * b + 16 * j, 16, dl, dmin_all * (y[b].scales[j] >> 4), 3, levels_b + 16 * j);
    }
    pack_levels(levels_b, y[b]);
  }
}

void dequantize_block(const BlockQ2K& b, float* y) {
  const float d = f16_to_f32(b.d);
  const float dmin = f16_to_f32(b.dmin);
  for (int j = 0; j < kSub; ++j) {
    const float dl = d * (b.scales[j] & 0xF);
    const float ml = dmin * (b.scales[j] >> 4);
    for (int l = 0; l < 16; ++l) y[16 * j + l] = dl * unpack_2bit(b.qs, 16 * j + l) - ml;
  }
}

}  // namespace lowbit::kquant
