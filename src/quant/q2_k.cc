// Q2_K: 16 sub-blocks of 16 values, each with a 4-bit scale and a 4-bit min code (one byte), 2-bit levels;
// x ~ d*scale*level - dmin*min.
#include <cmath>

#include "quant/k_quant_common.h"

namespace lowbit::kquant {
namespace {

constexpr int kSub = kSuperBlock / 16;

}  // namespace

void pack_levels(const uint8_t* levels, BlockQ2K& y) { pack_2bit(levels, y.qs); }

void quantize_block(const float* x, BlockQ2K& y, const float* importance) {
  uint8_t levels[kSuperBlock];
  uint8_t scratch[16];
  float weights[16];
  float sub_scales[kSub];
  float sub_mins[kSub];  // negated mins (>= 0)

  if (!importance) {
    // ggml's quantize_row_q2_K_ref: |x| weights, absolute-error search, codes relative to the largest ones.
    float max_scale = 0;  // scales are positive once the min is taken out
    float max_min = 0;
    for (int j = 0; j < kSub; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      sub_scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, levels + 16 * j, &sub_mins[j], scratch, -0.5f,
                                       0.1f, 15, true);
      if (sub_scales[j] > max_scale) max_scale = sub_scales[j];
      if (sub_mins[j] > max_min) max_min = sub_mins[j];
    }
    if (max_scale > 0) {
      const float iscale = 15.f / max_scale;
      for (int j = 0; j < kSub; ++j) y.scales[j] = static_cast<uint8_t>(nearest_int(iscale * sub_scales[j]));
      y.d = f32_to_f16(max_scale / 15.f);
    } else {
      for (int j = 0; j < kSub; ++j) y.scales[j] = 0;
      y.d = f32_to_f16(0.f);
    }
    if (max_min > 0) {
      const float iscale = 15.f / max_min;
      for (int j = 0; j < kSub; ++j) y.scales[j] |= static_cast<uint8_t>(nearest_int(iscale * sub_mins[j]) << 4);
      y.dmin = f32_to_f16(max_min / 15.f);
    } else {
      y.dmin = f32_to_f16(0.f);
    }
  } else {
    // ggml's quantize_row_q2_K_impl: importance * sqrt(sigma^2 + x^2) weights, codes by make_qp_quants.
    const float sigma2 = super_block_sum_sq(x) / kSuperBlock;
    float sub_weight_sums[kSub];
    for (int j = 0; j < kSub; ++j) {
      const float* xs = x + 16 * j;
      sub_weight_sums[j] = importance_weights(xs, importance + 16 * j, sigma2, 16, weights);
      sub_scales[j] = make_qkx3_quants(16, 3, xs, weights, levels + 16 * j, &sub_mins[j], scratch, -0.9f, 0.05f,
                                       36, false);
    }
    uint8_t scale_codes[kSub], min_codes[kSub];
    const float dm = make_qp_quants(kSub, 15, sub_scales, scale_codes, sub_weight_sums);
    const float mm = make_qp_quants(kSub, 15, sub_mins, min_codes, sub_weight_sums);
    y.d = f32_to_f16(dm);
    y.dmin = f32_to_f16(mm);
    for (int j = 0; j < kSub; ++j) y.scales[j] = static_cast<uint8_t>(scale_codes[j] | (min_codes[j] << 4));
  }

  const float d_all = f16_to_f32(y.d);
  const float dmin_all = f16_to_f32(y.dmin);
  for (int j = 0; j < kSub; ++j) {
    const float dl = d_all * (y.scales[j] & 0xF);
    requantize_with_min(x + 16 * j, 16, dl, dmin_all * (y.scales[j] >> 4), 3, levels + 16 * j);
  }
  pack_levels(levels, y);
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
