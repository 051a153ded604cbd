// Q5_K: as Q4_K with 5-bit levels; the fifth bit of value base+l goes to qh[l], bit 2*(base/64) for the low
// 32 of each 64 and the next bit for the high 32.
#include <cstring>

#include "quant/k_quant_common.h"

namespace lowbit::kquant {
void pack_levels(const uint8_t* levels, BlockQ5K& y) {
  // Without branches (a level above 15 is one with bit 4 set), from a local copy the compiler knows is not y.
  uint8_t lv[kSuperBlock];
  std::memcpy(lv, levels, sizeof(lv));
  uint8_t qh[32] = {};
  for (int base = 0, shift = 0; base < kSuperBlock; base += 64, shift += 2) {
    uint8_t* ql = y.qs + base / 2;
    for (int j = 0; j < 32; ++j) {
      const int l1 = lv[base + j], l2 = lv[base + j + 32];
      ql[j] = static_cast<uint8_t>((l1 & 0xF) | ((l2 & 0xF) << 4));
      qh[j] |= static_cast<uint8_t>((((l1 >> 4) & 1) | (((l2 >> 4) & 1) << 1)) << shift);
    }
  }
  std::memcpy(y.qh, qh, sizeof(qh));
}

void quantize_run(const float* x, BlockQ5K* y, int n, const float* importance) {
  uint8_t levels[kRunBlocks * kSuperBlock];
  // ggml's reference search range for Q5_K: 16 steps from nmax-0.5.
  quantize_scale_min_k4(x, importance, n, 31, -0.5f, 15, levels, y);
  for (int b = 0; b < n; ++b) pack_levels(levels + kSuperBlock * b, y[b]);
}

void dequantize_block(const BlockQ5K& b, float* y) {
  dequantize_scale_min_k4(b.d, b.dmin, b.scales, y, [&b](int i) {
    const int pair = i / 64, within = i % 64, l = within % 32;
    const bool high = within >= 32;
    const uint8_t byte = b.qs[pair * 32 + l];
    const int low4 = high ? byte >> 4 : byte & 0xF;
    const int bit = (b.qh[l] >> (2 * pair + (high ? 1 : 0))) & 1;
    return low4 + (bit ? 16 : 0);
  });
}

}  // namespace lowbit::kquant
