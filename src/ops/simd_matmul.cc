// SIMD kernels on the quantized blocks (Highway, compiled for every x86 target and picked at run time).
//
// Activations are quantized once per token (Q8_0 for Q8_0/Q4_0 weights, Q8_K for Q4_K/Q5_K/Q6_K) and each
// output is a sum over blocks of integer dot products scaled by the blocks' float scales, in the order ggml's
// AVX2 kernels sum them: eight lanes per block, lane l holding the (scaled) integer dot product of elements
// 4l..4l+3 of every 32-element group, each block's lanes converted to float and accumulated with one fused
// multiply-add, the lanes added pairwise at the end. The integers are exact, so only that float order decides
// the result, and it is the same on every target and for any thread count or batch size.
//
// Targets with vectors narrower than 256 bits (SSE4, scalar) run the same arithmetic lane by lane.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/simd_matmul.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/float_formats.h"
#include "ops/fused_kernels.h"
#include "ops/simd_matmul.h"
#include "quant/k_quant_common.h"
#include "quant/legacy_quants.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Block scales: the F16C instruction where the target has it (exact, as the table lookup it replaces).
HWY_INLINE float Half(uint16_t h) {
#if HWY_TARGET <= HWY_AVX2 && HWY_ARCH_X86
  return _cvtsh_ss(h);
#else
  return f16_to_f32(h);
#endif
}

// Splits 16 * kPairs bytes of nibbles: byte j's low nibble to lo[j], high nibble to hi[j], each minus `offset`.
template <int kBytes>
HWY_INLINE void SplitNibbles(const uint8_t* src, int8_t* lo, int8_t* hi, int offset) {
#if HWY_MAX_BYTES >= 32
  const hn::FixedTag<uint8_t, kBytes> du;
  const hn::FixedTag<int8_t, kBytes> di;
  const auto v = hn::LoadU(du, src);
  const auto off = hn::Set(di, static_cast<int8_t>(offset));
  hn::StoreU(hn::Sub(hn::BitCast(di, hn::And(v, hn::Set(du, 0x0F))), off), di, lo);
  hn::StoreU(hn::Sub(hn::BitCast(di, hn::ShiftRight<4>(v)), off), di, hi);
#else
  for (int j = 0; j < kBytes; ++j) {
    lo[j] = static_cast<int8_t>((src[j] & 0x0F) - offset);
    hi[j] = static_cast<int8_t>((src[j] >> 4) - offset);
  }
#endif
}

// lanes[l] += sum over k < 4 of a[4l + k] * b[4l + k] * scale(l), for 32 int8 values; scale(l) is scale_lo for
// l < 4 and scale_hi otherwise (K-quants with 16-element sub-blocks). Exact in int32.
#if HWY_MAX_BYTES >= 32
using D8 = hn::FixedTag<int8_t, 32>;
using D16 = hn::FixedTag<int16_t, 16>;
using D32 = hn::FixedTag<int32_t, 8>;
using DF = hn::FixedTag<float, 8>;
using VI = hn::Vec<D32>;

HWY_INLINE VI QuadSumsV(hn::Vec<D8> va, const int8_t* b) {
  const D8 d8;
  const D16 d16;
  const D32 d32;
  const hn::Half<D8> dh;
  const auto vb = hn::LoadU(d8, b);
  const auto a_lo = hn::PromoteTo(d16, hn::LowerHalf(dh, va)), a_hi = hn::PromoteTo(d16, hn::UpperHalf(dh, va));
  const auto b_lo = hn::PromoteTo(d16, hn::LowerHalf(dh, vb)), b_hi = hn::PromoteTo(d16, hn::UpperHalf(dh, vb));
  auto unused = hn::Zero(d32);
  // Pairs (2i, 2i+1) of each half; then adjacent pairs give the quads, in element order.
  const VI p_lo = hn::ReorderWidenMulAccumulate(d32, a_lo, b_lo, hn::Zero(d32), unused);
  const VI p_hi = hn::ReorderWidenMulAccumulate(d32, a_hi, b_hi, hn::Zero(d32), unused);
  return hn::Add(hn::ConcatEven(d32, p_hi, p_lo), hn::ConcatOdd(d32, p_hi, p_lo));
}
HWY_INLINE VI QuadSums(const int8_t* a, const int8_t* b) { return QuadSumsV(hn::LoadU(D8(), a), b); }

