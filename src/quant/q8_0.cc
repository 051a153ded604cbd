// Q8_0 and Q8_1: symmetric 8-bit blocks of 32, x = d * q with d = max|x| / 127 and q rounded half away from
// zero. Q8_1 also stores d * sum(q) (ggml's dot products with Q4_1/Q5_1 use it for the min term). ggml has no
// importance-weighted search for either: importance is accepted and ignored.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/float_formats.h"
#include "quant/legacy_quants.h"

namespace lowbit {

float legacy::q8_round_block(const float* x, int8_t* qs) {
  float amax = 0.0f;
  for (int j = 0; j < kLegacyBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < kLegacyBlock; ++j) {
    const float r = std::round(x[j] * id);  // in [-127, 127] for finite input; NaN only from NaN/Inf input
    qs[j] = static_cast<int8_t>(std::isnan(r) ? 0.f : r);
  }
  return d;
}

namespace {

void quantize_q8_0_run(const float* x, int n, BlockQ8_0* y) {
  int8_t qs[legacy::kRunBlocks * kLegacyBlock];
  float d[legacy::kRunBlocks];
  legacy::q8_0_plain_batch(x, n, qs, d);
  for (int b = 0; b < n; ++b) {
    y[b].d = f32_to_f16(d[b]);
    std::memcpy(y[b].qs, qs + kLegacyBlock * b, kLegacyBlock);
  }
}
// Never called (the row loop gets no importance), but the loop wants a weighted run.
void quantize_q8_0_run_ignoring(const float* x, const float*, float, int n, BlockQ8_0* y) { quantize_q8_0_run(x, n, y); }

void quantize_q8_1_block(const float* x, BlockQ8_1& y) {
  const float d = legacy::q8_round_block(x, y.qs);
  y.d = f32_to_f16(d);
  int sum = 0;
  for (int j = 0; j < kLegacyBlock; ++j) sum += y.qs[j];
  // The unrounded d, as ggml: s is not d16 * sum.
  y.s = f32_to_f16(static_cast<float>(sum) * d);
}
void quantize_q8_1_run(const float* x, int n, BlockQ8_1* y) {
  for (int b = 0; b < n; ++b) quantize_q8_1_block(x + kLegacyBlock * b, y[b]);
}
void quantize_q8_1_run_ignoring(const float* x, const float*, float, int n, BlockQ8_1* y) { quantize_q8_1_run(x, n, y); }

template <typename Block>
void decode(const Block& b, float* out) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kLegacyBlock; ++j) out[j] = static_cast<float>(b.qs[j]) * d;
}

void set_q8_0_levels(const uint8_t* levels, BlockQ8_0& y) {
  for (int j = 0; j < kLegacyBlock; ++j) y.qs[j] = static_cast<int8_t>(static_cast<int>(levels[j]) - 128);
}

}  // namespace

void set_levels_q8_0(void* blocks, const uint8_t* levels, int64_t n) {
  legacy::set_levels_blocks<BlockQ8_0, kLegacyBlock, set_q8_0_levels>("q8_0", blocks, levels, n);
}

void quantize_q8_0(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  // Null importance: the row loop then skips the (unused) mean square.
  legacy::quantize_blocks<BlockQ8_0, kLegacyBlock, quantize_q8_0_run, quantize_q8_0_run_ignoring>(
      "q8_0", src, dst, nrows, n_per_row, nullptr);
}

void quantize_q8_1(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  legacy::quantize_blocks<BlockQ8_1, kLegacyBlock, quantize_q8_1_run, quantize_q8_1_run_ignoring>(
      "q8_1", src, dst, nrows, n_per_row, nullptr);
}

void dequantize_q8_0(const void* src, float* dst, int64_t n) {
  legacy::dequantize_blocks<BlockQ8_0, kLegacyBlock, decode<BlockQ8_0>>("q8_0", src, dst, n);
}

void dequantize_q8_1(const void* src, float* dst, int64_t n) {
  legacy::dequantize_blocks<BlockQ8_1, kLegacyBlock, decode<BlockQ8_1>>("q8_1", src, dst, n);
}

}  // namespace lowbit
