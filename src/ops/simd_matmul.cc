// SIMD matmul kernels on the quantized blocks (Highway: compiled for every x86 target, picked at run time).
//
// Every output is summed exactly as ops/dot_reference.cc sums it (ggml's AVX2 order: exact integer lanes per
// block, one float FMA per block into eight float lanes, lanes added pairwise at the end), so the kernels give the
// reference's bits on every target, for any tile shape, thread count or batch size. Freedom lies only in how the
// exact integer lanes are computed and in how many outputs are in flight at once:
//
// - AVX2 holds one output's eight lanes in a 256-bit register; AVX-512 holds two rows' side by side (row r of a
//   pair in the low half, r+1 in the high half, the activations broadcast to both), so every 512-bit instruction
//   works for two outputs. AVX-512 VNNI adds the int8 and int16 dot-product instructions (vpdpbusd, vpdpwssd),
//   which replace ggml's maddubs/madd/add sequences with the same exact sums.
// - A tile is P row groups x T tokens: the weight block of each row is decoded once and used for T tokens, and
//   P * T independent FMA chains hide the FMA latency the fixed order would otherwise expose.
//
// Targets without 256-bit vectors (SSE4, scalar, non-x86) run the reference kernels.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/simd_matmul.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/aligned_allocator.h>
#include <hwy/highway.h>

#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/float_formats.h"
#include "ops/activation_quant.h"
#include "ops/dot_reference.h"
#include "ops/packed_weight.h"
#include "ops/simd_matmul.h"
#include "quant/int_groups.h"
#include "quant/k_quant_common.h"
#include "quant/legacy_quants.h"

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
// Highway 1.0.3's AVX3_DL target enables AVX-VNNI but not AVX512-VNNI. Only the 512-bit (EVEX-only) forms are used
// here: with both enabled GCC encodes the 256-bit vpdpbusd as VEX, which AVX-512 CPUs without AVX-VNNI (Ice Lake,
// Zen 4) do not have. tests/ops/tests.cmake checks the binary for VEX-encoded VNNI.
#pragma GCC target("avx512vnni")
#endif
namespace lowbit {
namespace HWY_NAMESPACE {

// This file is compiled once per target (foreach_target), so the switch is reset on each pass.
#undef LOWBIT_WIDE_KERNELS
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define LOWBIT_WIDE_KERNELS 1

HWY_INLINE float Half(uint16_t h) { return _cvtsh_ss(h); }

// ---- the primitives, once per vector width: V holds kRows rows' 32 bytes / eight lanes ----
#if HWY_TARGET == HWY_AVX2
struct V {
  static constexpr int kRows = 1;
  static constexpr bool kVnni = false;
  using I = __m256i;
  using F = __m256;
  using HI = __m128i;  // four int32 lanes per row (Q4_K/Q5_K mins)
  using HF = __m128;

  static I Zero() { return _mm256_setzero_si256(); }
  static I Set8(int8_t v) { return _mm256_set1_epi8(v); }
  static I Rows32(const uint8_t* p, size_t) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  // 16 bytes of each row as 32 nibbles: the low nibbles (values 0-15), then the high ones (16-31).
  static I RowsNibbles(const uint8_t* p, size_t) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), _mm256_set1_epi8(0x0F));
  }
  // 32 bits of each row: byte j is 0xFF where bit j is set.
  static I RowsBits(const uint8_t* p, size_t) {
    uint32_t bits;
    std::memcpy(&bits, p, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                                               _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                                 0x0101010101010101, 0x0000000000000000));
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  }
  // The byte at p of each row, in every byte of the row's lanes.
  static I RowsByte(const uint8_t* p, size_t) { return _mm256_set1_epi8(static_cast<char>(p[0])); }
  static I Act32(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static I Act32Words(const int32_t* p) { return Act32(reinterpret_cast<const int8_t*>(p)); }
  static I NegShl(I v, int offset) {
    return _mm256_sll_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), v), _mm_cvtsi32_si128(__builtin_ctz(offset)));
  }
  static I Table16(const int8_t* t) { return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t))); }
  static I Lookup(I table, I idx) { return _mm256_shuffle_epi8(table, idx); }
  static I And(I a, I b) { return _mm256_and_si256(a, b); }
  static I AndNot(I a, I b) { return _mm256_andnot_si256(a, b); }
  static I Or(I a, I b) { return _mm256_or_si256(a, b); }
  static I Sub8(I a, I b) { return _mm256_sub_epi8(a, b); }
  static I Xor(I a, I b) { return _mm256_xor_si256(a, b); }
  template <int kBits> static I Shr16(I a) { return _mm256_srli_epi16(a, kBits); }
  template <int kBits> static I Shl16(I a) { return _mm256_slli_epi16(a, kBits); }
  // Every byte shifted right by n (bits of the neighbouring byte enter at the top; callers mask them off).
  static I ShrBytes(I a, int n) { return _mm256_srl_epi16(a, _mm_cvtsi32_si128(n)); }
  // 0xFF in the bytes of v that have `bit` set.
  static I Where(I v, int8_t bit) {
    const I b = _mm256_set1_epi8(bit);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, b), b);
  }
  // a with `value` ORed into the bytes where `bits` has `bit` (bits that are clear in a) / subtracted where it has
  // not.
  static I OrWhere(I a, I bits, int8_t bit, int8_t value) { return _mm256_or_si256(a, _mm256_and_si256(Where(bits, bit), _mm256_set1_epi8(value))); }
  static I SubWhereNot(I a, I bits, int8_t bit, int8_t value) {
    return _mm256_sub_epi8(a, _mm256_andnot_si256(Where(bits, bit), _mm256_set1_epi8(value)));
  }

  // Exact int32 lanes of four products each, added to acc: unsigned u times signed s (the pairs must fit int16).
  static I DotU8(I acc, I u, I s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
  }
  // Signed q times signed a (|q| <= 128): |q| times a with q's sign, as ggml does.
  static I DotS8(I acc, I q, I a) { return DotU8(acc, _mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q)); }
  // Pairs of products as int16 (K-quants scale them per 16 or 32 values before widening).
  static I PairsU8(I u, I s) { return _mm256_maddubs_epi16(u, s); }
  struct Signed {  // a signed value vector prepared once for several activation vectors
    I abs, sign;
  };
  static Signed PrepareSigned(I q) { return {_mm256_sign_epi8(q, q), q}; }
  static I PairsS8(const Signed& q, I a) { return _mm256_maddubs_epi16(q.abs, _mm256_sign_epi8(a, q.sign)); }
  static I AddScaled(I acc, I pairs, I scales16) { return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, scales16)); }

  // Scale words for K-quants. Per32: eight int16 per row (one per 32 values) -> word j everywhere in the row.
  static I Per32Scales(const __m128i* words) { return _mm256_set_m128i(words[0], words[0]); }
  static I Per32Scale(I scales, int j) {
    const int16_t idx = static_cast<int16_t>((2 * j) | ((2 * j + 1) << 8));
    return _mm256_shuffle_epi8(scales, _mm256_set1_epi16(idx));
  }
  // Per16: sixteen int8 per row (one per 16 values) -> group g: words 0-7 scale 2g, words 8-15 scale 2g+1.
  static I Per16Scales(const __m128i* bytes) { return _mm256_castsi128_si256(bytes[0]); }
  static I Per16Scale(I scales, int g) {
    const __m128i idx = _mm_set_epi64x(0x0101010101010101LL * (2 * g + 1), 0x0101010101010101LL * (2 * g));
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(_mm256_castsi256_si128(scales), idx));
  }
  // Sixteen int16 of each row (Q2_K mins, or the activations' bsums given once per row).
  static I RowsWords16(const __m256i* words) { return words[0]; }

  static F ZeroF() { return _mm256_setzero_ps(); }
  static F SetF(float v) { return _mm256_set1_ps(v); }
  static F RowsF(const float* d) { return _mm256_set1_ps(d[0]); }  // d[r] in row r's lanes
  // The fp16 at p of each row (rows `stride` apart), as float in the row's lanes.
  static F RowsHalfF(const uint8_t* p, size_t) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _mm256_set1_ps(Half(h));
  }
  static F Cvt(I v) { return _mm256_cvtepi32_ps(v); }
  static F Mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F Fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F AddF(F a, F b) { return _mm256_add_ps(a, b); }
  static I Madd16(I a, I b) { return _mm256_madd_epi16(a, b); }
  // ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)) of each row, as ggml's hsum_float_8.
  static void StoreSums(F acc, float* y) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(acc, 1), _mm256_castps256_ps128(acc));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    y[0] = _mm_cvtss_f32(r);
  }

  // Half width: four int32 / float lanes per row.
  static HI HRowsWords8(const __m128i* words) { return words[0]; }
  static HI HMadd(HI a, HI b) { return _mm_madd_epi16(a, b); }
  static HF HZero() { return _mm_setzero_ps(); }
  static HF HRowsF(const float* d) { return _mm_set1_ps(d[0]); }
  static HF HFma(HF a, HI b, HF c) { return _mm_fmadd_ps(a, _mm_cvtepi32_ps(b), c); }
  // (l0+l2)+(l1+l3) of each row.
  static void HSums(HF v, float* out) {
    const __m128 r = _mm_add_ps(v, _mm_movehl_ps(v, v));
    out[0] = _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)));
  }
  static void HIntSums(HI v, int32_t* out) {
    alignas(16) int32_t l[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(l), v);
    out[0] = (l[0] + l[1]) + (l[2] + l[3]);
  }
};
#else  // AVX3 / AVX3_DL: two rows per register
struct V {
  static constexpr int kRows = 2;
  static constexpr bool kVnni = HWY_TARGET == HWY_AVX3_DL;
  using I = __m512i;
  using F = __m512;
  using HI = __m256i;
  using HF = __m256;

