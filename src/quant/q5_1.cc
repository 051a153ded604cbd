// Q5_1: asymmetric 5-bit blocks of 32, x = d * q + m; as Q4_1 with one more bit (kept in qh).
// Bit-exactness with ggml needs every a*b+c rounded twice: forbid fusing them into FMAs on FMA targets.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <cfloat>

#include "core/float_formats.h"
#include "quant/legacy_quants.h"
#include "quant/quant_search.h"

namespace lowbit {
namespace {

void quantize_plain(const float* x, BlockQ5_1& y) {
  float min = FLT_MAX;
  float max = -FLT_MAX;
  for (int j = 0; j < kLegacyBlock; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / 31;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  y.d = f32_to_f16(d);
  y.m = f32_to_f16(min);
  uint8_t levels[kLegacyBlock];
  // ggml does not clamp here (unlike Q4_1): the maximum lands on 31.5 at most, and pack_5bit keeps 5 bits.
  for (int j = 0; j < kLegacyBlock; ++j) {
    const float scaled = (x[j] - min) * id;
    levels[j] = static_cast<uint8_t>(static_cast<int>(scaled + 0.5f));
  }
  legacy::pack_5bit(levels, y.qs, y.qh);
}

void quantize_weighted(const float* x, const float* importance, float sigma2, BlockQ5_1& y) {
  float weight[kLegacyBlock];
  legacy::block_weights(x, importance, sigma2, kLegacyBlock, weight);
  uint8_t levels[kLegacyBlock];
  uint8_t scratch[kLegacyBlock];
  float neg_min = 0;
  const float d = make_qkx3_quants(kLegacyBlock, 31, x, weight, levels, &neg_min, scratch, -0.9f, 0.05f, 36, false);
  y.d = f32_to_f16(d);
  y.m = f32_to_f16(-neg_min);
  legacy::pack_5bit(levels, y.qs, y.qh);
}

void decode(const BlockQ5_1& b, float* out) {
  const float d = f16_to_f32(b.d);
  const float m = f16_to_f32(b.m);
  uint8_t levels[kLegacyBlock];
  legacy::unpack_5bit(b.qs, b.qh, levels);
  for (int j = 0; j < kLegacyBlock; ++j) out[j] = static_cast<float>(levels[j]) * d + m;
}

}  // namespace

void quantize_q5_1(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance) {
  legacy::quantize_blocks<BlockQ5_1, kLegacyBlock, quantize_plain, quantize_weighted>("q5_1", src, dst, nrows,
                                                                                     n_per_row, importance);
}

void dequantize_q5_1(const void* src, float* dst, int64_t n) {
  legacy::dequantize_blocks<BlockQ5_1, kLegacyBlock, decode>("q5_1", src, dst, n);
}

}  // namespace lowbit
