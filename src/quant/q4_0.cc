// Q4_0: symmetric 4-bit blocks of 32, x = d * (q - 8). The value of largest magnitude maps to level 0 (-8), so
// the sign of d follows it and the full range is used on the side where it matters. Importance-weighted:
// ggml's make_qx_quants search (legacy_quants.cc).
#include "quant/legacy_quants.h"

namespace lowbit {

using Q4_0Type = legacy::BlockType<BlockQ4_0, legacy::SymmetricCodec<BlockQ4_0, 8>>;

void quantize_q4_0(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance) {
  Q4_0Type::quantize("q4_0", src, dst, nrows, n_per_row, importance);
}

void dequantize_q4_0(const void* src, float* dst, int64_t n) { Q4_0Type::dequantize("q4_0", src, dst, n); }

void set_levels_q4_0(void* blocks, const uint8_t* levels, int64_t n) { Q4_0Type::set_levels("q4_0", blocks, levels, n); }

}  // namespace lowbit
