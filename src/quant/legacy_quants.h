// ggml's 32-value block formats ("legacy" quants Q4_0 .. Q8_1) and the non-linear 4-bit IQ4_NL / IQ4_XS.
// Layouts are ggml-common.h's byte for byte (the structs are written to GGUF as they are; fp16 fields are raw
// IEEE half bits), and quantize_* produce the bytes ggml's quantize_<type> produces (llama.cpp c392e50): the
// reference rounding when `importance` is null, ggml's importance-weighted search otherwise.
// One deliberate difference, taken from later ggml: an IQ4_NL block whose importance weights are all zero gets
// scale 0 where c392e50 writes NaN (see iq4_nl.cc). Every other finite input gives c392e50's bytes.
//
// All functions match dtype.h's QuantizeRowsFn / ToFloatFn so they sit directly in the type table.
// quantize_*: `nrows` rows of `n_per_row` floats (a multiple of the block size, else Error) -> consecutive rows of
// blocks; `importance` is null or n_per_row weights used for every row. Inputs must be finite (the caller checks).
// dequantize_*: n values (a multiple of the block size, else Error) from consecutive blocks.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/float_formats.h"

namespace lowbit {

inline constexpr int kLegacyBlock = 32;  // ggml's QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0 = QK8_1 = QK4_NL

// 4.5 bits/weight: x = d * (q - 8), q in 0..15. Low nibbles hold values 0..15, high nibbles 16..31.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kLegacyBlock / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// 5 bits/weight: x = d * q + m, q in 0..15.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kLegacyBlock / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

// 5.5 bits/weight: x = d * (q - 16), q in 0..31; bit 4 of value j is bit j of the little-endian word qh.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kLegacyBlock / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

// 6 bits/weight: x = d * q + m, q in 0..31.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kLegacyBlock / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

// 8.5 bits/weight: x = d * q, q in -127..127.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kLegacyBlock];
};
static_assert(sizeof(BlockQ8_0) == 34);

// Q8_0 plus s = d * sum(q), which ggml's dot products use for the Q4_1/Q5_1 min term.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kLegacyBlock];
};
static_assert(sizeof(BlockQ8_1) == 36);

// 4.5 bits/weight: x = d * kIq4nlValues[q], q in 0..15, nibbles packed as Q4_0.
struct BlockIQ4NL {
  uint16_t d;
  uint8_t qs[kLegacyBlock / 2];
};
static_assert(sizeof(BlockIQ4NL) == 18);

// 4.25 bits/weight: 256 values in 8 sub-blocks of 32, each with a 6-bit scale (biased by 32; low 4 bits in
// scales_l, high 2 bits in scales_h): x = d * (scale - 32) * kIq4nlValues[q].
struct BlockIQ4XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[4];
  uint8_t qs[128];
};
static_assert(sizeof(BlockIQ4XS) == 136);

// ggml's kvalues_iq4nl: the 16 non-linear levels of IQ4_NL / IQ4_XS, denser near zero.
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

void quantize_q4_0(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);
void quantize_q4_1(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);
void quantize_q5_0(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);
void quantize_q5_1(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);
// ggml ignores importance for Q8_0 and has no weighted Q8_1: both always round to nearest.
void quantize_q8_0(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);
void quantize_q8_1(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);
void quantize_iq4_nl(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);
void quantize_iq4_xs(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance);

void dequantize_q4_0(const void* src, float* dst, int64_t n);
void dequantize_q4_1(const void* src, float* dst, int64_t n);
void dequantize_q5_0(const void* src, float* dst, int64_t n);
void dequantize_q5_1(const void* src, float* dst, int64_t n);
void dequantize_q8_0(const void* src, float* dst, int64_t n);
void dequantize_q8_1(const void* src, float* dst, int64_t n);
void dequantize_iq4_nl(const void* src, float* dst, int64_t n);
void dequantize_iq4_xs(const void* src, float* dst, int64_t n);

// The table's SetLevelsFn for each type (dtype.h): levels 0..15 (Q4_0, Q4_1, IQ4_NL, IQ4_XS: table index),
// 0..31 (Q5_0, Q5_1), 0..255 (Q8_0: stored as level - 128).
void set_levels_q4_0(void* blocks, const uint8_t* levels, int64_t n);
void set_levels_q4_1(void* blocks, const uint8_t* levels, int64_t n);
void set_levels_q5_0(void* blocks, const uint8_t* levels, int64_t n);
void set_levels_q5_1(void* blocks, const uint8_t* levels, int64_t n);
void set_levels_q8_0(void* blocks, const uint8_t* levels, int64_t n);
void set_levels_iq4_nl(void* blocks, const uint8_t* levels, int64_t n);
void set_levels_iq4_xs(void* blocks, const uint8_t* levels, int64_t n);

