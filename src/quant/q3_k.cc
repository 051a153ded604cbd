// Q3_K: 16 sub-blocks of 16 values with signed 6-bit scales (biased by 32, packed in 12 bytes), levels -4..3:
// the low 2 bits in qs (as Q2_K) and the third bit in hmask (value i -> byte i%32, bit i/32).
#include <cmath>
#include <cstring>

#include "quant/k_quant_common.h"

namespace lowbit::kquant {
namespace {

constexpr int kSub = kSuperBlock / 16;

// Sub-block j's 6-bit code: the low nibble in byte j (j < 8) or the high nibble of byte j-8, the top 2 bits in
// byte 8 + j%4 at bit 2*(j/4). `scales` must start zeroed.
void pack_scale(int j, int code, uint8_t* scales) {
  if (j < 8) {
    scales[j] |= static_cast<uint8_t>(code & 0xF);
  } else {
    scales[j - 8] |= static_cast<uint8_t>((code & 0xF) << 4);
  }
  scales[8 + j % 4] |= static_cast<uint8_t>((code >> 4) << (2 * (j / 4)));
}
// Signed scale of sub-block j (-32..31).
int unpack_scale(int j, const uint8_t* scales) {
  const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
  return (low | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

}  // namespace

// Levels 0..7: bits 0-1 in qs (pack_2bit), bit 2 in hmask (byte j % 32, bit j / 32).
void pack_levels(const uint8_t* levels, BlockQ3K& y) {
  // Without branches (a level above 3 is one with bit 2 set): random levels made the branch a coin toss.
  uint8_t low2[kSuperBlock];
  for (int j = 0; j < kSuperBlock; ++j) low2[j] = static_cast<uint8_t>(levels[j] & 3);
  for (int b = 0; b < 32; ++b) {
    uint8_t mask = 0;
    for (int k = 0; k < kSuperBlock / 32; ++k) mask |= static_cast<uint8_t>(((levels[32 * k + b] >> 2) & 1) << k);
    y.hmask[b] = mask;
  }
  pack_2bit(low2, y.qs);
}

void quantize_run(const float* x, BlockQ3K* y, int n, const float* importance) {
  int8_t levels[kRunBlocks * kSuperBlock];  // 0..7 (level + 4)
  float sub_scales[kRunBlocks * kSub];
  for (int b = 0; b < n; ++b) std::memset(y[b].scales, 0, sizeof(y[b].scales));

  if (!importance) {
    // ggml's quantize_row_q3_K_ref: the largest-magnitude sub-block scale maps to code -32.
    make_q3_quants_batch(n * kSub, 16, 4, x, levels, sub_scales);
    for (int b = 0; b < n; ++b) {
      const float* scales_b = sub_scales + kSub * b;
      float max_scale = 0;
      float amax = 0;
      for (int j = 0; j < kSub; ++j) {
        const float scale = std::fabs(scales_b[j]);
        if (scale > amax) {
          amax = scale;
          max_scale = scales_b[j];
        }
      }
      if (max_scale) {
        const float iscale = -32.f / max_scale;
        for (int j = 0; j < kSub; ++j) {
          // ggml narrows to int8_t before clamping; |code| <= 32 here so it never wraps, but keep the same steps.
          const auto code = static_cast<int8_t>(nearest_int(iscale * scales_b[j]));
          pack_scale(j, std::max<int>(-32, std::min<int>(31, code)) + 32, y[b].scales);
        }
        y[b].d = f32_to_f16(1 / iscale);
      } else {
        y[b].d = f32_to_f16(0.f);
      }
    }
  } else {
    // ggml's quantize_row_q3_K_impl: importance * sqrt(sigma^2 + x^2) weights; codes by make_qx_quants too,
    // with the sub-blocks' weight sums as the weights.
    float weights[kRunBlocks * kSuperBlock] = {};  // zeroed for -Wmaybe-uninitialized; only n blocks are read
    float sub_weight_sums[kRunBlocks * kSub];
    for (int b = 0; b < n; ++b) {
      const float sigma2 = 2 * super_block_sum_sq(x + kSuperBlock * b) / kSuperBlock;
      for (int j = kSub * b; j < kSub * (b + 1); ++j) {
        sub_weight_sums[j] = importance_weights(x + 16 * j, importance + 16 * j, sigma2, 16, weights + 16 * j);
      }
    }
    make_qx_quants_batch(n * kSub, 16, 4, x, weights, levels, sub_scales);
    int8_t codes[kRunBlocks * kSub];
    float d_blocks[kRunBlocks];
    make_qx_quants_batch(n, kSub, 32, sub_scales, sub_weight_sums, codes, d_blocks);
    for (int b = 0; b < n; ++b) {
      for (int j = 0; j < kSub; ++j) pack_scale(j, codes[kSub * b + j], y[b].scales);
      y[b].d = f32_to_f16(d_blocks[b]);
    }
  }

  for (int b = 0; b < n; ++b) {
    const float d_all = f16_to_f32(y[b].d);
    int8_t* levels_b = levels + kSuperBlock * b;
    for (int j = 0; j < kSub; ++j) {
      requantize_symmetric(x + kSuperBlock * b + 16 * j, 16, d_all * unpack_scale(j, y[b].scales), 4, levels_b + 16 * j);
    }
    pack_levels(reinterpret_cast<const uint8_t*>(levels_b), y[b]);  // levels are 0..7 here
  }
}

void dequantize_block(const BlockQ3K& b, float* y) {
  const float d_all = f16_to_f32(b.d);
  for (int j = 0; j < kSub; ++j) {
    const float dl = d_all * unpack_scale(j, b.scales);
    for (int l = 0; l < 16; ++l) {
      const int i = 16 * j + l;
      const int high = (b.hmask[i % 32] >> (i / 32)) & 1;
      y[i] = dl * (unpack_2bit(b.qs, i) - (high ? 0 : 4));
    }
  }
}

}  // namespace lowbit::kquant
