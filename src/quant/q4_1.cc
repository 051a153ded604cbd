// Q4_1: asymmetric 4-bit blocks of 32, x = d * q + m with m the block minimum (plain) or a fitted offset
// (weighted). Without importance the block's [min, max] is split into 15 equal steps.
// Bit-exactness with ggml needs every a*b+c rounded twice: forbid fusing them into FMAs on FMA targets.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <algorithm>
#include <cfloat>

#include "core/float_formats.h"
#include "quant/legacy_quants.h"
#include "quant/quant_search.h"

namespace lowbit {
namespace {

void quantize_plain(const float* x, BlockQ4_1& y) {
  float min = FLT_MAX;
  float max = -FLT_MAX;
  for (int j = 0; j < kLegacyBlock; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / 15;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  y.d = f32_to_f16(d);
  y.m = f32_to_f16(min);
  uint8_t levels[kLegacyBlock];
  for (int j = 0; j < kLegacyBlock; ++j) {
    const float scaled = (x[j] - min) * id;
    levels[j] = static_cast<uint8_t>(std::min(15, static_cast<int>(scaled + 0.5f)));
  }
  legacy::pack_nibbles(levels, y.qs);
}

void quantize_weighted(const float* x, const float* importance, float sigma2, BlockQ4_1& y) {
  float weight[kLegacyBlock];
  legacy::block_weights(x, importance, sigma2, kLegacyBlock, weight);
  uint8_t levels[kLegacyBlock];
  uint8_t scratch[kLegacyBlock];
  float neg_min = 0;
  const float d = make_qkx3_quants(kLegacyBlock, 15, x, weight, levels, &neg_min, scratch, -0.9f, 0.05f, 36, false);
  y.d = f32_to_f16(d);
  y.m = f32_to_f16(-neg_min);
  legacy::pack_nibbles(levels, y.qs);
}

void decode(const BlockQ4_1& b, float* out) {
  const float d = f16_to_f32(b.d);
  const float m = f16_to_f32(b.m);
  constexpr int kHalf = kLegacyBlock / 2;
  for (int j = 0; j < kHalf; ++j) {
    out[j] = static_cast<float>(b.qs[j] & 0x0F) * d + m;
    out[j + kHalf] = static_cast<float>(b.qs[j] >> 4) * d + m;
  }
}

}  // namespace

void quantize_q4_1(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance) {
  legacy::quantize_blocks<BlockQ4_1, kLegacyBlock, quantize_plain, quantize_weighted>("q4_1", src, dst, nrows,
                                                                                     n_per_row, importance);
}

void dequantize_q4_1(const void* src, float* dst, int64_t n) {
  legacy::dequantize_blocks<BlockQ4_1, kLegacyBlock, decode>("q4_1", src, dst, n);
}

}  // namespace lowbit