namespace legacy {

// Shared plumbing for the files above (not part of the public surface).

// Throws Error unless n is a multiple of block (names the type in the message).
void check_multiple(int64_t n, int64_t block, const char* type_name);

// The mean square of a whole row: ggml's sigma2 for the legacy weighted searches.
float row_mean_square(const float* row, int64_t n_per_row);
// ggml's weights for one block of the weighted searches: importance[j] * sqrt(sigma2 + x[j]^2), j < n.
void block_weights(const float* x, const float* importance, float sigma2, int n, float* weight);

// Packs 32 levels (each < 16) two to a byte: value j in the low nibble, value j+16 in the high one.
void pack_nibbles(const uint8_t* levels, uint8_t* qs);
void unpack_nibbles(const uint8_t* qs, uint8_t* levels);
// As pack_nibbles for 5-bit levels: bit 4 of value j goes to bit j of the little-endian word qh.
void pack_5bit(const uint8_t* levels, uint8_t* qs, uint8_t* qh);
void unpack_5bit(const uint8_t* qs, const uint8_t* qh, uint8_t* levels);

// Symmetric blocks (Q4_0 nmax 8, Q5_0 nmax 16): levels in [0, 2*nmax), x ~ d * (level - nmax). Return d.
// Plain: the value of largest magnitude maps to level 0, the rest round half up. Weighted: make_qx_quants.
float symmetric_plain(const float* x, int nmax, uint8_t* levels);
// Weighted, for n consecutive blocks (x and importance n*32 values, levels n*32, d[n]).
void symmetric_weighted(const float* x, const float* importance, float sigma2, int n, int nmax, uint8_t* levels,
                        float* d);
void decode_symmetric(const uint8_t* levels, int nmax, float d, float* out);

// Asymmetric blocks (Q4_1 nmax 15, Q5_1 nmax 31): levels in [0, nmax], x ~ d * level + m.
// Plain: [min, max] split into nmax equal steps. Weighted: make_qkx3_quants.
struct ScaleAndMin {
  float d;
  float m;
};
ScaleAndMin affine_plain(const float* x, int nmax, uint8_t* levels);

// The plain roundings of n_blocks consecutive blocks (levels n_blocks*32, one scale per block), in SIMD registers
// (legacy_plain_batch.cc); bit-identical to the one-block functions above, which are their reference.
void symmetric_plain_batch(const float* x, int64_t n_blocks, int nmax, uint8_t* levels, float* d);
void affine_plain_batch(const float* x, int64_t n_blocks, int nmax, uint8_t* levels, ScaleAndMin* out);
// Q8_0's rounding of one block (q8_0.cc): d = max|x| / 127 (returned), q = round(x / d), halves away from zero.
float q8_round_block(const float* x, int8_t* qs);
void q8_0_plain_batch(const float* x, int64_t n_blocks, int8_t* qs, float* d);
// Weighted, for n consecutive blocks (as symmetric_weighted).
void affine_weighted(const float* x, const float* importance, float sigma2, int n, int nmax, uint8_t* levels,
                     ScaleAndMin* out);
void decode_affine(const uint8_t* levels, float d, float m, float* out);

// Index of the kIq4nlValues entry nearest to x; a tie goes to the larger value (ggml's best_index_int8).
int iq4nl_nearest_level(float x);
// levels[j] = iq4nl_nearest_level(inverse_scale * x[j]) for j < n, in SIMD (quant_search_batch.cc).
void iq4nl_levels(const float* x, int64_t n, float inverse_scale, uint8_t* levels);

// IQ4_NL/IQ4_XS: the best scale of each of n_blocks blocks of 32 (x and weights block after block; null weights
// mean x^2), ggml's 15-scale search. Batched in SIMD lanes (quant_search_batch.cc); bit-identical to one block
// at a time.
void iq4nl_block_scales(int64_t n_blocks, const float* x, const float* weights, float* scales);
// The same search for one block (weights required), the scalar reference of the batched one.
float iq4nl_block_scale(const float* x, const float* weights);

// Blocks per run (a row is quantized run by run): enough to fill the lanes of the batched searches
// (quant_search.h), few enough for the run's scratch to stay on the stack.
inline constexpr int kRunBlocks = 64;

// The row loop every type shares, over runs of up to kRunBlocks consecutive blocks: `PlainRun` quantizes a run
// without importance; `WeightedRun` gets the run's importance slice and the row's mean square (blocks of one row
// share it, as in ggml).
template <typename Block, int kElems, void (*PlainRun)(const float*, int, Block*),
          void (*WeightedRun)(const float*, const float*, float, int, Block*)>
void quantize_blocks(const char* type_name, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* importance) {
  check_multiple(n_per_row, kElems, type_name);
  Block* out = static_cast<Block*>(dst);
  const int64_t blocks_per_row = n_per_row / kElems;
  for (int64_t r = 0; r < nrows; ++r) {
    const float* row = src + r * n_per_row;
    const float sigma2 = importance ? row_mean_square(row, n_per_row) : 0.f;
    for (int64_t b = 0; b < blocks_per_row; b += kRunBlocks) {
      const int n = static_cast<int>(std::min<int64_t>(kRunBlocks, blocks_per_row - b));
      if (importance == nullptr) {
        PlainRun(row + b * kElems, n, out);
      } else {
        WeightedRun(row + b * kElems, importance + b * kElems, sigma2, n, out);
      }
      out += n;
    }
  }
}

template <typename Block, int kElems, void (*Decode)(const Block&, float*)>
void dequantize_blocks(const char* type_name, const void* src, float* dst, int64_t n) {
  check_multiple(n, kElems, type_name);
  const Block* in = static_cast<const Block*>(src);
  for (int64_t b = 0; b < n / kElems; ++b) Decode(in[b], dst + b * kElems);
}

// Writes the levels of n values (a multiple of kElems) into consecutive blocks with Pack, keeping the scales.
template <typename Block, int kElems, void (*Pack)(const uint8_t*, Block&)>
void set_levels_blocks(const char* type_name, void* dst, const uint8_t* levels, int64_t n) {
  check_multiple(n, kElems, type_name);
  Block* out = static_cast<Block*>(dst);
  for (int64_t b = 0; b < n / kElems; ++b) Pack(levels + b * kElems, out[b]);
}

// 4-bit blocks keep all bits in qs; 5-bit blocks (those with a qh field) put bit 4 in qh.
template <typename Block>
void pack_levels(const uint8_t* levels, Block& y) {
  if constexpr (requires { y.qh; }) {
    pack_5bit(levels, y.qs, y.qh);
  } else {
    pack_nibbles(levels, y.qs);
  }
}
template <typename Block>
void unpack_levels(const Block& b, uint8_t* levels) {
  if constexpr (requires { b.qh; }) {
    unpack_5bit(b.qs, b.qh, levels);
  } else {
    unpack_nibbles(b.qs, levels);
  }
}

// Q4_0 / Q5_0: one fp16 scale d per block.
template <typename Block, int kNmax>
struct SymmetricCodec {
  static void plain(const float* x, int n, Block* y) {
    uint8_t levels[kRunBlocks * kLegacyBlock];
    float d[kRunBlocks];
    symmetric_plain_batch(x, n, kNmax, levels, d);
    for (int b = 0; b < n; ++b) {
      y[b].d = f32_to_f16(d[b]);
      pack_levels(levels + kLegacyBlock * b, y[b]);
    }
  }
  static void weighted(const float* x, const float* importance, float sigma2, int n, Block* y) {
    uint8_t levels[kRunBlocks * kLegacyBlock];
    float d[kRunBlocks];
    symmetric_weighted(x, importance, sigma2, n, kNmax, levels, d);
    for (int b = 0; b < n; ++b) {
      y[b].d = f32_to_f16(d[b]);
      pack_levels(levels + kLegacyBlock * b, y[b]);
    }
  }
  static void decode(const Block& b, float* out) {
    uint8_t levels[kLegacyBlock];
    unpack_levels(b, levels);
    decode_symmetric(levels, kNmax, f16_to_f32(b.d), out);
  }
};

// Q4_1 / Q5_1: fp16 scale d and offset m per block.
template <typename Block, int kNmax>
struct AffineCodec {
  static void store(const ScaleAndMin& s, const uint8_t* levels, Block& y) {
    y.d = f32_to_f16(s.d);
    y.m = f32_to_f16(s.m);
    pack_levels(levels, y);
  }
  static void plain(const float* x, int n, Block* y) {
    uint8_t levels[kRunBlocks * kLegacyBlock];
    ScaleAndMin s[kRunBlocks];
    affine_plain_batch(x, n, kNmax, levels, s);
    for (int b = 0; b < n; ++b) store(s[b], levels + kLegacyBlock * b, y[b]);
  }
  static void weighted(const float* x, const float* importance, float sigma2, int n, Block* y) {
    uint8_t levels[kRunBlocks * kLegacyBlock];
    ScaleAndMin s[kRunBlocks];
    affine_weighted(x, importance, sigma2, n, kNmax, levels, s);
    for (int b = 0; b < n; ++b) store(s[b], levels + kLegacyBlock * b, y[b]);
  }
  static void decode(const Block& b, float* out) {
    uint8_t levels[kLegacyBlock];
    unpack_levels(b, levels);
    decode_affine(levels, f16_to_f32(b.d), f16_to_f32(b.m), out);
  }
};

// The table's two entry points for a codec with plain / weighted / decode.
template <typename Block, typename Codec>
struct BlockType {
  static void quantize(const char* name, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                       const float* importance) {
    quantize_blocks<Block, kLegacyBlock, Codec::plain, Codec::weighted>(name, src, dst, nrows, n_per_row, importance);
  }
  static void dequantize(const char* name, const void* src, float* dst, int64_t n) {
    dequantize_blocks<Block, kLegacyBlock, Codec::decode>(name, src, dst, n);
  }
  static void set_levels(const char* name, void* dst, const uint8_t* levels, int64_t n) {
    set_levels_blocks<Block, kLegacyBlock, pack_levels<Block>>(name, dst, levels, n);
  }
};

}  // namespace legacy
}  // namespace lowbit
