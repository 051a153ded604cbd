// Q6_K: 16 sub-blocks of 16 values, each with a signed 8-bit scale; levels -32..31 stored as 6 bits
// (4 in ql, 2 in qh). ggml's reference and weighted paths differ only in the sub-block search weights: x^2, or
// the importance itself (ggml uses it unscaled here, unlike the other K-quants).
#include <cmath>
#include <cstring>

#include "quant/k_quant_common.h"

namespace lowbit::kquant {
void pack_levels(const uint8_t* lv_all, BlockQ6K& y) {
  // Within each half of 128: ql byte l holds values l (low nibble) and l+64 (high), byte l+32 holds l+32 and
  // l+96; qh byte l holds bits 4-5 of values l, l+32, l+64, l+96.
  uint8_t* ql = y.ql;
  uint8_t* qh = y.qh;
  for (int half = 0; half < kSuperBlock; half += 128) {
    const uint8_t* lv = lv_all + half;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((lv[l] & 0xF) | ((lv[l + 64] & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((lv[l + 32] & 0xF) | ((lv[l + 96] & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((lv[l] >> 4) | ((lv[l + 32] >> 4) << 2) | ((lv[l + 64] >> 4) << 4) |
                                   ((lv[l + 96] >> 4) << 6));
    }
    ql += 64;
    qh += 32;
  }
}

void quantize_run(const float* x, BlockQ6K* y, int n, const float* importance) {
  constexpr int kSub = kSuperBlock / 16;
  int8_t levels[kRunBlocks * kSuperBlock];
  float sub_scales[kRunBlocks * kSub];
  make_qx_quants_batch(n * kSub, 16, 32, x, importance, levels, sub_scales);
  for (int b = 0; b < n; ++b) {
    const float* scales_b = sub_scales + kSub * b;
    const float* xb = x + kSuperBlock * b;
    int8_t* levels_b = levels + kSuperBlock * b;
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int ib = 0; ib < kSub; ++ib) {
      const float abs_scale = std::fabs(scales_b[ib]);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scales_b[ib];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[b], 0, sizeof(y[b]));  // all-zero block: fp16 0 is the zero bit pattern
      continue;
    }
    // The largest scale maps to -128 so the 8-bit codes use their full range.
    const float iscale = -128.f / max_scale;
    y[b].d = f32_to_f16(1 / iscale);
    for (int ib = 0; ib < kSub; ++ib) {
      y[b].scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales_b[ib])));
    }
    const float d_all = f16_to_f32(y[b].d);
    for (int j = 0; j < kSub; ++j) requantize_symmetric(xb + 16 * j, 16, d_all * y[b].scales[j], 32, levels_b + 16 * j);
    pack_levels(reinterpret_cast<const uint8_t*>(levels_b), y[b]);  // levels are 0..63 here
  }
}

void dequantize_block(const BlockQ6K& b, float* y) {
  const float d = f16_to_f32(b.d);
  const uint8_t* ql = b.ql;
  const uint8_t* qh = b.qh;
  const int8_t* sc = b.scales;
  for (int half = 0; half < kSuperBlock; half += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[half + l] = d * sc[is] * q1;
      y[half + l + 32] = d * sc[is + 2] * q2;
      y[half + l + 64] = d * sc[is + 4] * q3;
      y[half + l + 96] = d * sc[is + 6] * q4;
    }
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace lowbit::kquant
