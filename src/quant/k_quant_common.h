// Pieces shared by the K-quant files (q2_k.cc ... q8_k.cc): the row/block drivers with their length checks,
// the bit packings two or more formats use, and the Q4_K/Q5_K scale search. Internal to src/quant/.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/float_formats.h"
#include "quant/k_quants.h"
#include "quant/quant_search.h"
#include "util/error.h"

namespace lowbit::kquant {

// Super-blocks per quantize_run call: enough sub-blocks to fill the lanes of the batched searches
// (quant_search.h), few enough that a run's scratch stays on the stack.
inline constexpr int kRunBlocks = 8;

// n <= kRunBlocks consecutive super-blocks of one row (x: n*256 values, importance: null or their n*256
// weights), defined in qX_k.cc; the row drivers below pick them by overload. Each format searches the sub-block
// scales of the whole run at once, then finishes each super-block as ggml does.
void quantize_run(const float* x, BlockQ2K* y, int n, const float* importance);
void quantize_run(const float* x, BlockQ3K* y, int n, const float* importance);
void quantize_run(const float* x, BlockQ4K* y, int n, const float* importance);
void quantize_run(const float* x, BlockQ5K* y, int n, const float* importance);
void quantize_run(const float* x, BlockQ6K* y, int n, const float* importance);
void quantize_run(const float* x, BlockQ8K* y, int n, const float* importance);
// Writes the levels of one super-block into its code fields, keeping the scales (the last step of quantize_block).
void pack_levels(const uint8_t* levels, BlockQ2K& y);
void pack_levels(const uint8_t* levels, BlockQ3K& y);
void pack_levels(const uint8_t* levels, BlockQ4K& y);
void pack_levels(const uint8_t* levels, BlockQ5K& y);
void pack_levels(const uint8_t* levels, BlockQ6K& y);
void dequantize_block(const BlockQ2K& b, float* y);
void dequantize_block(const BlockQ3K& b, float* y);
void dequantize_block(const BlockQ4K& b, float* y);
void dequantize_block(const BlockQ5K& b, float* y);
void dequantize_block(const BlockQ6K& b, float* y);
void dequantize_block(const BlockQ8K& b, float* y);

// Quantizes every super-block of every row; `importance` is advanced to each block's columns (null stays null),
// as ggml indexes quant_weights by position within the row.
template <typename Block>
void quantize_k_rows(const char* type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* importance) {
  check(n_per_row > 0 && n_per_row % kSuperBlock == 0, type, "row length {} is not a positive multiple of {}",
        n_per_row, kSuperBlock);
  check(nrows >= 0, type, "negative row count {}", nrows);
  const int64_t blocks_per_row = n_per_row / kSuperBlock;
  Block* out = static_cast<Block*>(dst);
  for (int64_t row = 0; row < nrows; ++row) {
    const float* x = src + row * n_per_row;
    for (int64_t b = 0; b < blocks_per_row; b += kRunBlocks) {
      const int n = static_cast<int>(std::min<int64_t>(kRunBlocks, blocks_per_row - b));
      quantize_run(x + b * kSuperBlock, out + row * blocks_per_row + b, n,
                   importance ? importance + b * kSuperBlock : nullptr);
    }
  }
}

// Dequantizes n values (a multiple of 256) of consecutive super-blocks.
template <typename Block>
void dequantize_k_rows(const char* type, const void* src, float* dst, int64_t n) {
  check(n >= 0 && n % kSuperBlock == 0, type, "{} values is not a multiple of {}", n, kSuperBlock);
  const Block* in = static_cast<const Block*>(src);
  for (int64_t b = 0; b < n / kSuperBlock; ++b) dequantize_block(in[b], dst + b * kSuperBlock);
}

template <typename Block>
void set_k_levels(const char* type, void* dst, const uint8_t* levels, int64_t n) {
  check(n >= 0 && n % kSuperBlock == 0, type, "{} values is not a multiple of {}", n, kSuperBlock);
  Block* out = static_cast<Block*>(dst);
  for (int64_t b = 0; b < n / kSuperBlock; ++b) pack_levels(levels + b * kSuperBlock, out[b]);
}
// Q2_K and Q3_K store 2-bit fields in 64 bytes: within each half of 128 values, byte l holds values l, l+32,
// l+64 and l+96 in bits 0-1, 2-3, 4-5 and 6-7.
inline void pack_2bit(const uint8_t* levels, uint8_t* qs) {
  for (int half = 0; half < kSuperBlock; half += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[half / 4 + l] = static_cast<uint8_t>(levels[half + l] | (levels[half + l + 32] << 2) |
                                              (levels[half + l + 64] << 4) | (levels[half + l + 96] << 6));
    }
  }
}
// Field (0..3) of value i, the inverse of pack_2bit.
inline int unpack_2bit(const uint8_t* qs, int i) {
  const int half = i / 128, within = i % 128;
  return (qs[half * 32 + within % 32] >> (2 * (within / 32))) & 3;
}

