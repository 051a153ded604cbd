// Q5_0: symmetric 5-bit blocks of 32, x = d * (q - 16); Q4_0 with a fifth bit per value (kept in qh).
#include "quant/legacy_quants.h"

namespace lowbit {

using Q5_0Type = legacy::BlockType<BlockQ5_0, legacy::SymmetricCodec<BlockQ5_0, 16>>;

void quantize_q5_0(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance) {
  Q5_0Type::quantize("q5_0", src, dst, nrows, n_per_row, importance);
}

void dequantize_q5_0(const void* src, float* dst, int64_t n) { Q5_0Type::dequantize("q5_0", src, dst, n); }

void set_levels_q5_0(void* blocks, const uint8_t* levels, int64_t n) { Q5_0Type::set_levels("q5_0", blocks, levels, n); }

}  // namespace lowbit
