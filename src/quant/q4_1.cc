// Q4_1: asymmetric 4-bit blocks of 32, x = d * q + m, with m the block minimum (plain) or a fitted offset
// (importance-weighted: ggml's make_qkx3_quants search, legacy_quants.cc).
#include "quant/legacy_quants.h"

namespace lowbit {

using Q4_1Type = legacy::BlockType<BlockQ4_1, legacy::AffineCodec<BlockQ4_1, 15>>;

void quantize_q4_1(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance) {
  Q4_1Type::quantize("q4_1", src, dst, nrows, n_per_row, importance);
}

void dequantize_q4_1(const void* src, float* dst, int64_t n) { Q4_1Type::dequantize("q4_1", src, dst, n); }

void set_levels_q4_1(void* blocks, const uint8_t* levels, int64_t n) { Q4_1Type::set_levels("q4_1", blocks, levels, n); }

}  // namespace lowbit
