#include "ops/dot_reference.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "core/float_formats.h"
#include "ops/activation_quant.h"
#include "ops/matmul.h"
#include "ops/packed_weight.h"
#include "quant/int_groups.h"
#include "quant/k_quant_common.h"
#include "quant/legacy_quants.h"
#include "util/cpu_features.h"
#include "util/parallel.h"

namespace lowbit {
namespace {

// ---- the two pieces every type shares ----

// Eight int32 lanes of one block: lane l sums, over the block's 32-value groups, the products of values 4l..4l+3
// times the group's scale for that half (lanes 0-3 take the first 16 values' scale, 4-7 the second's).
struct IntLanes {
  int32_t l[8] = {};
  void add_group(const int8_t* q, const int8_t* a, int32_t scale_lo, int32_t scale_hi) {
    for (int lane = 0; lane < 8; ++lane) {
      int32_t s = 0;
      for (int k = 0; k < 4; ++k) s += static_cast<int32_t>(q[4 * lane + k]) * a[4 * lane + k];
      l[lane] += s * (lane < 4 ? scale_lo : scale_hi);
    }
  }
};

// Eight float lanes: one fused multiply-add per block, summed pairwise at the end as ggml's hsum_float_8.
struct FloatLanes {
  float v[8] = {};
  void fma(float d, const IntLanes& s) {
    for (int lane = 0; lane < 8; ++lane) v[lane] = std::fma(d, static_cast<float>(s.l[lane]), v[lane]);
  }
  void add(const FloatLanes& o) {
    for (int lane = 0; lane < 8; ++lane) v[lane] += o.v[lane];
  }
  float sum() const { return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7])); }
};

inline float h(uint16_t v) { return f16_to_f32(v); }

// The float order of the K-quants llama.cpp repacks (Q4_K, Q2_K): per super-block the exact integer sums of the
// values and of the mins each meet their scale times the activations' d in one FMA into their own float, and the
// mins' float is subtracted at the end.
struct ValuesMinusMins {
  float values = 0, mins = 0;
  void add(int32_t value_sum, int32_t min_sum, float d, float dmin, float da) {
    values = std::fma(static_cast<float>(value_sum), d * da, values);
    mins = std::fma(static_cast<float>(min_sum), dmin * da, mins);
  }
  float result() const { return values - mins; }
};

// ---- 32-value blocks ----

// Signed values of a legacy block: Q4_0 level - 8, Q5_0 level - 16, Q8_0 as stored, IQ4_NL table value; and of
// GPTQ/AWQ integer groups, level - zero.
template <typename Block>
void signed_values(const Block& b, int8_t* q) {
  if constexpr (std::is_same_v<Block, BlockQ8_0>) {
    for (int j = 0; j < 32; ++j) q[j] = b.qs[j];
  } else if constexpr (std::is_same_v<Block, BlockI4G>) {
    for (int j = 0; j < 16; ++j) {
      q[j] = static_cast<int8_t>((b.qs[j] & 0xF) - b.z);
      q[j + 16] = static_cast<int8_t>((b.qs[j] >> 4) - b.z);
    }
  } else {
    uint8_t levels[32];
    legacy::unpack_levels(b, levels);
    for (int j = 0; j < 32; ++j) {
      if constexpr (std::is_same_v<Block, BlockIQ4NL>) q[j] = kIq4nlValues[levels[j]];
      else if constexpr (std::is_same_v<Block, BlockQ4_0>) q[j] = static_cast<int8_t>(levels[j] - 8);
      else q[j] = static_cast<int8_t>(levels[j] - 16);
    }
  }
}

// A block's exact integer dot product.
int32_t block_int_sum(const int8_t* q, const int8_t* a) {
  int32_t s = 0;
  for (int j = 0; j < 32; ++j) s += static_cast<int32_t>(q[j]) * a[j];
  return s;
}

