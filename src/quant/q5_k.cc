// Q5_K: as Q4_K with 5-bit levels; the fifth bit of value base+l goes to qh[l], bit 2*(base/64) for the low
// 32 of each 64 and the next bit for the high 32.
#include <cstring>

#include "quant/k_quant_common.h"

namespace lowbit::kquant {
void pack_levels(const uint8_t* levels, BlockQ5K& y) {
  std::memset(y.qh, 0, sizeof(y.qh));
  uint8_t low_bit = 1, high_bit = 2;
  for (int base = 0; base < kSuperBlock; base += 64) {
    uint8_t* ql = y.qs + base / 2;
    for (int j = 0; j < 32; ++j) {
      int l1 = levels[base + j];
      if (l1 > 15) {
        l1 -= 16;
        y.qh[j] |= low_bit;
      }
      int l2 = levels[base + j + 32];
      if (l2 > 15) {
        l2 -= 16;
        y.qh[j] |= high_bit;
      }
      ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
    low_bit <<= 2;
    high_bit <<= 2;
  }
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
