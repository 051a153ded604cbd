// Q5_0: symmetric 5-bit blocks of 32, x = d * (q - 16); as Q4_0 with one more bit (kept in qh).
// Bit-exactness with ggml needs every a*b+c rounded twice: forbid fusing them into FMAs on FMA targets.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <algorithm>

#include "core/float_formats.h"
#include "quant/legacy_quants.h"
#include "quant/quant_search.h"

namespace lowbit {
namespace {

void quantize_plain(const float* x, BlockQ5_0& y) {
  const SignedAbsMax peak = signed_abs_max(x, kLegacyBlock);
  const float d = peak.value / -16;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  y.d = f32_to_f16(d);
  uint8_t levels[kLegacyBlock];
  for (int j = 0; j < kLegacyBlock; ++j) levels[j] = static_cast<uint8_t>(std::min(31, static_cast<int>(x[j] * id + 16.5f)));
  legacy::pack_5bit(levels, y.qs, y.qh);
}

void quantize_weighted(const float* x, const float* importance, float sigma2, BlockQ5_0& y) {
  float weight[kLegacyBlock];
  legacy::block_weights(x, importance, sigma2, kLegacyBlock, weight);
  int8_t found[kLegacyBlock];
  y.d = f32_to_f16(make_qx_quants(kLegacyBlock, 16, x, found, 1, weight));
  uint8_t levels[kLegacyBlock];
  for (int j = 0; j < kLegacyBlock; ++j) levels[j] = static_cast<uint8_t>(found[j]);  // already offset to 0..31
  legacy::pack_5bit(levels, y.qs, y.qh);
}

void decode(const BlockQ5_0& b, float* out) {
  const float d = f16_to_f32(b.d);
  uint8_t levels[kLegacyBlock];
  legacy::unpack_5bit(b.qs, b.qh, levels);
  for (int j = 0; j < kLegacyBlock; ++j) out[j] = static_cast<float>(levels[j] - 16) * d;
}

}  // namespace

void quantize_q5_0(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance) {
  legacy::quantize_blocks<BlockQ5_0, kLegacyBlock, quantize_plain, quantize_weighted>("q5_0", src, dst, nrows,
                                                                                     n_per_row, importance);
}

void dequantize_q5_0(const void* src, float* dst, int64_t n) {
  legacy::dequantize_blocks<BlockQ5_0, kLegacyBlock, decode>("q5_0", src, dst, n);
}

}  // namespace lowbit