// Q4_0 and IQ4_NL as llama.cpp's x86 backend sums them: it repacks their weights in tiles of eight rows
// (ggml_gemv/gemm_q4_0_8x8_q8_0 and iq4_nl_8x8_q8_0, one gemv with a different table), one row per float lane, so
// each block's integer sum meets the scales in one FMA into a single float: sum = fma(s_b, d_w * d_a, sum), block
// by block. The other 32-value types take its vec_dot (below), which it does not repack on x86; on a CPU with AMX,
// Q8_0 takes this order too (its AMX backend's acc_C: the tile's sums converted, times d_w * d_a, one FMA). So do the
// GPTQ/AWQ int4 groups (I4G), lowbit's own engine type with no llama.cpp order to keep: the fastest of the orders.
template <typename Block>
float dot_whole_blocks(const void* w_row, const void* act_row, int64_t n) {
  const auto* w = static_cast<const Block*>(w_row);
  const auto* a = static_cast<const BlockQ8_0*>(act_row);
  float sum = 0;
  int8_t q[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    signed_values(w[b], q);
    sum = std::fma(static_cast<float>(block_int_sum(q, a[b].qs)), h(w[b].d) * h(a[b].d), sum);
  }
  return sum;
}

// Q5_0, Q8_0 against Q8_0: one chain of blocks in eight lanes (ggml's vec_dot).
template <typename Block>
float dot_symmetric(const void* w_row, const void* act_row, int64_t n) {
  const auto* w = static_cast<const Block*>(w_row);
  const auto* a = static_cast<const BlockQ8_0*>(act_row);
  FloatLanes acc;
  int8_t q[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    signed_values(w[b], q);
    IntLanes s;
    s.add_group(q, a[b].qs, 1, 1);
    acc.fma(h(w[b].d) * h(a[b].d), s);
  }
  return acc.sum();
}

// Q4_1, Q5_1 against Q8_1: levels 0..nmax times the activations, plus the block offsets m * s summed apart.
template <typename Block>
float dot_affine(const void* w_row, const void* act_row, int64_t n) {
  const auto* w = static_cast<const Block*>(w_row);
  const auto* a = static_cast<const BlockQ8_1*>(act_row);
  FloatLanes acc;
  float offsets = 0;
  uint8_t levels[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    legacy::unpack_levels(w[b], levels);
    offsets = std::fma(h(w[b].m), h(a[b].s), offsets);
    IntLanes s;
    s.add_group(reinterpret_cast<const int8_t*>(levels), a[b].qs, 1, 1);
    acc.fma(h(w[b].d) * h(a[b].d), s);
  }
  return acc.sum() + offsets;
}

// Q4_1 in llama.cpp's AMX order (its acc_C and VNNI kernel for q4_1): each block's levels (0..15) times the
// activations, exact, times d_w * d_a in one FMA, then m_w * s_a in a second, into one float.
float dot_q4_1_whole_blocks(const void* w_row, const void* act_row, int64_t n) {
  const auto* w = static_cast<const BlockQ4_1*>(w_row);
  const auto* a = static_cast<const BlockQ8_1*>(act_row);
  float sum = 0;
  uint8_t levels[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    legacy::unpack_levels(w[b], levels);
    const int32_t s = block_int_sum(reinterpret_cast<const int8_t*>(levels), a[b].qs);
    sum = std::fma(static_cast<float>(s), h(w[b].d) * h(a[b].d), sum);
    sum = std::fma(h(w[b].m), h(a[b].s), sum);
  }
  return sum;
}

// ---- 256-value super-blocks against Q8_K ----

