// Q4_0: symmetric 4-bit blocks of 32, x = d * (q - 8). The value of largest magnitude maps to level 0 (-8), so
// the sign of d follows it and the full range -8..7 is used on the side where it matters.
// Bit-exactness with ggml needs every a*b+c rounded twice: forbid fusing them into FMAs on FMA targets.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <algorithm>
#include <cmath>

#include "core/float_formats.h"
#include "quant/legacy_quants.h"
#include "quant/quant_search.h"

namespace lowbit {
namespace {

void quantize_plain(const float* x, BlockQ4_0& y) {
  const SignedAbsMax peak = signed_abs_max(x, kLegacyBlock);
  const float d = peak.value / -8;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  y.d = f32_to_f16(d);
  uint8_t levels[kLegacyBlock];
  // +8.5 then truncation is ggml's rounding (halves go up); the peak itself lands on 0.5 -> 0.
  for (int j = 0; j < kLegacyBlock; ++j) levels[j] = static_cast<uint8_t>(std::min(15, static_cast<int>(x[j] * id + 8.5f)));
  legacy::pack_nibbles(levels, y.qs);
}

void quantize_weighted(const float* x, const float* importance, float sigma2, BlockQ4_0& y) {
  float weight[kLegacyBlock];
  legacy::block_weights(x, importance, sigma2, kLegacyBlock, weight);
  int8_t found[kLegacyBlock];
  y.d = f32_to_f16(make_qx_quants(kLegacyBlock, 8, x, found, 1, weight));
  uint8_t levels[kLegacyBlock];
  for (int j = 0; j < kLegacyBlock; ++j) levels[j] = static_cast<uint8_t>(found[j]);  // already offset to 0..15
  legacy::pack_nibbles(levels, y.qs);
}

void decode(const BlockQ4_0& b, float* out) {
  const float d = f16_to_f32(b.d);
  constexpr int kHalf = kLegacyBlock / 2;
  for (int j = 0; j < kHalf; ++j) {
    out[j] = static_cast<float>((b.qs[j] & 0x0F) - 8) * d;
    out[j + kHalf] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
  }
}

}  // namespace

void quantize_q4_0(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance) {
  legacy::quantize_blocks<BlockQ4_0, kLegacyBlock, quantize_plain, quantize_weighted>("q4_0", src, dst, nrows,
                                                                                     n_per_row, importance);
}

void dequantize_q4_0(const void* src, float* dst, int64_t n) {
  legacy::dequantize_blocks<BlockQ4_0, kLegacyBlock, decode>("q4_0", src, dst, n);
}

}  // namespace lowbit