  static I Zero() { return _mm512_setzero_si512(); }
  static I Set8(int8_t v) { return _mm512_set1_epi8(v); }
  static I Join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
  static I Rows32(const uint8_t* p, size_t stride) {
    return Join(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + stride)));
  }
  static I RowsNibbles(const uint8_t* p, size_t stride) {
    const __m512i both = Join(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
                              _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + stride))));
    const __m512i shifts = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
    return _mm512_and_si512(_mm512_srlv_epi64(both, shifts), _mm512_set1_epi8(0x0F));
  }
  static I RowsBits(const uint8_t* p, size_t stride) {
    uint32_t b0, b1;
    std::memcpy(&b0, p, 4);
    std::memcpy(&b1, p + stride, 4);
    return _mm512_movm_epi8(static_cast<__mmask64>(b0) | (static_cast<__mmask64>(b1) << 32));
  }
  static I RowsByte(const uint8_t* p, size_t stride) {
    return _mm512_mask_set1_epi8(_mm512_set1_epi8(static_cast<char>(p[0])), 0xFFFFFFFF00000000ULL, static_cast<char>(p[stride]));
  }
  static I Act32(const int8_t* p) { return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static I Act32Words(const int32_t* p) { return Act32(reinterpret_cast<const int8_t*>(p)); }
  // -offset * v for a power-of-two offset.
  static I NegShl(I v, int offset) {
    return _mm512_sll_epi32(_mm512_sub_epi32(_mm512_setzero_si512(), v), _mm_cvtsi32_si128(__builtin_ctz(offset)));
  }
  static I Table16(const int8_t* t) { return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t))); }
  static I Lookup(I table, I idx) { return _mm512_shuffle_epi8(table, idx); }
  static I And(I a, I b) { return _mm512_and_si512(a, b); }
  static I AndNot(I a, I b) { return _mm512_andnot_si512(a, b); }
  static I Or(I a, I b) { return _mm512_or_si512(a, b); }
  static I Sub8(I a, I b) { return _mm512_sub_epi8(a, b); }
  static I Xor(I a, I b) { return _mm512_xor_si512(a, b); }
  template <int kBits> static I Shr16(I a) { return _mm512_srli_epi16(a, kBits); }
  template <int kBits> static I Shl16(I a) { return _mm512_slli_epi16(a, kBits); }
  static I ShrBytes(I a, int n) { return _mm512_srl_epi16(a, _mm_cvtsi32_si128(n)); }
  static I Where(I v, int8_t bit) { return _mm512_movm_epi8(_mm512_test_epi8_mask(v, _mm512_set1_epi8(bit))); }
  // (Callers OR into bits that are clear, so a masked add does it.)
  static I OrWhere(I a, I bits, int8_t bit, int8_t value) {
    return _mm512_mask_add_epi8(a, _mm512_test_epi8_mask(bits, _mm512_set1_epi8(bit)), a, _mm512_set1_epi8(value));
  }
  static I SubWhereNot(I a, I bits, int8_t bit, int8_t value) {
    return _mm512_mask_sub_epi8(a, _mm512_testn_epi8_mask(bits, _mm512_set1_epi8(bit)), a, _mm512_set1_epi8(value));
  }

#if HWY_TARGET == HWY_AVX3_DL
  static I DotU8(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }
  static I AddScaled(I acc, I pairs, I scales16) { return _mm512_dpwssd_epi32(acc, pairs, scales16); }
#else
  static I DotU8(I acc, I u, I s) {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
  }
  static I AddScaled(I acc, I pairs, I scales16) { return _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, scales16)); }