// Q4_K/Q5_K pack eight 6-bit scales and eight 6-bit mins in 12 bytes: sub-blocks 0-3 whole in bytes 0-3 (scale)
// and 4-7 (min); sub-blocks 4-7 keep their low nibbles in bytes 8-11 and their top 2 bits in bits 6-7 of
// bytes 0-7. Caller zeroes nothing: bytes j and j+4 are written for j < 4 before j >= 4 ORs into them.
inline void pack_scale_min_k4(int j, uint8_t scale, uint8_t min, uint8_t* scales) {
  if (j < 4) {
    scales[j] = scale;
    scales[j + 4] = min;
  } else {
    scales[j + 4] = static_cast<uint8_t>((scale & 0xF) | ((min & 0xF) << 4));
    scales[j - 4] |= static_cast<uint8_t>((scale >> 4) << 6);
    scales[j] |= static_cast<uint8_t>((min >> 4) << 6);
  }
}
inline void unpack_scale_min_k4(int j, const uint8_t* scales, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// The largest of n values, or 0 when none is positive (the sub-block scales and negated mins of a super-block).
inline float largest_or_zero(const float* v, int n) {
  float m = 0;
  for (int i = 0; i < n; ++i)
    if (v[i] > m) m = v[i];
  return m;
}

// Re-rounds `len` values against a final sub-block scale d and offset dm: level = round((x + dm)/d) in
// [0, nmax]. A zero d leaves the search's levels, as ggml does.
inline void requantize_with_min(const float* x, int len, float d, float dm, int nmax, uint8_t* levels) {
  if (!d) return;
  for (int i = 0; i < len; ++i) {
    levels[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, nearest_int((x[i] + dm) / d))));
  }
}
// Symmetric variant: level = round(x/d) clamped to [-offset, offset-1], stored + offset.
inline void requantize_symmetric(const float* x, int len, float d, int offset, int8_t* levels) {
  if (!d) return;
  for (int i = 0; i < len; ++i) {
    levels[i] = static_cast<int8_t>(std::max(-offset, std::min(offset - 1, nearest_int(x[i] / d))) + offset);
  }
}

// Sum of x^2 over a super-block, from which ggml's weighted paths derive sigma^2.
inline float super_block_sum_sq(const float* x) {
  float sum = 0;
  for (int j = 0; j < kSuperBlock; ++j) sum += x[j] * x[j];
  return sum;
}
// ggml's importance weighting of a sub-block: importance * sqrt(sigma^2 + x^2). Returns the sum of the weights
// (front to back, as ggml adds them), which weighs the sub-block in the search for the scale codes.
inline float importance_weights(const float* x, const float* importance, float sigma2, int len, float* weights) {
  float sum = 0;
  for (int l = 0; l < len; ++l) {
    weights[l] = importance[l] * std::sqrt(sigma2 + x[l] * x[l]);
    sum += weights[l];
  }
  return sum;
}

// Q4_K and Q5_K share everything up to the level packing: eight sub-blocks of 32 with a (scale, min) search,
// 6-bit scale/min codes, fp16 super-scales, and a final re-rounding. For a run of n super-blocks, fills
// levels[n*256] (0..nmax) and each block's d, dmin and 12 scale bytes. `importance` selects ggml's weighted path
// (qkx3 + make_qp_quants for the codes); rmin/nstep are the reference path's search range, which differs between
// the two formats. Block is BlockQ4K or BlockQ5K.
template <typename Block>
void quantize_scale_min_k4(const float* x, const float* importance, int n, int nmax, float rmin, int nstep,
                           uint8_t* levels, Block* y);

// Dequantization of Q4_K/Q5_K: y = d*scale*level - dmin*min for each sub-block of 32, where `level(i)` gives
// the full level of value i of the super-block.
template <typename LevelFn>
void dequantize_scale_min_k4(uint16_t d16, uint16_t dmin16, const uint8_t* scales, float* y, LevelFn&& level) {
  const float d = f16_to_f32(d16);
  const float dmin = f16_to_f32(dmin16);
  for (int j = 0; j < kSuperBlock / 32; ++j) {
    uint8_t sc, m;
    unpack_scale_min_k4(j, scales, &sc, &m);
    const float dl = d * sc;
    const float ml = dmin * m;
    for (int l = 0; l < 32; ++l) y[32 * j + l] = dl * level(32 * j + l) - ml;
  }
}

}  // namespace lowbit::kquant