// Q4_0's 32 levels minus 8 straight from its 16 bytes, in registers (a store and reload of two halves would
// stall store-to-load forwarding).
HWY_INLINE VI QuadSumsQ4_0(const uint8_t* qs, const int8_t* b) {
  const hn::FixedTag<uint8_t, 16> du;
  const hn::FixedTag<int8_t, 16> di;
  const auto v = hn::LoadU(du, qs);
  const auto eight = hn::Set(di, 8);
  const auto lo = hn::Sub(hn::BitCast(di, hn::And(v, hn::Set(du, 0x0F))), eight);
  const auto hi = hn::Sub(hn::BitCast(di, hn::ShiftRight<4>(v)), eight);
  return QuadSumsV(hn::Combine(D8(), hi, lo), b);
}

struct Acc8 {
  HWY_INLINE Acc8() : v(hn::Zero(DF())) {}
  hn::Vec<DF> v;
  HWY_INLINE void fma(float d, VI sums) { v = hn::MulAdd(hn::Set(DF(), d), hn::ConvertTo(DF(), sums), v); }
  HWY_INLINE float sum() const {
    alignas(32) float a[8];
    hn::Store(v, DF(), a);
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
  }
};
HWY_INLINE VI ZeroI() { return hn::Zero(D32()); }
HWY_INLINE VI MulI(VI v, int32_t s) { return hn::Mul(v, hn::Set(D32(), s)); }
HWY_INLINE VI ScaleHalves(VI v, int32_t lo, int32_t hi) {
  alignas(32) static constexpr int32_t kHigh[8] = {0, 0, 0, 0, 1, 1, 1, 1};
  const D32 d32;
  const auto is_high = hn::Eq(hn::Load(d32, kHigh), hn::Set(d32, 1));
  return hn::Mul(v, hn::IfThenElse(is_high, hn::Set(d32, hi), hn::Set(d32, lo)));
}
#else
// Narrow targets: the same lanes, one at a time.
struct VI {
  int32_t l[8];
};
HWY_INLINE VI QuadSums(const int8_t* a, const int8_t* b) {
  VI r;
  for (int l = 0; l < 8; ++l) {
    int32_t s = 0;
    for (int k = 0; k < 4; ++k) s += static_cast<int32_t>(a[4 * l + k]) * b[4 * l + k];
    r.l[l] = s;
  }
  return r;
}
struct Acc8 {
  float v[8] = {};
  void fma(float d, VI s) {
    for (int l = 0; l < 8; ++l) v[l] = std::fma(d, static_cast<float>(s.l[l]), v[l]);
  }
  float sum() const { return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7])); }
};
HWY_INLINE VI ZeroI() { return VI{}; }
HWY_INLINE VI QuadSumsQ4_0(const uint8_t* qs, const int8_t* b) {
  int8_t q[32];
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>((qs[j] & 0x0F) - 8);
    q[j + 16] = static_cast<int8_t>((qs[j] >> 4) - 8);
  }
  return QuadSums(q, b);
}
HWY_INLINE VI MulI(VI v, int32_t s) {
  for (auto& x : v.l) x *= s;
  return v;
}
HWY_INLINE VI ScaleHalves(VI v, int32_t lo, int32_t hi) {
  for (int l = 0; l < 8; ++l) v.l[l] *= l < 4 ? lo : hi;
  return v;
}
HWY_INLINE VI operator+(VI a, VI b) {
  for (int l = 0; l < 8; ++l) a.l[l] += b.l[l];
  return a;
}
#endif

// ---- per weight type: one output = dot of a weight row with one activation row ----

float DotQ8_0(const void* w_row, const void* act_row, int64_t n) {
  const auto* w = static_cast<const BlockQ8_0*>(w_row);
  const auto* a = static_cast<const BlockQ8_0*>(act_row);
  Acc8 acc;
  for (int64_t b = 0; b < n / 32; ++b)
    acc.fma(Half(w[b].d) * Half(a[b].d), QuadSums(w[b].qs, a[b].qs));
  return acc.sum();
}

float DotQ4_0(const void* w_row, const void* act_row, int64_t n) {
  const auto* w = static_cast<const BlockQ4_0*>(w_row);
  const auto* a = static_cast<const BlockQ8_0*>(act_row);
  Acc8 acc;
  for (int64_t b = 0; b < n / 32; ++b) acc.fma(Half(w[b].d) * Half(a[b].d), QuadSumsQ4_0(w[b].qs, a[b].qs));
  return acc.sum();
}