#endif
  // AVX-512 has no vpsignb: |q|, and a negated where q < 0 (where q is 0 the product is 0 either way).
  struct Signed {
    I abs;
    __mmask64 negative;
  };
  static Signed PrepareSigned(I q) { return {_mm512_abs_epi8(q), _mm512_movepi8_mask(q)}; }
  static I SignOf(const Signed& q, I a) { return _mm512_mask_sub_epi8(a, q.negative, _mm512_setzero_si512(), a); }
  static I DotS8(I acc, I q, I a) {
    const Signed s = PrepareSigned(q);
    return DotU8(acc, s.abs, SignOf(s, a));
  }
  static I PairsU8(I u, I s) { return _mm512_maddubs_epi16(u, s); }
  static I PairsS8(const Signed& q, I a) { return _mm512_maddubs_epi16(q.abs, SignOf(q, a)); }

  static I Per32Scales(const __m128i* words) {
    return Join(_mm256_set_m128i(words[0], words[0]), _mm256_set_m128i(words[1], words[1]));
  }
  static I Per32Scale(I scales, int j) {
    const int16_t idx = static_cast<int16_t>((2 * j) | ((2 * j + 1) << 8));
    return _mm512_shuffle_epi8(scales, _mm512_set1_epi16(idx));
  }
  static I Per16Scales(const __m128i* bytes) { return _mm512_castsi256_si512(_mm256_set_m128i(bytes[1], bytes[0])); }
  static I Per16Scale(I scales, int g) {
    const __m256i idx = _mm256_set_epi64x(0x0101010101010101LL * (2 * g + 1), 0x0101010101010101LL * (2 * g),
                                          0x0101010101010101LL * (2 * g + 1), 0x0101010101010101LL * (2 * g));
    return _mm512_cvtepi8_epi16(_mm256_shuffle_epi8(_mm512_castsi512_si256(scales), idx));
  }
  static I RowsWords16(const __m256i* words) { return Join(words[0], words[1]); }

  static F ZeroF() { return _mm512_setzero_ps(); }
  static F SetF(float v) { return _mm512_set1_ps(v); }
  static F RowsF(const float* d) { return _mm512_insertf32x8(_mm512_set1_ps(d[0]), _mm256_set1_ps(d[1]), 1); }
  static F RowsHalfF(const uint8_t* p, size_t stride) {
    uint16_t h0, h1;
    std::memcpy(&h0, p, 2);
    std::memcpy(&h1, p + stride, 2);
    const __m128 both = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(h0 | (static_cast<uint32_t>(h1) << 16))));
    return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0), _mm512_castps128_ps512(both));
  }
  static F Cvt(I v) { return _mm512_cvtepi32_ps(v); }
  static F Mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F Fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F AddF(F a, F b) { return _mm512_add_ps(a, b); }
  static I Madd16(I a, I b) { return _mm512_madd_epi16(a, b); }
  static float Sum8(__m256 acc) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(acc, 1), _mm256_castps256_ps128(acc));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
  }
  static void StoreSums(F acc, float* y) {
    y[0] = Sum8(_mm512_castps512_ps256(acc));
    y[1] = Sum8(_mm512_extractf32x8_ps(acc, 1));
  }

  static HI HRowsWords8(const __m128i* words) { return _mm256_set_m128i(words[1], words[0]); }
  static HI HMadd(HI a, HI b) { return _mm256_madd_epi16(a, b); }
  static HF HZero() { return _mm256_setzero_ps(); }
  static HF HRowsF(const float* d) { return _mm256_set_m128(_mm_set1_ps(d[1]), _mm_set1_ps(d[0])); }
  static HF HFma(HF a, HI b, HF c) { return _mm256_fmadd_ps(a, _mm256_cvtepi32_ps(b), c); }
  static void HSums(HF v, float* out) {
    for (int r = 0; r < 2; ++r) {
      const __m128 x = r ? _mm256_extractf128_ps(v, 1) : _mm256_castps256_ps128(v);
      const __m128 s = _mm_add_ps(x, _mm_movehl_ps(x, x));
      out[r] = _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
    }
  }
  static void HIntSums(HI v, int32_t* out) {
    alignas(32) int32_t l[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(l), v);
    out[0] = (l[0] + l[1]) + (l[2] + l[3]);
    out[1] = (l[4] + l[5]) + (l[6] + l[7]);
  }
};
#endif
using I = V::I;
using F = V::F;
constexpr int kRows = V::kRows;

// kRows weight rows. Byte `offset` of row r's block b lies at base + r * stride + b * step + (offset - head) for
// offsets past the block's head, its head (the 32-value types' fp16 scale) at head_base + r * head_stride +
// b * step. Row-major rows: stride = head_stride = row bytes, step = block bytes; packed tiles
// (ops/packed_weight.h): heads side by side, then the rests, a slot of kPackRows blocks a step. A stride of 0
// repeats one row (the unused rows of a partial last tile).
struct RowGroup {
  const uint8_t* base;
  size_t stride, step;
  const uint8_t* head_base;
  size_t head_stride, head;
  template <typename Block>
  const uint8_t* at(int64_t b, size_t offset) const {
    return base + static_cast<size_t>(b) * step + (offset - head);
  }
  const uint8_t* head_at(int64_t b) const { return head_base + static_cast<size_t>(b) * step; }
  // The K-quants and halves have no head: their whole block, by row.
  template <typename Block>
  const Block& block(int r, int64_t b) const {
    return *reinterpret_cast<const Block*>(base + static_cast<size_t>(r) * stride + static_cast<size_t>(b) * step);
  }
};

// An fp16 field at p.
HWY_INLINE float Half16At(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return Half(h);
}

// ---- 32-value blocks: Q4_0, Q5_0, Q8_0, IQ4_NL (signed values against Q8_0), Q4_1, Q5_1 (levels against Q8_1) ----
// Each decoder gives the block's values for kRows rows: Levels, unsigned (up to kMaxLevel), with Levels - kOffset
// the signed value (kOffset 0 for the affine types); Values, the signed values themselves. The unsigned levels
// go straight into the u8 x s8 pair sums, started from -kOffset times the activations' quad sums
// (QuantizedActivations::quad_sums) so the lanes come out as the signed products; that needs VNNI (non-
// saturating) or levels small enough for maddubs' int16 pairs. Otherwise the signed values take ggml's |q| and
// sign(a, q) path.