// Q4_K / Q5_K levels (0..15 / 0..31) of one super-block.
template <typename Block>
void k4_levels(const Block& w, int8_t* q) {
  for (int pair = 0; pair < 4; ++pair)
    for (int l = 0; l < 32; ++l) {
      const uint8_t byte = w.qs[pair * 32 + l];
      int lo = byte & 0xF, hi = byte >> 4;
      if constexpr (std::is_same_v<Block, BlockQ5K>) {
        lo |= ((w.qh[l] >> (2 * pair)) & 1) << 4;
        hi |= ((w.qh[l] >> (2 * pair + 1)) & 1) << 4;
      }
      q[pair * 64 + l] = static_cast<int8_t>(lo);
      q[pair * 64 + 32 + l] = static_cast<int8_t>(hi);
    }
}

// Q4_K / Q5_K: eight 32-value sub-blocks with 6-bit scales and mins; the mins meet the activations' sub-block
// sums S_j = bsums[2j] + bsums[2j+1].
//
// Q4_K as llama.cpp's x86 backend sums it: it repacks Q4_K weights in tiles of eight rows
// (ggml_gemv/gemm_q4_K_8x8_q8_K), one row per float lane, with the exact integer sums sum_j sc_j (q_j . a_j) and
// sum_j m_j S_j (ValuesMinusMins).
float dot_q4_k(const void* w_row, const void* act_row, int64_t n) {
  const auto* a = static_cast<const BlockQ8K*>(act_row);
  const auto* w = static_cast<const BlockQ4K*>(w_row);
  ValuesMinusMins sum;
  int8_t q[256];
  for (int64_t b = 0; b < n / 256; ++b) {
    k4_levels(w[b], q);
    int32_t values = 0, offsets = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      kquant::unpack_scale_min_k4(j, w[b].scales, &sc, &m);
      values += sc * block_int_sum(q + 32 * j, a[b].qs + 32 * j);
      offsets += m * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
    }
    sum.add(values, offsets, h(w[b].d), h(w[b].dmin), a[b].d);
  }
  return sum.result();
}

// Q5_K, which llama.cpp does not repack on x86, in its vec_dot order: the values in eight lanes, and the integer
// total of each super-block's mins added to one float.
float dot_q5_k(const void* w_row, const void* act_row, int64_t n) {
  const auto* a = static_cast<const BlockQ8K*>(act_row);
  const auto* w = static_cast<const BlockQ5K*>(w_row);
  FloatLanes acc;
  float mins = 0;
  int8_t q[256];
  for (int64_t b = 0; b < n / 256; ++b) {
    k4_levels(w[b], q);
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) kquant::unpack_scale_min_k4(j, w[b].scales, &sc[j], &m[j]);
    IntLanes s;
    for (int j = 0; j < 8; ++j) s.add_group(q + 32 * j, a[b].qs + 32 * j, sc[j], sc[j]);
    int32_t prod[4];
    for (int i = 0; i < 4; ++i) {
      const int32_t s0 = a[b].bsums[4 * i] + a[b].bsums[4 * i + 1], s1 = a[b].bsums[4 * i + 2] + a[b].bsums[4 * i + 3];
      prod[i] = m[2 * i] * s0 + m[2 * i + 1] * s1;
    }
    mins = std::fma(-a[b].d * h(w[b].dmin), static_cast<float>((prod[0] + prod[1]) + (prod[2] + prod[3])), mins);
    acc.fma(a[b].d * h(w[b].d), s);
  }
  return acc.sum() + mins;
}