// The other 32-element legacy blocks through their levels: Q5_0 (level - 16) and IQ4_NL (table value) against
// Q8_0; Q4_1 / Q5_1 (level, plus the block minimum times the activations' sum s) against Q8_1.
template <typename Block>
float DotSymmetricLegacy(const void* w_row, const void* act_row, int64_t n) {
  const auto* w = static_cast<const Block*>(w_row);
  const auto* a = static_cast<const BlockQ8_0*>(act_row);
  Acc8 acc;
  uint8_t levels[32];
  int8_t q[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    legacy::unpack_levels(w[b], levels);
    for (int j = 0; j < 32; ++j) {
      if constexpr (std::is_same_v<Block, BlockIQ4NL>) q[j] = kIq4nlValues[levels[j]];
      else q[j] = static_cast<int8_t>(levels[j] - 16);
    }
    acc.fma(Half(w[b].d) * Half(a[b].d), QuadSums(q, a[b].qs));
  }
  return acc.sum();
}

template <typename Block>
float DotAffineLegacy(const void* w_row, const void* act_row, int64_t n) {
  const auto* w = static_cast<const Block*>(w_row);
  const auto* a = static_cast<const BlockQ8_1*>(act_row);
  Acc8 acc;
  float mins = 0;
  uint8_t levels[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    legacy::unpack_levels(w[b], levels);
    mins = std::fma(Half(w[b].m), Half(a[b].s), mins);
    acc.fma(Half(w[b].d) * Half(a[b].d), QuadSums(reinterpret_cast<const int8_t*>(levels), a[b].qs));
  }
  return acc.sum() + mins;
}

// Q4_K / Q5_K: eight 32-element sub-blocks with 6-bit scales and mins. The mins meet the activations' 16-element
// sums: -dmin * sum_j m_j * (bsums[2j] + bsums[2j+1]), kept in four lanes as ggml does (pairs of sub-blocks).
template <bool kFifthBit>
float DotQ45K(const void* w_row, const void* act_row, int64_t n) {
  const auto* a = static_cast<const BlockQ8K*>(act_row);
  Acc8 acc;
  float acc_m[4] = {};
  int8_t q[256];
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* scales;
    float d_w, dmin_w;
    if constexpr (kFifthBit) {
      const auto& w = static_cast<const BlockQ5K*>(w_row)[b];
      scales = w.scales, d_w = Half(w.d), dmin_w = Half(w.dmin);
      for (int pair = 0; pair < 4; ++pair)
        for (int l = 0; l < 32; ++l) {
          const uint8_t byte = w.qs[pair * 32 + l];
          q[pair * 64 + l] = static_cast<int8_t>((byte & 0xF) | (((w.qh[l] >> (2 * pair)) & 1) << 4));
          q[pair * 64 + 32 + l] = static_cast<int8_t>((byte >> 4) | (((w.qh[l] >> (2 * pair + 1)) & 1) << 4));
        }
    } else {
      const auto& w = static_cast<const BlockQ4K*>(w_row)[b];
      scales = w.scales, d_w = Half(w.d), dmin_w = Half(w.dmin);
      for (int pair = 0; pair < 4; ++pair) SplitNibbles<32>(w.qs + pair * 32, q + pair * 64, q + pair * 64 + 32, 0);
    }
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) kquant::unpack_scale_min_k4(j, scales, &sc[j], &m[j]);
    VI sumi = ZeroI();
    for (int j = 0; j < 8; ++j) sumi = sumi + MulI(QuadSums(q + 32 * j, a[b].qs + 32 * j), sc[j]);
    acc.fma(a[b].d * d_w, sumi);
    const float dmin = -a[b].d * dmin_w;
    for (int i = 0; i < 4; ++i) {
      const int32_t s0 = a[b].bsums[4 * i] + a[b].bsums[4 * i + 1], s1 = a[b].bsums[4 * i + 2] + a[b].bsums[4 * i + 3];
      acc_m[i] = std::fma(dmin, static_cast<float>(m[2 * i] * s0 + m[2 * i + 1] * s1), acc_m[i]);
    }
  }
  return acc.sum() + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]));
}