struct Q4_0Decode {
  using Block = BlockQ4_0;
  using Act = BlockQ8_0;
  static constexpr int kOffset = 8, kMaxLevel = 15;
  static I Levels(const RowGroup& g, int64_t b) { return V::RowsNibbles(g.at<Block>(b, offsetof(Block, qs)), g.stride); }
  static I Values(const RowGroup& g, int64_t b) { return V::Sub8(Levels(g, b), V::Set8(kOffset)); }
};
struct Q8_0Decode {
  using Block = BlockQ8_0;
  using Act = BlockQ8_0;
  static constexpr int kOffset = 128, kMaxLevel = 255;
  static I Values(const RowGroup& g, int64_t b) { return V::Rows32(g.at<Block>(b, offsetof(Block, qs)), g.stride); }
  static I Levels(const RowGroup& g, int64_t b) { return V::Xor(Values(g, b), V::Set8(static_cast<int8_t>(0x80))); }
};
// Level - 16 is the nibble with 0xF0 ORed in where the fifth bit is clear (two's complement).
struct Q5_0Decode {
  using Block = BlockQ5_0;
  using Act = BlockQ8_0;
  static constexpr int kOffset = 16, kMaxLevel = 31;
  static I Levels(const RowGroup& g, int64_t b) {
    const I high = V::RowsBits(g.at<Block>(b, offsetof(Block, qh)), g.stride);
    return V::Or(V::RowsNibbles(g.at<Block>(b, offsetof(Block, qs)), g.stride), V::And(high, V::Set8(0x10)));
  }
  static I Values(const RowGroup& g, int64_t b) {
    const I high = V::RowsBits(g.at<Block>(b, offsetof(Block, qh)), g.stride);
    return V::Or(V::RowsNibbles(g.at<Block>(b, offsetof(Block, qs)), g.stride),
                 V::AndNot(high, V::Set8(static_cast<int8_t>(0xF0))));
  }
};
// The IQ4_NL table plus 128 as unsigned levels.
alignas(16) constexpr uint8_t kIq4nlLevels[16] = {1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241};
static_assert(kIq4nlLevels[0] == kIq4nlValues[0] + 128 && kIq4nlLevels[15] == kIq4nlValues[15] + 128);
struct IQ4NLDecode {
  using Block = BlockIQ4NL;
  using Act = BlockQ8_0;
  static constexpr int kOffset = 128, kMaxLevel = 241;
  static I Nibbles(const RowGroup& g, int64_t b) { return V::RowsNibbles(g.at<Block>(b, offsetof(Block, qs)), g.stride); }
  static I Levels(const RowGroup& g, int64_t b) {
    return V::Lookup(V::Table16(reinterpret_cast<const int8_t*>(kIq4nlLevels)), Nibbles(g, b));
  }
  static I Values(const RowGroup& g, int64_t b) { return V::Lookup(V::Table16(kIq4nlValues), Nibbles(g, b)); }
};
// GPTQ/AWQ groups (quant/int_groups.h): level - zero, zero 0..16; unsigned as level + 16 - zero (0..31).
struct I4GDecode {
  using Block = BlockI4G;
  using Act = BlockQ8_0;
  static constexpr int kOffset = 16, kMaxLevel = 31;
  static I Nibbles(const RowGroup& g, int64_t b) { return V::RowsNibbles(g.at<Block>(b, offsetof(Block, qs)), g.stride); }
  static I Zero(const RowGroup& g, int64_t b) { return V::RowsByte(g.at<Block>(b, offsetof(Block, z)), g.stride); }
  static I Levels(const RowGroup& g, int64_t b) { return V::Sub8(V::Or(Nibbles(g, b), V::Set8(16)), Zero(g, b)); }
  static I Values(const RowGroup& g, int64_t b) { return V::Sub8(Nibbles(g, b), Zero(g, b)); }
};
struct Q4_1Decode {
  using Block = BlockQ4_1;
  using Act = BlockQ8_1;
  static constexpr int kOffset = 0, kMaxLevel = 15;
  static I Levels(const RowGroup& g, int64_t b) { return V::RowsNibbles(g.at<Block>(b, offsetof(Block, qs)), g.stride); }
};
struct Q5_1Decode {
  using Block = BlockQ5_1;
  using Act = BlockQ8_1;
  static constexpr int kOffset = 0, kMaxLevel = 31;
  static I Levels(const RowGroup& g, int64_t b) {
    const I high = V::RowsBits(g.at<Block>(b, offsetof(Block, qh)), g.stride);
    return V::Or(V::RowsNibbles(g.at<Block>(b, offsetof(Block, qs)), g.stride), V::And(high, V::Set8(0x10)));
  }
};

template <typename D>
constexpr bool kHasOffsets = std::is_same_v<typename D::Act, BlockQ8_1>;
// IQ4_NL sums even and odd blocks in two chains (ggml unrolls it by two).
template <typename D>
constexpr bool kTwoChains = std::is_same_v<D, IQ4NLDecode>;

template <typename D>
constexpr bool kUseLevels = D::kOffset == 0 || V::kVnni || D::kMaxLevel <= 127;

// The exact integer lanes of one row group's block against one token's.
template <typename D>
HWY_INLINE I LegacyLanes(I levels_or_values, I act, I init) {
  if constexpr (D::kOffset == 0) return V::DotU8(V::Zero(), levels_or_values, act);
  else if constexpr (kUseLevels<D>) return V::DotU8(init, levels_or_values, act);
  else return V::DotS8(V::Zero(), levels_or_values, act);
}

// Block b of P row groups: the kernel's integer form (levels or values) and the rows' scales.
template <typename D, int P>
HWY_INLINE void DecodeLegacy(const RowGroup* groups, int64_t b, I (&q)[P], F (&dw)[P]) {
  using Block = typename D::Block;
  for (int p = 0; p < P; ++p) {
    if constexpr (kUseLevels<D>) q[p] = D::Levels(groups[p], b);
    else q[p] = D::Values(groups[p], b);
    static_assert(offsetof(Block, d) == 0, "the fp16 scale is the block's head");
    dw[p] = V::RowsHalfF(groups[p].head_at(b), groups[p].head_stride);
  }
}

// A row tile's blocks decoded once for all its token tiles (prompt batches), read back instead of decoded again.
// (Highway's aligned allocation: std::vector does not give these 64-byte vectors their alignment here.)
template <int P>
struct DecodedRows {
  struct Entry {
    I q[P];
    F dw[P];
  };
  hwy::AlignedFreeUniquePtr<Entry[]> blocks;
  size_t capacity = 0;
  void reserve(size_t n) {
    if (n > capacity) blocks = hwy::AllocateAligned<Entry>(capacity = n);
  }
};

// One block b of every (row group, token) of the tile, into acc.
template <typename D, int P, int T>
HWY_INLINE void LegacyBlock(const RowGroup* groups, const ActRow* acts, int64_t b, const DecodedRows<P>* decoded,
                            F (&acc)[P][T], float (&offsets)[P * kRows][T]) {
  using Block = typename D::Block;
  using Act = typename D::Act;
  I q[P];
  F dw[P];
  if (decoded) {
    const auto& e = decoded->blocks[static_cast<size_t>(b)];
    for (int p = 0; p < P; ++p) q[p] = e.q[p], dw[p] = e.dw[p];
  } else {
    DecodeLegacy<D, P>(groups, b, q, dw);
  }
  for (int t = 0; t < T; ++t) {
    const Act& a = reinterpret_cast<const Act*>(acts[t].blocks)[b];
    const I av = V::Act32(a.qs);
    I init = V::Zero();
    if constexpr (D::kOffset != 0 && kUseLevels<D>) init = V::NegShl(V::Act32Words(acts[t].quad_sums + 8 * b), D::kOffset);
    const F da = V::SetF(Half(a.d));
    for (int p = 0; p < P; ++p) acc[p][t] = V::Fma(V::Mul(dw[p], da), V::Cvt(LegacyLanes<D>(q[p], av, init)), acc[p][t]);
    if constexpr (kHasOffsets<D>) {
      const float s = Half(a.s);
      for (int p = 0; p < P; ++p)
        for (int r = 0; r < kRows; ++r)
          offsets[p * kRows + r][t] =
              std::fma(Half16At(groups[p].template at<Block>(b, offsetof(Block, m)) + r * groups[p].stride), s,
                       offsets[p * kRows + r][t]);
    }
  }
}

