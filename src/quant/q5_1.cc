// Q5_1: asymmetric 5-bit blocks of 32, x = d * q + m; Q4_1 with a fifth bit per value (kept in qh).
#include "quant/legacy_quants.h"

namespace lowbit {

using Q5_1Type = legacy::BlockType<BlockQ5_1, legacy::AffineCodec<BlockQ5_1, 31>>;

void quantize_q5_1(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance) {
  Q5_1Type::quantize("q5_1", src, dst, nrows, n_per_row, importance);
}

void dequantize_q5_1(const void* src, float* dst, int64_t n) { Q5_1Type::dequantize("q5_1", src, dst, n); }

void set_levels_q5_1(void* blocks, const uint8_t* levels, int64_t n) { Q5_1Type::set_levels("q5_1", blocks, levels, n); }

}  // namespace lowbit