// Q6_K: sixteen 16-element sub-blocks with signed 8-bit scales, levels -32..31.
float DotQ6K(const void* w_row, const void* act_row, int64_t n) {
  const auto* a = static_cast<const BlockQ8K*>(act_row);
  const auto* w = static_cast<const BlockQ6K*>(w_row);
  Acc8 acc;
  int8_t q[256];
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* ql = w[b].ql;
    const uint8_t* qh = w[b].qh;
    for (int half = 0; half < 256; half += 128) {
      for (int l = 0; l < 32; ++l) {
        q[half + l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        q[half + l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        q[half + l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        q[half + l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
      ql += 64;
      qh += 32;
    }
    VI sumi = ZeroI();
    for (int g = 0; g < 8; ++g)
      sumi = sumi + ScaleHalves(QuadSums(q + 32 * g, a[b].qs + 32 * g), w[b].scales[2 * g], w[b].scales[2 * g + 1]);
    acc.fma(a[b].d * Half(w[b].d), sumi);
  }
  return acc.sum();
}

float DotQ4K(const void* w, const void* a, int64_t n) { return DotQ45K<false>(w, a, n); }
float DotQ5_0(const void* w, const void* a, int64_t n) { return DotSymmetricLegacy<BlockQ5_0>(w, a, n); }
float DotIQ4NL(const void* w, const void* a, int64_t n) { return DotSymmetricLegacy<BlockIQ4NL>(w, a, n); }
float DotQ4_1(const void* w, const void* a, int64_t n) { return DotAffineLegacy<BlockQ4_1>(w, a, n); }
float DotQ5_1(const void* w, const void* a, int64_t n) { return DotAffineLegacy<BlockQ5_1>(w, a, n); }

// F16 / BF16 weights against activations rounded to the same type: converted to float eight at a time and
// multiplied-added into eight lanes, lanes added pairwise at the end.
template <bool kBf16>
float DotHalf(const void* w_row, const void* act_row, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(w_row);
  const auto* a = static_cast<const uint16_t*>(act_row);
  auto to_f32 = [](uint16_t h) { return kBf16 ? bf16_to_f32(h) : f16_to_f32(h); };
#if HWY_MAX_BYTES >= 32
  using T16 = std::conditional_t<kBf16, hwy::bfloat16_t, hwy::float16_t>;
  const DF df;
  const hn::Rebind<T16, DF> d16;
  auto acc = hn::Zero(df);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const auto wv = hn::PromoteTo(df, hn::LoadU(d16, reinterpret_cast<const T16*>(w + i)));
    const auto av = hn::PromoteTo(df, hn::LoadU(d16, reinterpret_cast<const T16*>(a + i)));
    acc = hn::MulAdd(wv, av, acc);
  }
  alignas(32) float l[8];
  hn::Store(acc, df, l);
#else
  float l[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) l[k] = std::fma(to_f32(w[i + k]), to_f32(a[i + k]), l[k]);
#endif
  float tail = 0;
  for (; i < n; ++i) tail = std::fma(to_f32(w[i]), to_f32(a[i]), tail);
  return (((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))) + tail;
}
float DotF16(const void* w, const void* a, int64_t n) { return DotHalf<false>(w, a, n); }
float DotBF16(const void* w, const void* a, int64_t n) { return DotHalf<true>(w, a, n); }
float DotQ5K(const void* w, const void* a, int64_t n) { return DotQ45K<true>(w, a, n); }

// Rows [r0, r1) of W times every activation row: each row's blocks stay in L1 while all tokens pass over them.
template <float (*Dot)(const void*, const void*, int64_t)>
void DotRows(const uint8_t* w, size_t w_row_bytes, const uint8_t* acts, size_t act_row_bytes, int64_t n_in,
             int64_t n_tokens, int64_t r0, int64_t r1, float* y, int64_t n_out) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t t = 0; t < n_tokens; ++t)
      y[t * n_out + r] = Dot(w + static_cast<size_t>(r) * w_row_bytes, acts + static_cast<size_t>(t) * act_row_bytes, n_in);
}

#define LOWBIT_ROWS_FN(NAME)                                                                                   \
  void Rows##NAME(const uint8_t* w, size_t wb, const uint8_t* a, size_t ab, int64_t n, int64_t nt, int64_t r0, \
                  int64_t r1, float* y, int64_t n_out) {                                                       \
    DotRows<Dot##NAME>(w, wb, a, ab, n, nt, r0, r1, y, n_out);                                                 \
  }