// P row groups x T tokens over n_blocks blocks: y[t * ldy + r] for row r of the tile, `rows` of them valid.
template <typename D, int P, int T>
void LegacyTile(const RowGroup* groups, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows,
                const DecodedRows<P>* decoded) {
  using Block = typename D::Block;
  using Act = typename D::Act;
  F even[P][T], odd[P][T];
  for (int p = 0; p < P; ++p)
    for (int t = 0; t < T; ++t) even[p][t] = odd[p][t] = V::ZeroF();
  float offsets[P * kRows][T] = {};
  int64_t b = 0;
  if constexpr (kTwoChains<D>) {
    for (; b + 1 < n_blocks; b += 2) {
      LegacyBlock<D, P, T>(groups, acts, b, decoded, even, offsets);
      LegacyBlock<D, P, T>(groups, acts, b + 1, decoded, odd, offsets);
    }
  } else {
    for (; b < n_blocks; ++b) LegacyBlock<D, P, T>(groups, acts, b, decoded, even, offsets);
  }
  for (int p = 0; p < P; ++p)
    for (int t = 0; t < T; ++t) {
      float sums[kRows];
      V::StoreSums(kTwoChains<D> ? V::AddF(even[p][t], odd[p][t]) : even[p][t], sums);
      for (int r = 0; r < kRows && p * kRows + r < rows; ++r) {
        float v = sums[r];
        if constexpr (kHasOffsets<D>) v += offsets[p * kRows + r][t];
        if constexpr (kTwoChains<D>) {
          // An odd last block, in scalar as ggml's tail loop.
          for (int64_t bt = b; bt < n_blocks; ++bt) {
            const uint8_t* qs = groups[p].template at<Block>(bt, offsetof(Block, qs)) + r * groups[p].stride;
            const Act& a = reinterpret_cast<const Act*>(acts[t].blocks)[bt];
            int32_t s = 0;
            for (int j = 0; j < 16; ++j)
              s += a.qs[j] * kIq4nlValues[qs[j] & 0xF] + a.qs[j + 16] * kIq4nlValues[qs[j] >> 4];
            v = std::fma(Half(a.d) * Half16At(groups[p].head_at(bt) + r * groups[p].head_stride), static_cast<float>(s), v);
          }
        }
        y[static_cast<size_t>(t) * ldy + static_cast<size_t>(p * kRows + r)] = v;
      }
    }
}

// ---- 256-value super-blocks against Q8_K ----
// A decoder gives, per row group and super-block: Prepare (scales, d), Values(j) for each 32-value group j,
// Scale(j) (int16 words: the group's integer scales in each lane's place), Finish (the block's float terms) and
// Sums (the outputs at the end).

HWY_INLINE __m128i Words8(const uint8_t* bytes) {
  return _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes)));
}

struct KAcc {  // the float state of one (row group, token)
  F main;
  V::HF mins4;         // Q4_K: four lanes per row
  float mins1[kRows];  // Q5_K: one float per row
};

// Q4_K / Q5_K: eight 32-value sub-blocks with 6-bit scales and mins (see dot_reference.cc for the mins' order).
template <bool kQ5>
struct K4Decode {
  using Block = std::conditional_t<kQ5, BlockQ5K, BlockQ4K>;
  static constexpr bool kSigned = false;
  struct Setup {
    I scales;
    V::HI mins;
    float d[kRows], dmin[kRows];
  };
  static void Prepare(const RowGroup& g, int64_t b, Setup& s) {
    __m128i sc[kRows], mn[kRows];
    for (int r = 0; r < kRows; ++r) {
      const Block& w = g.template block<Block>(r, b);
      alignas(16) uint8_t scales_mins[16];
      kquant::unpack_scales_mins_k4(w.scales, scales_mins);
      sc[r] = Words8(scales_mins);
      mn[r] = Words8(scales_mins + 8);
      s.d[r] = Half(w.d);
      s.dmin[r] = Half(w.dmin);
    }
    s.scales = V::Per32Scales(sc);
    s.mins = V::HRowsWords8(mn);
  }
  static I Values(const RowGroup& g, int64_t b, int j, const Setup&) {
    const I bits = V::Rows32(g.at<Block>(b, offsetof(Block, qs) + 32 * (j / 2)), g.stride);
    I v = j % 2 ? V::And(V::Shr16<4>(bits), V::Set8(0x0F)) : V::And(bits, V::Set8(0x0F));
    if constexpr (kQ5) {
      const I high = V::Rows32(g.at<Block>(b, offsetof(BlockQ5K, qh)), g.stride);
      v = V::OrWhere(v, high, static_cast<int8_t>(1 << j), 0x10);
    }
    return v;
  }
  static I Scale(const Setup& s, int j) { return V::Per32Scale(s.scales, j); }
  // The activations' eight sub-block sums S_j = bsums[2j] + bsums[2j+1] as int16 words, in every row's place.
  static V::HI TokenSums(const BlockQ8K& a) {
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 8));
    const __m128i s = _mm_hadd_epi16(lo, hi);
    const __m128i both[2] = {s, s};
    return V::HRowsWords8(both);
  }
  static void Finish(const Setup& s, const BlockQ8K& a, I sumi, KAcc& acc) {
    float d[kRows], dmin[kRows];
    for (int r = 0; r < kRows; ++r) d[r] = a.d * s.d[r], dmin[r] = -a.d * s.dmin[r];
    const V::HI prod = V::HMadd(s.mins, TokenSums(a));
    if constexpr (kQ5) {
      int32_t total[kRows];
      V::HIntSums(prod, total);
      for (int r = 0; r < kRows; ++r) acc.mins1[r] = std::fma(dmin[r], static_cast<float>(total[r]), acc.mins1[r]);
    } else {
      acc.mins4 = V::HFma(V::HRowsF(dmin), prod, acc.mins4);
    }
    acc.main = V::Fma(V::RowsF(d), V::Cvt(sumi), acc.main);
  }
  static void Sums(const KAcc& acc, float* out) {
    V::StoreSums(acc.main, out);
    float m[kRows];
    if constexpr (kQ5) {
      for (int r = 0; r < kRows; ++r) m[r] = acc.mins1[r];
    } else {
      V::HSums(acc.mins4, m);
    }
    for (int r = 0; r < kRows; ++r) out[r] += m[r];
  }
};

// Decoders whose float part is only d * sum (Q3_K, Q6_K, IQ4_XS).
struct PlainK {
  struct Setup {
    I scales;
    float d[kRows];
  };
  static void Finish(const Setup& s, const BlockQ8K& a, I sumi, KAcc& acc) {
    float d[kRows];
    for (int r = 0; r < kRows; ++r) d[r] = a.d * s.d[r];
    acc.main = V::Fma(V::RowsF(d), V::Cvt(sumi), acc.main);
  }
  static void Sums(const KAcc& acc, float* out) { V::StoreSums(acc.main, out); }
};

// Q6_K: sixteen 16-value sub-blocks with int8 scales, values -32..31.
struct Q6KDecode : PlainK {
  using Block = BlockQ6K;
  static constexpr bool kSigned = true;
  static void Prepare(const RowGroup& g, int64_t b, Setup& s) {
    __m128i sc[kRows];
    for (int r = 0; r < kRows; ++r) {
      const Block& w = g.template block<Block>(r, b);
      sc[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales));
      s.d[r] = Half(w.d);
    }
    s.scales = V::Per16Scales(sc);
  }
  // Group j = 4 * half + k: low nibbles of ql[0:32] (k=0) / ql[32:64] (k=1), high nibbles (k=2, 3), with bits
  // 2k, 2k+1 of qh[0:32] on top; minus 32.
  static I Values(const RowGroup& g, int64_t b, int j, const Setup&) {
    const int half = j / 4, k = j % 4;
    const I ql = V::Rows32(g.at<Block>(b, offsetof(Block, ql) + 64 * half + 32 * (k % 2)), g.stride);
    const I qh = V::Rows32(g.at<Block>(b, offsetof(Block, qh) + 32 * half), g.stride);
    const I low = k < 2 ? V::And(ql, V::Set8(0x0F)) : V::And(V::Shr16<4>(ql), V::Set8(0x0F));
    const I high = V::And(V::ShrBytes(qh, 2 * k), V::Set8(3));
    return V::Sub8(V::Or(low, V::Shl16<4>(high)), V::Set8(32));
  }
  static I Scale(const Setup& s, int j) { return V::Per16Scale(s.scales, j); }
};

