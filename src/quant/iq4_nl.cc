// IQ4_NL and IQ4_XS: 4-bit indices into the fixed non-linear table kIq4nlValues, scaled per block of 32.
// IQ4_NL stores one fp16 scale per block; IQ4_XS groups 8 blocks into a super-block with one fp16 scale and
// 6-bit block scales. Both use ggml's search (quantize_row_iq4_nl_impl): per block, try 15 inverse scales
// around the one that maps the largest value to the table's end and keep the best weighted least-squares fit.
// Without importance the weights are x^2.
#include <algorithm>
#include <cmath>

#include "core/float_formats.h"
#include "quant/legacy_quants.h"
#include "quant/quant_search.h"

namespace lowbit {
namespace {

constexpr int kSubBlock = 32;
constexpr int kXsSuperBlock = 256;  // ggml's QK_K
constexpr int kScaleTries = 7;      // ggml's ntry: inverse scales (values[0] + t) / max for t in -7..7

inline int nearest_level(float x) {
  // ggml binary-searches the bracketing pair (best_index_int8); counting the table values <= x finds the same
  // pair without branches, which the 15-scale search calls 500 times per block. Then the same tie rule on the
  // same float differences: a tie goes to the larger value. Only a NaN x gives a different (meaningless) index.
  const int8_t* v = kIq4nlValues;
  int below = 0;
  for (int k = 1; k < 15; ++k) below += x >= static_cast<float>(v[k]) ? 1 : 0;
  return x - static_cast<float>(v[below]) < static_cast<float>(v[below + 1]) - x ? below : below + 1;
}

// Weighted sums of one block for the inverse scale id: sum w*q*x and sum w*q*q over the nearest table values.
struct Fit {
  float sum_qx = 0;
  float sum_q2 = 0;
};
Fit fit_block(const float* x, const float* weight, float id) {
  // Levels first (independent, so the compiler can vectorize), then the sums in ggml's order.
  float q_of[kSubBlock];
  for (int j = 0; j < kSubBlock; ++j) q_of[j] = kIq4nlValues[nearest_level(id * x[j])];
  Fit f;
  for (int j = 0; j < kSubBlock; ++j) {
    const float q = q_of[j];
    const float w = weight[j];
    f.sum_qx += w * q * x[j];
    f.sum_q2 += w * q * q;
  }
  return f;
}

}  // namespace

// The scalar search, one block at a time (the batched iq4nl_block_scales must agree with it bit for bit).
float legacy::iq4nl_block_scale(const float* x, const float* weight) {
  float amax = 0;
  float max = 0;
  for (int j = 0; j < kSubBlock; ++j) {
    const float ax = std::fabs(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  if (amax < kGroupMaxEps) return 0;
  const float first = kIq4nlValues[0];
  // Start from the scale that sends the largest value to the table's most negative end.
  float d = -max / first;
  const Fit start = fit_block(x, weight, 1 / d);
  // Every weight zero (an importance range of unused columns): c392e50 divides 0 by 0 here and IQ4_NL then stores
  // a NaN scale; later ggml returns 0 (the block dequantizes to zeros), and so does lowbit. IQ4_XS bytes agree
  // either way (a NaN block scale rounds to code 0 there too).
  d = start.sum_q2 > 0 ? start.sum_qx / start.sum_q2 : 0.f;
  float best = d * start.sum_qx;
  for (int t = -kScaleTries; t <= kScaleTries; ++t) {
    const float id = static_cast<float>(t + kIq4nlValues[0]) / max;
    const Fit f = fit_block(x, weight, id);
    // Compare fits without dividing: sum_qx^2 / sum_q2 is the error reduction of the best d for these levels.
    if (f.sum_q2 > 0 && f.sum_qx * f.sum_qx > best * f.sum_q2) {
      d = f.sum_qx / f.sum_q2;
      best = d * f.sum_qx;
    }
  }
  return d;
}

namespace {

void assign_levels(const float* x, int n, float inverse_scale, uint8_t* levels) {
  legacy::iq4nl_levels(x, n, inverse_scale, levels);
}

// Values per batched search: whole super-blocks of either format, enough blocks to fill the SIMD lanes.
constexpr int64_t kRunValues = 8 * kXsSuperBlock;

// The best scale of each block of 32 in x[0..n): n is a multiple of `span` (32 for IQ4_NL, 256 for IQ4_XS),
// over which ggml takes sigma^2 for the importance weights, and at most kRunValues.
void search_scales(const float* x, const float* importance, int64_t n, int span, float* scales) {
  float weights[kRunValues];
  if (importance != nullptr) {
    for (int64_t s = 0; s < n; s += span) {
      float sum_x2 = 0;
      for (int j = 0; j < span; ++j) sum_x2 += x[s + j] * x[s + j];
      const float sigma2 = sum_x2 * (2.f / static_cast<float>(span));
      legacy::block_weights(x + s, importance + s, sigma2, span, weights + s);
    }
  }
  // Without importance the weights are x^2, which the batched search forms itself.
  legacy::iq4nl_block_scales(n / kSubBlock, x, importance ? weights : nullptr, scales);
}

// Rows of IQ4_NL or IQ4_XS: block scales searched kRunValues at a time, then each super-block of `kSpan` values
// finished by Finish(x, its block scales, its output block).
template <typename Block, int kSpan, void (*Finish)(const float*, const float*, Block&)>
void quantize_rows(const char* type_name, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                   const float* importance) {
  legacy::check_multiple(n_per_row, kSpan, type_name);
  Block* out = static_cast<Block*>(dst);
  float scales[kRunValues / kSubBlock];
  for (int64_t r = 0; r < nrows; ++r) {
    const float* row = src + r * n_per_row;
    for (int64_t c0 = 0; c0 < n_per_row; c0 += kRunValues) {
      const int64_t len = std::min(kRunValues, n_per_row - c0);
      search_scales(row + c0, importance ? importance + c0 : nullptr, len, kSpan, scales);
      for (int64_t s = 0; s < len; s += kSpan) Finish(row + c0 + s, scales + s / kSubBlock, *out++);
    }
  }
}

void pack_levels(const uint8_t* levels, int n, uint8_t* qs) {
  for (int i = 0; i < n / kSubBlock; ++i) legacy::pack_nibbles(levels + kSubBlock * i, qs + kSubBlock / 2 * i);
}

void finish_nl_block(const float* x, const float* scales, BlockIQ4NL& y) {
  const float scale = scales[0];
  uint8_t levels[kSubBlock];
  y.d = f32_to_f16(scale);
  // Levels for the chosen (unrounded) scale; the search only compared fits.
  assign_levels(x, kSubBlock, scale != 0 ? 1 / scale : 0, levels);
  pack_levels(levels, kSubBlock, y.qs);
}

void finish_xs_block(const float* x, const float* scales, BlockIQ4XS& y) {
  constexpr int kBlocks = kXsSuperBlock / kSubBlock;
  uint8_t levels[kXsSuperBlock];
  float max_scale = 0;
  float amax_scale = 0;
  for (int ib = 0; ib < kBlocks; ++ib) {
    if (std::fabs(scales[ib]) > amax_scale) {
      amax_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  // The largest block scale maps to -32 so the 6-bit codes use their full signed range.
  const float d = -max_scale / 32;
  y.d = f32_to_f16(d);
  const float id = d != 0 ? 1 / d : 0.f;
  y.scales_h = 0;
  for (int ib = 0; ib < kBlocks; ++ib) {
    int l = nearest_int(id * scales[ib]);
    l = std::max(-32, std::min(31, l));
    const float dl = d * static_cast<float>(l);
    assign_levels(x + ib * kSubBlock, kSubBlock, dl != 0 ? 1 / dl : 0.f, levels + ib * kSubBlock);
    const unsigned code = static_cast<unsigned>(l + 32);
    if (ib % 2 == 0) {
      y.scales_l[ib / 2] = static_cast<uint8_t>(code & 0xF);
    } else {
      y.scales_l[ib / 2] |= static_cast<uint8_t>((code & 0xF) << 4);
    }
    y.scales_h |= static_cast<uint16_t>((code >> 4) << (2 * ib));
  }
  pack_levels(levels, kXsSuperBlock, y.qs);
}

// 16 packed bytes -> 32 values scaled by d.
void decode_sub_block(const uint8_t* qs, float d, float* out) {
  for (int j = 0; j < kSubBlock / 2; ++j) {
    out[j] = d * static_cast<float>(kIq4nlValues[qs[j] & 0x0F]);
    out[j + kSubBlock / 2] = d * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
  }
}

void decode_nl(const BlockIQ4NL& b, float* out) { decode_sub_block(b.qs, f16_to_f32(b.d), out); }

void decode_xs(const BlockIQ4XS& b, float* out) {
  const float d = f16_to_f32(b.d);
  for (int ib = 0; ib < kXsSuperBlock / kSubBlock; ++ib) {
    const int low = (b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF;
    const int high = (b.scales_h >> (2 * ib)) & 3;
    const float dl = d * static_cast<float>((low | (high << 4)) - 32);
    decode_sub_block(b.qs + ib * (kSubBlock / 2), dl, out + ib * kSubBlock);
  }
}

void set_nl_levels(const uint8_t* levels, BlockIQ4NL& y) { pack_levels(levels, kSubBlock, y.qs); }
void set_xs_levels(const uint8_t* levels, BlockIQ4XS& y) { pack_levels(levels, kXsSuperBlock, y.qs); }

}  // namespace

void set_levels_iq4_nl(void* blocks, const uint8_t* levels, int64_t n) {
  legacy::set_levels_blocks<BlockIQ4NL, kSubBlock, set_nl_levels>("iq4_nl", blocks, levels, n);
}
void set_levels_iq4_xs(void* blocks, const uint8_t* levels, int64_t n) {
  legacy::set_levels_blocks<BlockIQ4XS, kXsSuperBlock, set_xs_levels>("iq4_xs", blocks, levels, n);
}

int legacy::iq4nl_nearest_level(float x) { return nearest_level(x); }

void quantize_iq4_nl(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance) {
  quantize_rows<BlockIQ4NL, kSubBlock, finish_nl_block>("iq4_nl", src, dst, nrows, n_per_row, importance);
}

void quantize_iq4_xs(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance) {
  quantize_rows<BlockIQ4XS, kXsSuperBlock, finish_xs_block>("iq4_xs", src, dst, nrows, n_per_row, importance);
}

void dequantize_iq4_nl(const void* src, float* dst, int64_t n) {
  legacy::dequantize_blocks<BlockIQ4NL, kSubBlock, decode_nl>("iq4_nl", src, dst, n);
}

void dequantize_iq4_xs(const void* src, float* dst, int64_t n) {
  legacy::dequantize_blocks<BlockIQ4XS, kXsSuperBlock, decode_xs>("iq4_xs", src, dst, n);
}

}  // namespace lowbit