LOWBIT_ROWS_FN(Q8_0)
LOWBIT_ROWS_FN(Q4_0)
LOWBIT_ROWS_FN(Q4_1)
LOWBIT_ROWS_FN(Q5_0)
LOWBIT_ROWS_FN(Q5_1)
LOWBIT_ROWS_FN(IQ4NL)
LOWBIT_ROWS_FN(Q4K)
LOWBIT_ROWS_FN(Q5K)
LOWBIT_ROWS_FN(Q6K)
LOWBIT_ROWS_FN(F16)
LOWBIT_ROWS_FN(BF16)
#undef LOWBIT_ROWS_FN

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <omp.h>

#include <vector>

namespace lowbit {

HWY_EXPORT(RowsQ8_0);
HWY_EXPORT(RowsQ4_0);
HWY_EXPORT(RowsQ4_1);
HWY_EXPORT(RowsQ5_0);
HWY_EXPORT(RowsQ5_1);
HWY_EXPORT(RowsIQ4NL);
HWY_EXPORT(RowsQ4K);
HWY_EXPORT(RowsQ5K);
HWY_EXPORT(RowsQ6K);
HWY_EXPORT(RowsF16);
HWY_EXPORT(RowsBF16);

namespace {

// Quantizes every token's activations once, then splits the weight rows over the threads in fixed chunks.
template <typename RowsFn>
void run_kernel(RowsFn rows, DType act_type, const Tensor& w, const float* x, int64_t n_tokens, float* y,
                int threads) {
  const int64_t n_in = w.ne()[0], n_out = w.info.n_rows();
  const size_t ab = row_bytes(act_type, n_in), wb = row_bytes(w.type(), n_in);
  std::vector<uint8_t> acts(ab * static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) {
    uint8_t* dst = acts.data() + ab * static_cast<size_t>(t);
    if (act_type == DType::Q8_0) quantize_activation_q8_0(x + t * n_in, reinterpret_cast<BlockQ8_0*>(dst), n_in);
    else if (act_type == DType::Q8_1) quantize_activation_q8_1(x + t * n_in, reinterpret_cast<BlockQ8_1*>(dst), n_in);
    else quantize_rows(act_type, x + t * n_in, dst, 1, n_in);
  }
  constexpr int64_t kRowsPerChunk = 16;
  const int64_t n_chunks = (n_out + kRowsPerChunk - 1) / kRowsPerChunk;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t r0 = c * kRowsPerChunk, r1 = std::min(n_out, r0 + kRowsPerChunk);
    rows(w.data, wb, acts.data(), ab, n_in, n_tokens, r0, r1, y, n_out);
  }
}

}  // namespace

#define LOWBIT_SIMD_KERNEL(FN, ROWS, ACT)                                                    \
  void FN(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads) {        \
    run_kernel(HWY_DYNAMIC_DISPATCH(ROWS), DType::ACT, w, x, n_tokens, y, threads);         \
  }
LOWBIT_SIMD_KERNEL(matmul_q8_0_simd, RowsQ8_0, Q8_0)
LOWBIT_SIMD_KERNEL(matmul_q4_0_simd, RowsQ4_0, Q8_0)
LOWBIT_SIMD_KERNEL(matmul_q4_1_simd, RowsQ4_1, Q8_1)
LOWBIT_SIMD_KERNEL(matmul_q5_0_simd, RowsQ5_0, Q8_0)
LOWBIT_SIMD_KERNEL(matmul_q5_1_simd, RowsQ5_1, Q8_1)
LOWBIT_SIMD_KERNEL(matmul_iq4_nl_simd, RowsIQ4NL, Q8_0)
LOWBIT_SIMD_KERNEL(matmul_q4_k_simd, RowsQ4K, Q8_K)
LOWBIT_SIMD_KERNEL(matmul_q5_k_simd, RowsQ5K, Q8_K)
LOWBIT_SIMD_KERNEL(matmul_q6_k_simd, RowsQ6K, Q8_K)
LOWBIT_SIMD_KERNEL(matmul_f16_simd, RowsF16, F16)
LOWBIT_SIMD_KERNEL(matmul_bf16_simd, RowsBF16, BF16)
#undef LOWBIT_SIMD_KERNEL

}  // namespace lowbit
#endif  // HWY_ONCE