// Q3_K: sixteen 16-value sub-blocks with 6-bit scales biased by 32, values -4..3.
struct Q3KDecode : PlainK {
  using Block = BlockQ3K;
  static constexpr bool kSigned = true;
  static void Prepare(const RowGroup& g, int64_t b, Setup& s) {
    __m128i sc[kRows];
    for (int r = 0; r < kRows; ++r) {
      const Block& w = g.template block<Block>(r, b);
      alignas(16) uint8_t codes[16];
      kquant::unpack_scale_codes_q3_k(w.scales, codes);
      sc[r] = _mm_sub_epi8(_mm_load_si128(reinterpret_cast<const __m128i*>(codes)), _mm_set1_epi8(32));
      s.d[r] = Half(w.d);
    }
    s.scales = V::Per16Scales(sc);
  }
  // Group j: bits 2(j%4), 2(j%4)+1 of qs[32 * (j/4) ...], minus 4 where bit j of hmask is clear.
  static I Values(const RowGroup& g, int64_t b, int j, const Setup&) {
    const I qs = V::Rows32(g.at<Block>(b, offsetof(Block, qs) + 32 * (j / 4)), g.stride);
    const I hm = V::Rows32(g.at<Block>(b, offsetof(Block, hmask)), g.stride);
    const I low = V::And(V::ShrBytes(qs, 2 * (j % 4)), V::Set8(3));
    return V::SubWhereNot(low, hm, static_cast<int8_t>(1 << j), 4);
  }
  static I Scale(const Setup& s, int j) { return V::Per16Scale(s.scales, j); }
};

// Q2_K: sixteen 16-value sub-blocks with 4-bit scales and mins, levels 0..3.
struct Q2KDecode {
  using Block = BlockQ2K;
  static constexpr bool kSigned = false;
  struct Setup {
    I scales;
    I mins;  // sixteen int16 mins per row
    float d[kRows], dmin[kRows];
  };
  static void Prepare(const RowGroup& g, int64_t b, Setup& s) {
    __m128i sc[kRows];
    __m256i mn[kRows];
    for (int r = 0; r < kRows; ++r) {
      const Block& w = g.template block<Block>(r, b);
      const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales));
      sc[r] = _mm_and_si128(packed, _mm_set1_epi8(0x0F));
      mn[r] = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F)));
      s.d[r] = Half(w.d);
      s.dmin[r] = Half(w.dmin);
    }
    s.scales = V::Per16Scales(sc);
    s.mins = V::RowsWords16(mn);
  }
  static I Values(const RowGroup& g, int64_t b, int j, const Setup&) {
    const I qs = V::Rows32(g.at<Block>(b, offsetof(Block, qs) + 32 * (j / 4)), g.stride);
    return V::And(V::ShrBytes(qs, 2 * (j % 4)), V::Set8(3));
  }
  static I Scale(const Setup& s, int j) { return V::Per16Scale(s.scales, j); }
  static void Finish(const Setup& s, const BlockQ8K& a, I sumi, KAcc& acc) {
    float d[kRows], dmin[kRows];
    for (int r = 0; r < kRows; ++r) d[r] = a.d * s.d[r], dmin[r] = -a.d * s.dmin[r];
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums));
    const __m256i both[2] = {bsums, bsums};
    const I prod = V::Madd16(s.mins, V::RowsWords16(both));
    acc.main = V::Fma(V::RowsF(dmin), V::Cvt(prod), acc.main);
    acc.main = V::Fma(V::RowsF(d), V::Cvt(sumi), acc.main);
  }
  static void Sums(const KAcc& acc, float* out) { V::StoreSums(acc.main, out); }
};

// IQ4_XS: eight 32-value sub-blocks with 6-bit scales biased by 32, IQ4_NL table values.
struct IQ4XSDecode : PlainK {
  using Block = BlockIQ4XS;
  static constexpr bool kSigned = true;
  static void Prepare(const RowGroup& g, int64_t b, Setup& s) {
    __m128i sc[kRows];
    for (int r = 0; r < kRows; ++r) {
      const Block& w = g.template block<Block>(r, b);
      // Code j = nibble j of scales_l | bits 2j, 2j+1 of scales_h << 4, spread into byte j; the scale is code - 32.
      uint32_t low;
      std::memcpy(&low, w.scales_l, 4);
      const uint64_t codes = _pdep_u64(low, 0x0F0F0F0F0F0F0F0FULL) | (_pdep_u64(w.scales_h, 0x0303030303030303ULL) << 4);
      sc[r] = _mm_sub_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(codes))), _mm_set1_epi16(32));
      s.d[r] = Half(w.d);
    }
    s.scales = V::Per32Scales(sc);
  }
  static I Values(const RowGroup& g, int64_t b, int j, const Setup&) {
    return V::Lookup(V::Table16(kIq4nlValues), V::RowsNibbles(g.at<Block>(b, offsetof(Block, qs) + 16 * j), g.stride));
  }
  static I Scale(const Setup& s, int j) { return V::Per32Scale(s.scales, j); }
};

template <typename D, int P, int T>
void KTile(const RowGroup* groups, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
  KAcc acc[P][T];
  for (auto& row : acc)
    for (KAcc& a : row) {
      a.main = V::ZeroF();
      a.mins4 = V::HZero();
      for (float& m : a.mins1) m = 0;
    }
  for (int64_t b = 0; b < n_blocks; ++b) {
    typename D::Setup setup[P];
    for (int p = 0; p < P; ++p) D::Prepare(groups[p], b, setup[p]);
    I sumi[P][T];
    for (auto& row : sumi)
      for (I& s : row) s = V::Zero();
    // Unrolled, so each group's shifts and shuffles are constants.
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      I q[P], scale[P];
      for (int p = 0; p < P; ++p) {
        q[p] = D::Values(groups[p], b, j, setup[p]);
        scale[p] = D::Scale(setup[p], j);
      }
      if constexpr (D::kSigned) {
        typename V::Signed qs[P];
        for (int p = 0; p < P; ++p) qs[p] = V::PrepareSigned(q[p]);
        for (int t = 0; t < T; ++t) {
          const I av = V::Act32(reinterpret_cast<const BlockQ8K*>(acts[t].blocks)[b].qs + 32 * j);
          for (int p = 0; p < P; ++p) sumi[p][t] = V::AddScaled(sumi[p][t], V::PairsS8(qs[p], av), scale[p]);
        }
      } else {
        for (int t = 0; t < T; ++t) {
          const I av = V::Act32(reinterpret_cast<const BlockQ8K*>(acts[t].blocks)[b].qs + 32 * j);
          for (int p = 0; p < P; ++p) sumi[p][t] = V::AddScaled(sumi[p][t], V::PairsU8(q[p], av), scale[p]);
        }
      }
    }
    for (int p = 0; p < P; ++p)
      for (int t = 0; t < T; ++t) D::Finish(setup[p], reinterpret_cast<const BlockQ8K*>(acts[t].blocks)[b], sumi[p][t], acc[p][t]);
  }
  for (int p = 0; p < P; ++p)
    for (int t = 0; t < T; ++t) {
      float sums[kRows];
      D::Sums(acc[p][t], sums);
      for (int r = 0; r < kRows && p * kRows + r < rows; ++r)
        y[static_cast<size_t>(t) * ldy + static_cast<size_t>(p * kRows + r)] = sums[r];
    }
}