// Q6_K: sixteen 16-value sub-blocks with signed 8-bit scales, values -32..31.
float dot_q6_k(const void* w_row, const void* act_row, int64_t n) {
  const auto* a = static_cast<const BlockQ8K*>(act_row);
  const auto* w = static_cast<const BlockQ6K*>(w_row);
  FloatLanes acc;
  int8_t q[256];
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* ql = w[b].ql;
    const uint8_t* qh = w[b].qh;
    for (int half = 0; half < 256; half += 128, ql += 64, qh += 32)
      for (int l = 0; l < 32; ++l) {
        q[half + l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        q[half + l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        q[half + l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        q[half + l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    IntLanes s;
    for (int g = 0; g < 8; ++g) s.add_group(q + 32 * g, a[b].qs + 32 * g, w[b].scales[2 * g], w[b].scales[2 * g + 1]);
    acc.fma(a[b].d * h(w[b].d), s);
  }
  return acc.sum();
}

// Q3_K: sixteen 16-value sub-blocks with 6-bit scales biased by 32, values -4..3.
float dot_q3_k(const void* w_row, const void* act_row, int64_t n) {
  const auto* a = static_cast<const BlockQ8K*>(act_row);
  const auto* w = static_cast<const BlockQ3K*>(w_row);
  FloatLanes acc;
  int8_t q[256];
  for (int64_t b = 0; b < n / 256; ++b) {
    for (int i = 0; i < 256; ++i) {
      const int high = (w[b].hmask[i % 32] >> (i / 32)) & 1;
      q[i] = static_cast<int8_t>(kquant::unpack_2bit(w[b].qs, i) - (high ? 0 : 4));
    }
    int32_t sc[16];
    for (int j = 0; j < 16; ++j) {
      const int low = j < 8 ? w[b].scales[j] & 0xF : w[b].scales[j - 8] >> 4;
      sc[j] = (low | (((w[b].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
    }
    IntLanes s;
    for (int g = 0; g < 8; ++g) s.add_group(q + 32 * g, a[b].qs + 32 * g, sc[2 * g], sc[2 * g + 1]);
    acc.fma(a[b].d * h(w[b].d), s);
  }
  return acc.sum();
}

// Q2_K as llama.cpp's x86 backend sums it on AVX-512 CPUs, for which it repacks Q2_K (ggml_gemv/gemm_q2_K_8x8_q8_K;
// AVX2-only CPUs take its vec_dot): as Q4_K, with the exact integer sums of the values (sum_j sc_j q_j.a_j over
// the sixteen 16-value sub-blocks) and of the mins (sum_j m_j bsums_j).
float dot_q2_k(const void* w_row, const void* act_row, int64_t n) {
  const auto* a = static_cast<const BlockQ8K*>(act_row);
  const auto* w = static_cast<const BlockQ2K*>(w_row);
  ValuesMinusMins sum;
  for (int64_t b = 0; b < n / 256; ++b) {
    int32_t values = 0, offsets = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t dot = 0;
      for (int i = 16 * j; i < 16 * j + 16; ++i) dot += kquant::unpack_2bit(w[b].qs, i) * a[b].qs[i];
      values += (w[b].scales[j] & 0xF) * dot;
      offsets += (w[b].scales[j] >> 4) * a[b].bsums[j];
    }
    sum.add(values, offsets, h(w[b].d), h(w[b].dmin), a[b].d);
  }
  return sum.result();
}

// IQ4_XS: eight 32-value sub-blocks with 6-bit scales biased by 32, IQ4_NL table values.
// IQ4_XS group g's 32 signed values and its scale (6 bits - 32).
std::array<int8_t, 32> iq4_xs_group_values(const BlockIQ4XS& w, int g) {
  std::array<int8_t, 32> q;
  for (int j = 0; j < 16; ++j) {
    q[j] = kIq4nlValues[w.qs[16 * g + j] & 0xF];
    q[j + 16] = kIq4nlValues[w.qs[16 * g + j] >> 4];
  }
  return q;
}
int32_t iq4_xs_group_scale(const BlockIQ4XS& w, int g) {
  const int low = (w.scales_l[g / 2] >> (4 * (g % 2))) & 0xF, high = (w.scales_h >> (2 * g)) & 3;
  return (low | (high << 4)) - 32;
}

float dot_iq4_xs(const void* w_row, const void* act_row, int64_t n) {
  const auto* a = static_cast<const BlockQ8K*>(act_row);
  const auto* w = static_cast<const BlockIQ4XS*>(w_row);
  FloatLanes acc;
  for (int64_t b = 0; b < n / 256; ++b) {
    IntLanes s;
    for (int g = 0; g < 8; ++g) {
      const int32_t scale = iq4_xs_group_scale(w[b], g);
      s.add_group(iq4_xs_group_values(w[b], g).data(), a[b].qs + 32 * g, scale, scale);
    }
    acc.fma(h(w[b].d) * a[b].d, s);
  }
  return acc.sum();
}

// IQ4_XS in llama.cpp's AMX order (its acc_C and VNNI kernel for iq4_xs): a super-block's groups' exact sums times
// their scales added as integers, then times d_w * d_a in one FMA into one float.
float dot_iq4_xs_whole_blocks(const void* w_row, const void* act_row, int64_t n) {
  const auto* a = static_cast<const BlockQ8K*>(act_row);
  const auto* w = static_cast<const BlockIQ4XS*>(w_row);
  float sum = 0;
  for (int64_t b = 0; b < n / 256; ++b) {
    int32_t s = 0;
    for (int g = 0; g < 8; ++g)
      s += block_int_sum(iq4_xs_group_values(w[b], g).data(), a[b].qs + 32 * g) * iq4_xs_group_scale(w[b], g);
    sum = std::fma(static_cast<float>(s), h(w[b].d) * a[b].d, sum);
  }
  return sum;
}

// ---- F16 / BF16 against activations rounded to the same type. The pairwise sum of eight float lanes at the end,
// then the tail past the last whole group, one FMA per value. ----
template <typename Add = std::plus<float>>
float pairwise_eight(const float* l, Add add = {}) {
  return add(add(add(l[0], l[4]), add(l[2], l[6])), add(add(l[1], l[5]), add(l[3], l[7])));
}

// F16: value i into lane i % 8, one FMA each.
float dot_f16(const void* w_row, const void* act_row, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(w_row);
  const auto* a = static_cast<const uint16_t*>(act_row);
  float l[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) l[k] = std::fma(f16_to_f32(w[i + k]), f16_to_f32(a[i + k]), l[k]);
  float tail = 0;
  for (; i < n; ++i) tail = std::fma(f16_to_f32(w[i]), f16_to_f32(a[i]), tail);
  return pairwise_eight(l) + tail;
}

// One step of AVX512-BF16's vdpbf16ps: c + a * b rounded to nearest even, with subnormal inputs read as zero and a
// result below FLT_MIN flushed to zero of its sign. Tininess is judged after rounding to 24 bits with an unbounded
// exponent, as x86 does: an exact result in [FLT_MIN - 2^-151, FLT_MIN) rounds up to FLT_MIN and stays; one just
// below flushes, though the correctly rounded subnormal would be FLT_MIN too. Measured on the instruction itself
// (tests/ops/dot_reference_test.cc compares the two on every input class when the CPU has it).
float bf16_step(float a, float b, float c) {
  const auto daz = [](float x) { return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x; };
  a = daz(a), b = daz(b);
  const float r = std::fma(a, b, c);
  constexpr float kMin = std::numeric_limits<float>::min();
  if (std::fabs(r) != kMin) return std::fabs(r) < kMin ? std::copysign(0.0f, r) : r;
  // |r| == FLT_MIN: the exact a * b + c (the product exact in double, the sum's error by TwoSum) against the
  // rounding boundary FLT_MIN - 2^-151.
  const double p = static_cast<double>(a) * b, s = p + c, pv = s - c, cv = s - pv;
  const double err = (p - pv) + (c - cv);
  const double boundary = std::copysign(static_cast<double>(kMin) - std::ldexp(1.0, -151), r), dist = s - boundary;
  const bool below = r > 0 ? dist < 0 || (dist == 0 && err < 0) : dist > 0 || (dist == 0 && err > 0);
  return below ? std::copysign(0.0f, r) : r;
}

// a + b with the same flushing (a is never subnormal here: a lane or a sum of lanes).
float bf16_add(float a, float b) { return bf16_step(a, 1.0f, b); }

// BF16: the order of vdpbf16ps, so AVX512-BF16 CPUs run it as one instruction: in every 16 values, lane k takes
// the pair (2k, 2k + 1), the odd value first, each step rounded and flushed as bf16_step. The tail and the sums at
// the end flush too: the kernels run the whole dot under MXCSR's FTZ and DAZ, set once per call (setting it
// around each tile cost a third of the emulated kernel's speed).
float dot_bf16(const void* w_row, const void* act_row, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(w_row);
  const auto* a = static_cast<const uint16_t*>(act_row);
  float l[8] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 8; ++k) {
      const int64_t even = i + 2 * k, odd = even + 1;
      l[k] = bf16_step(bf16_to_f32(w[even]), bf16_to_f32(a[even]), bf16_step(bf16_to_f32(w[odd]), bf16_to_f32(a[odd]), l[k]));
    }
  float tail = 0;
  for (; i < n; ++i) tail = bf16_step(bf16_to_f32(w[i]), bf16_to_f32(a[i]), tail);
  return bf16_add(pairwise_eight(l, bf16_add), tail);
}

}  // namespace

namespace {
std::atomic<SumOrder> sum_order{SumOrder::kByCpu};
}  // namespace

SumOrder set_sum_order(SumOrder order) { return sum_order.exchange(order); }

bool amx_sum_order() {
  switch (sum_order.load(std::memory_order_relaxed)) {
    case SumOrder::kVecDot: return false;
    case SumOrder::kAmx: return true;
    default: return cpu_has_amx_int8();
  }
}

RowDotFn reference_row_dot(DType type) {
  switch (type) {
    case DType::Q4_0: return dot_whole_blocks<BlockQ4_0>;
    case DType::Q5_0: return dot_symmetric<BlockQ5_0>;
    case DType::Q8_0: return amx_sum_order() ? dot_whole_blocks<BlockQ8_0> : dot_symmetric<BlockQ8_0>;
    case DType::I4G: return dot_whole_blocks<BlockI4G>;
    case DType::IQ4_NL: return dot_whole_blocks<BlockIQ4NL>;
    case DType::Q4_1: return amx_sum_order() ? dot_q4_1_whole_blocks : dot_affine<BlockQ4_1>;
    case DType::Q5_1: return dot_affine<BlockQ5_1>;
    case DType::Q2_K: return dot_q2_k;
    case DType::Q3_K: return dot_q3_k;
    case DType::Q4_K: return dot_q4_k;
    case DType::Q5_K: return dot_q5_k;
    case DType::Q6_K: return dot_q6_k;
    case DType::IQ4_XS: return amx_sum_order() ? dot_iq4_xs_whole_blocks : dot_iq4_xs;
    case DType::F16: return dot_f16;
    case DType::BF16: return dot_bf16;
    default: return nullptr;
  }
}

void matmul_reference(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads) {
  const RowDotFn dot = reference_row_dot(w.type());
  if (!dot) return matmul_generic(w, x, n_tokens, y, threads);
  const int64_t n_in = w.ne()[0], n_out = w.info.n_rows();
  std::vector<float> gathered;
  if (w.input_order) x = (gathered = gather_input(w, x, n_tokens)).data();
  const QuantizedActivations acts = quantize_activations(activation_type(w.type()), x, n_tokens, n_in, threads);
  parallel_region(static_cast<int>(std::clamp<int64_t>(n_out, 1, threads)), [&](int i, int n_threads) {
    std::vector<uint8_t> row(row_bytes(w.type(), n_in));
    const Share share = static_share(n_out, i, n_threads);
    for (int64_t o = share.begin; o < share.end; ++o) {
      copy_row(w, o, row.data());
      for (int64_t t = 0; t < n_tokens; ++t) y[t * n_out + o] = dot(row.data(), acts.row(t), n_in);
    }
  });
}

}  // namespace lowbit
