// Q4_K: 8 sub-blocks of 32 with 6-bit scale and min codes, 4-bit levels. Everything up to the nibble packing is
// shared with Q5_K (quantize_scale_min_k4).
#include "quant/k_quant_common.h"

namespace lowbit::kquant {
void pack_levels(const uint8_t* levels, BlockQ4K& y) {
  // Each 64 values share 32 bytes: the first 32 in the low nibbles, the next 32 in the high nibbles.
  for (int base = 0; base < kSuperBlock; base += 64) {
    uint8_t* q = y.qs + base / 2;
    for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(levels[base + l] | (levels[base + l + 32] << 4));
  }
}

void quantize_run(const float* x, BlockQ4K* y, int n, const float* importance) {
  uint8_t levels[kRunBlocks * kSuperBlock];
  // ggml's reference search range for Q4_K: 21 steps from nmax-1.
  quantize_scale_min_k4(x, importance, n, 15, -1.f, 20, levels, y);
  for (int b = 0; b < n; ++b) pack_levels(levels + kSuperBlock * b, y[b]);
}

void dequantize_block(const BlockQ4K& b, float* y) {
  dequantize_scale_min_k4(b.d, b.dmin, b.scales, y, [&b](int i) {
    const uint8_t byte = b.qs[(i / 64) * 32 + i % 32];
    return (i % 64) < 32 ? byte & 0xF : byte >> 4;
  });
}

}  // namespace lowbit::kquant