// ---- F16 / BF16 against activations in the same type: eight float lanes per output, one FMA per value ----
template <bool kBf16>
struct HalfFloat {
  static __m256 Eight(__m128i h) {
    if constexpr (kBf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    else return _mm256_cvtph_ps(h);
  }
  static F RowsF8(const uint8_t* p, size_t stride) {
    const __m256 r0 = Eight(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#if HWY_TARGET == HWY_AVX2
    return r0;
#else
    return _mm512_insertf32x8(_mm512_castps256_ps512(r0), Eight(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + stride))), 1);
#endif
  }
  static F Act8(const uint8_t* p) {
    const __m256 f = Eight(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#if HWY_TARGET == HWY_AVX2
    return f;
#else
    return _mm512_insertf32x8(_mm512_castps256_ps512(f), f, 1);
#endif
  }
};

template <bool kBf16, int P, int T>
void HalfTile(const RowGroup* groups, const ActRow* acts, int64_t n, float* y, size_t ldy, int rows) {
  F acc[P][T];
  for (auto& row : acc)
    for (F& a : row) a = V::ZeroF();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    F w[P];
    for (int p = 0; p < P; ++p) w[p] = HalfFloat<kBf16>::RowsF8(groups[p].at<uint16_t>(i / 8, 0), groups[p].stride);
    for (int t = 0; t < T; ++t) {
      const F a = HalfFloat<kBf16>::Act8(acts[t].blocks + 2 * i);
      for (int p = 0; p < P; ++p) acc[p][t] = V::Fma(w[p], a, acc[p][t]);
    }
  }
  auto f = [](const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return kBf16 ? bf16_to_f32(v) : f16_to_f32(v);
  };
  for (int p = 0; p < P; ++p)
    for (int t = 0; t < T; ++t) {
      float sums[kRows];
      V::StoreSums(acc[p][t], sums);
      for (int r = 0; r < kRows && p * kRows + r < rows; ++r) {
        float tail = 0;
        for (int64_t k = i; k < n; ++k)
          tail = std::fma(f(groups[p].base + static_cast<size_t>(r) * groups[p].stride + 2 * k), f(acts[t].blocks + 2 * k), tail);  // row-major only
        y[static_cast<size_t>(t) * ldy + static_cast<size_t>(p * kRows + r)] = sums[r] + tail;
      }
    }
}

// Every token of one row tile, in tiles of up to kT tokens (Family::Run<P, T> does one).
template <class Family, int kP, int kT, typename... Extra>
HWY_INLINE void ForTokenTiles(const RowGroup* groups, const ActRow* acts, int64_t n, int64_t n_tokens, float* y,
                              size_t ldy, int rows, const Extra&... extra) {
  for (int64_t t = 0; t < n_tokens; t += kT) {
    const int nt = static_cast<int>(std::min<int64_t>(kT, n_tokens - t));
    float* out = y + static_cast<size_t>(t) * ldy;
    const ActRow* a = acts + t;
    if constexpr (kT == 1) {
      Family::template Run<kP, 1>(groups, a, n, out, ldy, rows, extra...);
    } else {
      switch (nt) {
        case 1: Family::template Run<kP, 1>(groups, a, n, out, ldy, rows, extra...); break;
        case 2: Family::template Run<kP, 2>(groups, a, n, out, ldy, rows, extra...); break;
        case 3: if constexpr (kT >= 3) Family::template Run<kP, 3>(groups, a, n, out, ldy, rows, extra...); break;
        default: if constexpr (kT >= 4) Family::template Run<kP, 4>(groups, a, n, out, ldy, rows, extra...); break;
      }
    }
  }
}

// The tile families, each one row tile over every token; n is the row length in values.
template <typename D>
struct Legacy {
  // AVX-512 keeps 4 x 4 (row pair, token) accumulators in its 32 registers; AVX2 2 x 4 in its 16.
  static constexpr int kBatchGroups = kRows == 1 ? 2 : 4, kBatchTokens = 4;
  template <int P, int T>
  static void Run(const RowGroup* g, const ActRow* a, int64_t n, float* y, size_t ldy, int rows,
                  const DecodedRows<P>* decoded) {
    LegacyTile<D, P, T>(g, a, n / 32, y, ldy, rows, decoded);
  }
  // With more than one token tile, the blocks are decoded once into `scratch` and read back for each.
  template <int kP, int kT>
  static void RowTile(const RowGroup* g, const ActRow* acts, int64_t n, int64_t n_tokens, float* y, size_t ldy,
                      int rows, DecodedRows<kP>& scratch) {
    const DecodedRows<kP>* decoded = nullptr;
    if (n_tokens > kT) {
      scratch.reserve(static_cast<size_t>(n / 32));
      for (int64_t b = 0; b < n / 32; ++b) DecodeLegacy<D, kP>(g, b, scratch.blocks[static_cast<size_t>(b)].q, scratch.blocks[static_cast<size_t>(b)].dw);
      decoded = &scratch;
    }
    ForTokenTiles<Legacy, kP, kT>(g, acts, n, n_tokens, y, ldy, rows, decoded);
  }
};
template <typename D>
struct Super {
  // Each (row group, token) holds integer and float sums (and Q4_K's mins): fewer in flight.
  static constexpr int kBatchGroups = 2, kBatchTokens = kRows == 1 ? 2 : 4;
  template <int P, int T>
  static void Run(const RowGroup* g, const ActRow* a, int64_t n, float* y, size_t ldy, int rows) {
    KTile<D, P, T>(g, a, n / 256, y, ldy, rows);
  }
  template <int kP, int kT>
  static void RowTile(const RowGroup* g, const ActRow* acts, int64_t n, int64_t n_tokens, float* y, size_t ldy,
                      int rows, DecodedRows<kP>&) {
    ForTokenTiles<Super, kP, kT>(g, acts, n, n_tokens, y, ldy, rows);
  }
};
template <bool kBf16>
struct Halves {
  static constexpr int kBatchGroups = 2, kBatchTokens = kRows == 1 ? 2 : 4;
  template <int P, int T>
  static void Run(const RowGroup* g, const ActRow* a, int64_t n, float* y, size_t ldy, int rows) {
    HalfTile<kBf16, P, T>(g, a, n, y, ldy, rows);
  }
  template <int kP, int kT>
  static void RowTile(const RowGroup* g, const ActRow* acts, int64_t n, int64_t n_tokens, float* y, size_t ldy,
                      int rows, DecodedRows<kP>&) {
    ForTokenTiles<Halves, kP, kT>(g, acts, n, n_tokens, y, ldy, rows);
  }
};

