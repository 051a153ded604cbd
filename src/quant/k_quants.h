// ggml's K-quant formats: super-blocks of 256 values split into sub-blocks of 16 or 32 with their own small
// integer scales, and one or two fp16 super-block scales. Layouts are ggml-common.h's byte for byte (the structs
// are written to GGUF as they are), and quantize_* produce the bytes ggml's quantize_qX_K produces:
// the reference search when `importance` is null, the importance-weighted search (ggml's *_impl) otherwise.
//
// All functions match dtype.h's QuantizeRowsFn / ToFloatFn so they sit directly in the type table.
// quantize_*: `nrows` rows of `n_per_row` floats (a multiple of 256, else Error) -> consecutive rows of blocks;
// `importance` is null or n_per_row weights used for every row. Inputs must be finite (the caller checks).
// dequantize_*: n values (a multiple of 256, else Error) from consecutive blocks.
#pragma once

#include <cstdint>

namespace lowbit {

inline constexpr int kSuperBlock = 256;  // ggml's QK_K

// 2.625 bits/weight: 16 sub-blocks of 16, 4-bit scale and 4-bit min each, 2-bit levels.
struct BlockQ2K {
  uint8_t scales[kSuperBlock / 16];  // low nibble scale, high nibble min
  uint8_t qs[kSuperBlock / 4];       // 2-bit levels
  uint16_t d;                        // fp16 super-scale of the scales
  uint16_t dmin;                     // fp16 super-scale of the mins
};
static_assert(sizeof(BlockQ2K) == 84);

// 3.4375 bits/weight: 16 sub-blocks of 16 with signed 6-bit scales, levels -4..3 (low 2 bits + a high-bit mask).
struct BlockQ3K {
  uint8_t hmask[kSuperBlock / 8];  // bit 2 of each level
  uint8_t qs[kSuperBlock / 4];     // bits 0-1 of each level
  uint8_t scales[12];              // 16 six-bit scales, biased by 32
  uint16_t d;                      // fp16 super-scale
};
static_assert(sizeof(BlockQ3K) == 110);

// 4.5 bits/weight: 8 sub-blocks of 32 with 6-bit scale and 6-bit min, 4-bit levels.
struct BlockQ4K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];  // 8 six-bit scales and 8 six-bit mins, packed (see pack_scale_min_k4)
  uint8_t qs[kSuperBlock / 2];
};
static_assert(sizeof(BlockQ4K) == 144);

// 5.5 bits/weight: as Q4_K plus a fifth bit per level.
struct BlockQ5K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kSuperBlock / 8];  // bit 4 of each level
  uint8_t qs[kSuperBlock / 2];  // bits 0-3
};
static_assert(sizeof(BlockQ5K) == 176);

// 6.5625 bits/weight: 16 sub-blocks of 16 with signed 8-bit scales, levels -32..31.
struct BlockQ6K {
  uint8_t ql[kSuperBlock / 2];  // bits 0-3
  uint8_t qh[kSuperBlock / 4];  // bits 4-5
  int8_t scales[kSuperBlock / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6K) == 210);

// ggml's intermediate format for activations in K-quant dot products: a float scale, 8-bit levels, and the sums
// of each group of 16 levels.
struct BlockQ8K {
  float d;
  int8_t qs[kSuperBlock];
  int16_t bsums[kSuperBlock / 16];
};
static_assert(sizeof(BlockQ8K) == 292);

void quantize_q2_K(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);
void quantize_q3_K(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);
void quantize_q4_K(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);
void quantize_q5_K(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);
void quantize_q6_K(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);
// ggml has no weighted Q8_K search: `importance` is ignored.
void quantize_q8_K(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);

void dequantize_q2_K(const void* src, float* dst, int64_t n);
void dequantize_q3_K(const void* src, float* dst, int64_t n);
void dequantize_q4_K(const void* src, float* dst, int64_t n);
// SetLevelsFn (dtype.h): levels 0..3 (Q2_K), 0..7 (Q3_K: value d*sc*(level-4)), 0..15, 0..31, 0..63 (Q6_K).
void set_levels_q2_K(void* blocks, const uint8_t* levels, int64_t n);
void set_levels_q3_K(void* blocks, const uint8_t* levels, int64_t n);
void set_levels_q4_K(void* blocks, const uint8_t* levels, int64_t n);
void set_levels_q5_K(void* blocks, const uint8_t* levels, int64_t n);
void set_levels_q6_K(void* blocks, const uint8_t* levels, int64_t n);
void dequantize_q5_K(const void* src, float* dst, int64_t n);
void dequantize_q6_K(const void* src, float* dst, int64_t n);
void dequantize_q8_K(const void* src, float* dst, int64_t n);

}  // namespace lowbit