// Rows [r0, r1) in tiles of kP groups (kP * kRows rows), each over every token: a tile's weight rows stay in L1
// (or are decoded once) while the tokens pass. In a partial last tile the groups past the valid rows repeat the
// last valid row and are not stored.
template <class Family, int kP, int kT>
void RunTiles(const uint8_t* data, const WeightLayout& w, const ActRow* act_rows, int64_t n, int64_t n_tokens, int64_t r0, int64_t r1,
              int64_t n_out, float* y) {
  constexpr int kTileRows = kP * kRows;
  static_assert(kPackRows % kTileRows == 0, "a kernel tile lies inside one packed tile");
  DecodedRows<kP> scratch;
  for (int64_t r = r0; r < r1; r += kTileRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kTileRows, r1 - r));
    const int64_t last_valid = r + rows - 1;
    RowGroup groups[kP];
    for (int p = 0; p < kP; ++p) {
      const int64_t first = std::min(r + p * kRows, last_valid);
      const uint8_t* head = data + w.byte_offset(first, 0, 0);
      const uint8_t* rest = data + w.byte_offset(first, 0, w.head);
      if (first < w.packed_rows) {
        groups[p] = {rest, w.unit - w.head, kPackRows * w.unit, head, w.head, w.head};
      } else {
        const size_t stride = first + 1 <= last_valid ? w.row_bytes : 0;
        groups[p] = {rest, stride, w.unit, head, stride, w.head};
      }
    }
    Family::template RowTile<kP, kT>(groups, act_rows, n, n_tokens, y + r, static_cast<size_t>(n_out), rows, scratch);
  }
}

// Tile shapes: generation (one token) keeps four row groups in flight; batches reuse each decoded block for
// several tokens (each family's kBatchGroups x kBatchTokens).
constexpr int kGenGroups = 4;

template <class Family>
void Rows(const uint8_t* data, const WeightLayout& w, const ActRow* acts, int64_t n, int64_t nt, int64_t r0, int64_t r1,
          int64_t n_out, float* y) {
  if (nt == 1) RunTiles<Family, kGenGroups, 1>(data, w, acts, n, nt, r0, r1, n_out, y);
  else RunTiles<Family, Family::kBatchGroups, Family::kBatchTokens>(data, w, acts, n, nt, r0, r1, n_out, y);
}
#endif  // wide targets

// One entry for every weight type: rows [r0, r1) of W times every token's quantized activations.
void MatmulRows(DType type, const uint8_t* data, const WeightLayout& w, const ActRow* acts, int64_t n, int64_t nt,
                int64_t r0, int64_t r1, int64_t n_out, float* y) {
#if LOWBIT_WIDE_KERNELS
  switch (type) {
    case DType::Q4_0: return Rows<Legacy<Q4_0Decode>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::Q5_0: return Rows<Legacy<Q5_0Decode>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::Q8_0: return Rows<Legacy<Q8_0Decode>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::IQ4_NL: return Rows<Legacy<IQ4NLDecode>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::I4G: return Rows<Legacy<I4GDecode>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::Q4_1: return Rows<Legacy<Q4_1Decode>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::Q5_1: return Rows<Legacy<Q5_1Decode>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::Q2_K: return Rows<Super<Q2KDecode>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::Q3_K: return Rows<Super<Q3KDecode>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::Q4_K: return Rows<Super<K4Decode<false>>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::Q5_K: return Rows<Super<K4Decode<true>>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::Q6_K: return Rows<Super<Q6KDecode>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::IQ4_XS: return Rows<Super<IQ4XSDecode>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::F16: return Rows<Halves<false>>(data, w, acts, n, nt, r0, r1, n_out, y);
    case DType::BF16: return Rows<Halves<true>>(data, w, acts, n, nt, r0, r1, n_out, y);
    default: break;
  }
#endif
  // Narrow targets (and any type without a tile): the reference, output by output.
  const RowDotFn dot = reference_row_dot(type);
  std::vector<uint8_t> row(w.row_bytes);
  for (int64_t r = r0; r < r1; ++r) {
    copy_row(data, w, r, row.data());
    for (int64_t t = 0; t < nt; ++t) y[t * n_out + r] = dot(row.data(), acts[t].blocks, n);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <omp.h>

#include <algorithm>
#include <vector>

#include "ops/activation_quant.h"

namespace lowbit {

HWY_EXPORT(MatmulRows);

bool simd_matmul_supports(DType type) { return reference_row_dot(type) != nullptr; }

void matmul_simd_shared_input(std::span<const MatmulTarget> targets, const float* x, int64_t n_tokens, int threads) {
  // The activations, once per activation type among the weights.
  std::vector<std::pair<DType, QuantizedActivations>> acts;
  std::vector<std::vector<ActRow>> act_rows;
  struct Work {
    DType type;
    const uint8_t* data;
    WeightLayout layout;
    int64_t n_in, n_out;
    size_t act;  // index into act_rows
    float* y;
  };
  std::vector<Work> work;
  for (const MatmulTarget& t : targets) {
    const Tensor& w = *t.w;
    const DType at = activation_type(w.type());
    const int64_t n_in = w.ne()[0];
    size_t i = 0;
    while (i < acts.size() && !(acts[i].first == at && acts[i].second.row_bytes() == row_bytes(at, n_in))) ++i;
    if (i == acts.size()) {
      acts.emplace_back(at, quantize_activations(at, x, n_tokens, n_in, threads));
      act_rows.emplace_back(static_cast<size_t>(n_tokens));
      for (int64_t k = 0; k < n_tokens; ++k) act_rows.back()[static_cast<size_t>(k)] = acts.back().second.kernel_row(k);
    }
    work.push_back({w.type(), w.data, weight_layout(w), n_in, w.info.n_rows(), i, t.y});
  }
  // Fixed chunks of rows (whole packed tiles) over all the weights, each computed by one thread: the bits do not
  // depend on the thread count. Each thread takes one contiguous range of chunks, so it reads one stream.
  constexpr int64_t kChunk = 2 * kPackRows;
  std::vector<std::pair<size_t, int64_t>> chunks;  // (weight, first row)
  for (size_t i = 0; i < work.size(); ++i)
    for (int64_t r = 0; r < work[i].n_out; r += kChunk) chunks.emplace_back(i, r);
  const auto rows = HWY_DYNAMIC_DISPATCH(MatmulRows);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (size_t c = 0; c < chunks.size(); ++c) {
    const Work& wk = work[chunks[c].first];
    const int64_t r0 = chunks[c].second;
    rows(wk.type, wk.data, wk.layout, act_rows[wk.act].data(), wk.n_in, n_tokens, r0, std::min(wk.n_out, r0 + kChunk), wk.n_out, wk.y);
  }
}

void matmul_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads) {
  const MatmulTarget one{&w, y};
  matmul_simd_shared_input(std::span<const MatmulTarget>(&one, 1), x, n_tokens, threads);
}

}  // namespace lowbit
#endif  // HWY_ONCE
