// The SIMD primitives of the matmul kernels, once per vector width, and the row-group addressing they share.
//
// Every kernel but F16/BF16's puts one weight row in each 32-bit lane (V::kLanes rows a register: 4 on SSE4, 8 on
// AVX2, 16 on AVX-512) and broadcasts the activations, so every instruction works for kLanes outputs. V::kRows (1 on
// SSE4 and AVX2, 2 on AVX-512) is left from the earlier tiles that held whole rows side by side; it now only sets
// how RunTiles groups the rows it addresses (RowGroup, kLanes / kRows groups a tile). Highway 1.0.3 has no int8 dot
// products, so the x86 intrinsics appear directly; everything else a kernel needs goes through V.
//
// Highway 1.0.3's AVX3_DL target enables AVX-VNNI but not AVX512-VNNI; each of these files adds the latter and
// uses only the 512-bit (EVEX-only) VNNI forms: with both enabled GCC encodes the 256-bit vpdpbusd as VEX, which
// AVX-512 CPUs without AVX-VNNI (Ice Lake, Zen 4) do not have. tests/ops/vex_vnni_confined.sh checks the binary.
// They also enable AVX512-BF16 for V::DotBf16Pairs, which only the BF16 tile for CPUs that have it calls; GCC 12
// emits bf16 instructions for their intrinsics alone, so the rest of the target still runs on Ice Lake
// (tests/ops/bf16_confined.sh checks the binary). And GFNI, for V::ByteField: Highway 1.0.3 does not require it of
// AVX3_DL, so ops/simd_matmul.cc turns that target off on a CPU without it (none with the target's other features).
// Highway 1.0.3 has no target for AVX2 with AVX-VNNI (vpdpbusd and vpdpwssd on 256-bit vectors, VEX-encoded:
// Intel's cores since Alder Lake, which lack AVX-512, and Zen 5), so ops/simd_matmul_avx_vnni.cc builds the AVX2
// pass a second time with LOWBIT_AVX_VNNI defined, in a namespace of its own: this V then takes the VNNI forms.
// Included by ops/simd_matmul-inl.h once per Highway target and once more for AVX2 with AVX-VNNI, hence the
// toggling guard.
#if defined(LOWBIT_OPS_SIMD_VECTORS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWBIT_OPS_SIMD_VECTORS_INL_H_
#undef LOWBIT_OPS_SIMD_VECTORS_INL_H_
#else
#define LOWBIT_OPS_SIMD_VECTORS_INL_H_
#endif

#include <array>
#include <cmath>
#include <cstring>

#include "core/f16_bits-inl.h"
#include "core/float_formats.h"
#include "ops/packed_weight.h"
#include "quant/legacy_quants.h"
#include "util/stream_prefetch.h"

// The instructions a pass adds to its Highway target's (the note at the top), after HWY_BEFORE_NAMESPACE() in each
// of the kernels' files: defined anew on each pass, which enters this file before the others.
#undef LOWBIT_PASS_INSTRUCTIONS
#if HWY_TARGET == HWY_AVX3_DL
#define LOWBIT_PASS_INSTRUCTIONS() _Pragma("GCC target(\"avx512vnni,avx512bf16,gfni\")")
#elif defined(LOWBIT_AVX_VNNI)
#define LOWBIT_PASS_INSTRUCTIONS() _Pragma("GCC target(\"avxvnni,gfni\")")
#else
#define LOWBIT_PASS_INSTRUCTIONS()
#endif

HWY_BEFORE_NAMESPACE();
LOWBIT_PASS_INSTRUCTIONS()
namespace lowbit {
namespace HWY_NAMESPACE {

// This file is compiled once per target, so the switch is reset on each pass: the x86 targets from SSE4 up have the
// kernels; the others (SSSE3, scalar, non-x86) take the reference.
#undef LOWBIT_TILE_KERNELS
#if HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define LOWBIT_TILE_KERNELS 1

#if HWY_TARGET == HWY_SSE4
HWY_INLINE float Half(uint16_t h) { return f16_to_f32(h); }  // no F16C
#else
HWY_INLINE float Half(uint16_t h) { return _cvtsh_ss(h); }
#endif

// The vpshufb pattern that moves byte k of each 32-bit lane of a 128-bit block to the lane's low byte, zeroing the
// rest.
HWY_INLINE __m128i LaneBytePattern(int k) {
  const auto lane = [k](int i) { return static_cast<int>(0x80808000u | static_cast<uint32_t>(4 * i + k)); };
  return _mm_set_epi32(lane(3), lane(2), lane(1), lane(0));
}

// The vpshufb pattern that puts bytes k and k_high of each 32-bit lane of a 128-bit block, zero-extended, in its
// low and high words (by default byte k in both).
HWY_INLINE __m128i LaneByteWordsPattern(int k, int k_high) {
  const auto lane = [k, k_high](int i) {
    const auto word = [i](int b) { return static_cast<uint32_t>(4 * i + b) | 0x8000u; };
    return static_cast<int>(word(k) | word(k_high) << 16);
  };
  return _mm_set_epi32(lane(3), lane(2), lane(1), lane(0));
}
HWY_INLINE __m128i LaneByteWordsPattern(int k) { return LaneByteWordsPattern(k, k); }

// The vpshufb pattern that gives each 32-bit lane of a 128-bit block its bytes b0, b1, b2, b3.
HWY_INLINE __m128i LaneBytesPattern(int b0, int b1, int b2, int b3) {
  const auto lane = [&](int i) {
    const auto at = [i](int b) { return static_cast<uint32_t>(4 * i + b); };
    return static_cast<int>(at(b0) | at(b1) << 8 | at(b2) << 16 | at(b3) << 24);
  };
  return _mm_set_epi32(lane(3), lane(2), lane(1), lane(0));
}
// The vpshufb pattern that spreads four three-byte heads (bytes 3i..3i+2) of a 128-bit block over its 32-bit lanes.
HWY_INLINE __m128i Heads3Pattern() { return _mm_setr_epi8(0, 1, 2, -128, 3, 4, 5, -128, 6, 7, 8, -128, 9, 10, 11, -128); }
// The vpshufb pattern that copies byte k of each 32-bit lane of a 128-bit block to all four of the lane's bytes.
HWY_INLINE __m128i LaneByteCopiesPattern(int k) {
  const auto lane = [k](int i) { return static_cast<int>(0x01010101u * static_cast<uint32_t>(4 * i + k)); };
  return _mm_set_epi32(lane(3), lane(2), lane(1), lane(0));
}

// The IQ4_NL table's magnitudes; its values are negative exactly at indices 0..7 (bit 3 clear).
alignas(16) constexpr int8_t kIq4nlMagnitudes[16] = {127, 104, 83, 65, 49, 35, 22, 10, 1, 13, 25, 38, 53, 69, 89, 113};
constexpr bool Iq4nlSignsByBit3() {
  for (int i = 0; i < 16; ++i)
    if ((kIq4nlValues[i] < 0) != (i < 8) || kIq4nlMagnitudes[i] != (kIq4nlValues[i] < 0 ? -kIq4nlValues[i] : kIq4nlValues[i])) return false;
  return true;
}
static_assert(Iq4nlSignsByBit3());
// The IQ4_NL table's values plus 128 (1..241), as bytes: vpdpbusd's unsigned operand (IQ4XSLanes' whole sums).
alignas(16) constexpr std::array<int8_t, 16> kIq4nlOffsetLevels = [] {
  std::array<int8_t, 16> levels{};
  for (int i = 0; i < 16; ++i) levels[i] = static_cast<int8_t>(static_cast<uint8_t>(kIq4nlValues[i] + 128));
  return levels;
}();

// GFNI's affine map of every byte (vgf2p8affineqb): row 7 - j of the qword matrix picks the input bits XORed into
// output bit j, so BitMove(from, to) is the row that copies one bit, and FieldMatrix(shift, mask) the map that moves
// a byte's bits shift.. under mask down to bit 0 (V::ByteField).
constexpr uint64_t BitMove(int from, int to) { return uint64_t{1} << from << (8 * (7 - to)); }
constexpr uint64_t FieldMatrix(int shift, int mask) {
  uint64_t m = 0;
  for (int j = 0; j < 8 - shift; ++j)
    if (mask >> j & 1) m |= BitMove(shift + j, j);
  return m;
}
static_assert(FieldMatrix(0, 0xFF) == 0x0102040810204080, "the identity map");

// ---- the primitives, once per vector width: V holds kRows rows' 32 bytes / eight lanes ----
#if HWY_TARGET == HWY_AVX2
struct V {
  static constexpr int kRows = 1;
#ifdef LOWBIT_AVX_VNNI
  static constexpr bool kVnni = true;
#else
  static constexpr bool kVnni = false;
#endif
  using I = __m256i;
  using F = __m256;

  static I Zero() { return _mm256_setzero_si256(); }
  static I Set8(int8_t v) { return _mm256_set1_epi8(v); }
  static I Table16(const int8_t* t) { return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t))); }
  static I Lookup(I table, I idx) { return _mm256_shuffle_epi8(table, idx); }
  static I And(I a, I b) { return _mm256_and_si256(a, b); }
  static I Or(I a, I b) { return _mm256_or_si256(a, b); }
  static I Add8(I a, I b) { return _mm256_add_epi8(a, b); }
  static I Add32(I a, I b) { return _mm256_add_epi32(a, b); }
  static I Sub8(I a, I b) { return _mm256_sub_epi8(a, b); }
  static I Add16(I a, I b) { return _mm256_add_epi16(a, b); }
  static I Sub16(I a, I b) { return _mm256_sub_epi16(a, b); }
  static I Set16(int16_t v) { return _mm256_set1_epi16(v); }
  static I Xor(I a, I b) { return _mm256_xor_si256(a, b); }
  template <int kBits> static I Shr16(I a) { return _mm256_srli_epi16(a, kBits); }
  template <int kBits> static I Shl16(I a) { return _mm256_slli_epi16(a, kBits); }
  // Every byte shifted right by n (bits of the neighbouring byte enter at the top; callers mask them off).
  static I ShrBytes(I a, int n) { return _mm256_srl_epi16(a, _mm_cvtsi32_si128(n)); }
  // Every byte's bits kShift.. under kMask, moved down to bit 0, the others clear: in the AVX-VNNI pass one GFNI
  // affine map (every CPU with AVX-VNNI has GFNI; ops/simd_matmul.cc checks), else a shift and a mask. kAffine false
  // takes the shift and mask anyway, for a tile whose multiplies already crowd the ports the affine map needs.
  template <int kShift, int kMask, bool kAffine = true>
  static I ByteField(I a) {
    const I mask = _mm256_set1_epi8(static_cast<int8_t>(kMask));
    if constexpr (kShift == 0) return _mm256_and_si256(a, mask);
#ifdef LOWBIT_AVX_VNNI
    if constexpr (kAffine)
      return _mm256_gf2p8affine_epi64_epi8(a, _mm256_set1_epi64x(static_cast<int64_t>(FieldMatrix(kShift, kMask))), 0);
#endif
    return _mm256_and_si256(_mm256_srli_epi16(a, kShift), mask);
  }
  // (a & mask) | b.
  static I AndOr(I a, I mask, I b) { return _mm256_or_si256(_mm256_and_si256(a, mask), b); }

  // Exact int32 lanes of four products each, added to acc: unsigned u times signed s (without VNNI the pairs must
  // fit int16).
#ifdef LOWBIT_AVX_VNNI
  static I DotU8(I acc, I u, I s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
#else
  static I DotU8(I acc, I u, I s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
  }
#endif
  static I DotU8At(I acc, I u, const int8_t* a) { return DotU8(acc, u, BroadcastWord(a)); }
  // Signed q times signed a (|q| <= 128): |q| times a with q's sign, as ggml does.
  static I DotS8(I acc, I q, I a) { return DotU8(acc, _mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q)); }
  // Pairs of products as int16 (K-quants scale them per 16 or 32 values before widening).
  static I PairsU8(I u, I s) { return _mm256_maddubs_epi16(u, s); }
  struct Signed {  // a signed value vector prepared once for several activation vectors
    I abs, sign;
  };
  static Signed PrepareSigned(I q) { return {_mm256_sign_epi8(q, q), q}; }
  static I PairsS8(const Signed& q, I a) { return _mm256_maddubs_epi16(q.abs, _mm256_sign_epi8(a, q.sign)); }
  // The IQ4_NL values of the low (kHigh false) or high nibbles of `bytes`, prepared as PrepareSigned does.
  template <bool kHigh>
  static Signed Iq4nlSigned(I bytes) {
    const I nibbles = ByteField<kHigh ? 4 : 0, 0x0F>(bytes);
    return PrepareSigned(_mm256_shuffle_epi8(Table16(kIq4nlValues), nibbles));
  }
#ifdef LOWBIT_AVX_VNNI
  static I AddScaled(I acc, I pairs, I scales16) { return _mm256_dpwssd_avx_epi32(acc, pairs, scales16); }
#else
  static I AddScaled(I acc, I pairs, I scales16) { return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, scales16)); }
#endif
  static I Scaled(I pairs, I scales16) { return _mm256_madd_epi16(pairs, scales16); }  // AddScaled from zero
  // An accumulator's additions kept in program order: GCC otherwise rewrites a chain of adds into a tree whose
  // partial sums, with AVX2's sixteen registers, go to the stack. On the AVX2 machine the K-quant tiles' stack
  // references fell by half (Q6_K 187 -> 97, Q3_K 208 -> 115, Q4_K 87 -> 39) and their one-token and batch tiles
  // read 2-10 % faster (Q6_K the most), Q4_0 level.
  static void InOrder(I& acc) { asm("" : "+x"(acc)); }


  static F ZeroF() { return _mm256_setzero_ps(); }
  static F SetF(float v) { return _mm256_set1_ps(v); }
  static F Cvt(I v) { return _mm256_cvtepi32_ps(v); }
  static F Mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F Fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F AddF(F a, F b) { return _mm256_add_ps(a, b); }


  static void StoreF(F v, float* out) { _mm256_storeu_ps(out, v); }

  // One row per int32 / float lane, kLanes rows a register.
  static constexpr int kLanes = 8;
  static I LoadLanes(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  // LoadLanes for bytes that two instructions take: GCC otherwise reads them twice, a load for one and a memory
  // operand of the other, and Zen 1 splits each 256-bit read into two 128-bit loads over its two ports. Q4_K's
  // nibbles, read once: whole Q4_K_M generation 1.06x at -t 1 and 1.05x at -t 2 on the AVX2 machine (seven
  // rounds, each faster).
  static I LoadLanesOnce(const uint8_t* p) {
    I v = LoadLanes(p);
    asm("" : "+x"(v));
    return v;
  }
  static I SetWord(int32_t v) { return _mm256_set1_epi32(v); }
  static I BroadcastWord(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
  }
  static F LanesHalfF(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  // Eight floats at p in every eight lanes; and each eight lanes' pairwise sum ((l0 + l4) + (l2 + l6)) + ((l1 + l5) +
  // (l3 + l7)) in the eight's first lane (F16/BF16, whose rows' eight lanes are a vector's).
  static F RepeatEightF(const float* p) { return _mm256_loadu_ps(p); }
  static F PairwiseEights(F v) {
    const F s1 = _mm256_add_ps(v, _mm256_permute2f128_ps(v, v, 1));
    const F s2 = _mm256_add_ps(s1, _mm256_permute_ps(s1, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm256_add_ps(s2, _mm256_permute_ps(s2, _MM_SHUFFLE(2, 3, 0, 1)));
  }
  // The low fp16 of each lane as float.
  static F LowHalvesF(I x) {
    const __m256i lows = _mm256_and_si256(x, _mm256_set1_epi32(0xFFFF));
    return _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(lows, lows), _MM_SHUFFLE(3, 1, 2, 0))));
  }
  // Three-byte heads at p, one per lane (bytes 3i..3i+2 into lane i, its top byte zero): each 128-bit block first
  // takes the three words that hold its four heads.
  static I LanesHeads3(const uint8_t* p) {
    const __m256i words = _mm256_permutevar8x32_epi32(LoadLanes(p), _mm256_setr_epi32(0, 1, 2, 2, 3, 4, 5, 5));
    return _mm256_shuffle_epi8(words, _mm256_broadcastsi128_si256(Heads3Pattern()));
  }
  // BF16 pairs, a lane's two values one 32-bit word: the 32 bytes at p in every 256-bit half; each lane's odd
  // (high) and even (low) value as float.
  static I RepeatPairs(const uint8_t* p) { return LoadLanes(p); }
  static F OddBf16F(I x) { return _mm256_castsi256_ps(_mm256_and_si256(x, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u)))); }
  static F EvenBf16F(I x) { return _mm256_castsi256_ps(_mm256_slli_epi32(x, 16)); }
  // Each lane's two fp16 at p (low half, high half) as float.
  static void LanesHalfPairF(const uint8_t* p, F& low, F& high) {
    const __m256i x = LoadLanes(p);
    const __m256i halves = _mm256_packus_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0xFFFF)), _mm256_srli_epi32(x, 16));
    const __m256i ordered = _mm256_permute4x64_epi64(halves, _MM_SHUFFLE(3, 1, 2, 0));  // lows, then highs
    low = _mm256_cvtph_ps(_mm256_castsi256_si128(ordered));
    high = _mm256_cvtph_ps(_mm256_extracti128_si256(ordered, 1));
  }
  template <int kBits> static I ShrWords(I a) { return _mm256_srli_epi32(a, kBits); }
  static I MulLo32(I a, I b) { return _mm256_mullo_epi32(a, b); }
  // Byte k of each lane, as the lane's int32.
  static I LaneByte(I x, int k) { return _mm256_shuffle_epi8(x, _mm256_broadcastsi128_si256(LaneBytePattern(k))); }
  // Each lane's bytes rearranged by a LaneBytesPattern.
  static I LaneBytes(I x, __m128i pattern) { return _mm256_shuffle_epi8(x, _mm256_broadcastsi128_si256(pattern)); }
  // Byte k of each lane, zero-extended, in both its words.
  static HWY_INLINE I LaneByteWords(I x, int k) { return _mm256_shuffle_epi8(x, _mm256_broadcastsi128_si256(LaneByteWordsPattern(k))); }
  template <int kBits> static I Sar16(I a) { return _mm256_srai_epi16(a, kBits); }
  template <int kBits> static I Sar32(I a) { return _mm256_srai_epi32(a, kBits); }
  // The four int32 of `words` each in every lane.
  static void BroadcastWords(__m128i words, I* out) {
    out[0] = _mm256_broadcastd_epi32(words);
    out[1] = _mm256_broadcastd_epi32(_mm_srli_si128(words, 4));
    out[2] = _mm256_broadcastd_epi32(_mm_srli_si128(words, 8));
    out[3] = _mm256_broadcastd_epi32(_mm_srli_si128(words, 12));
  }
  static F SubF(F a, F b) { return _mm256_sub_ps(a, b); }
};
#elif HWY_TARGET == HWY_SSE4
// SSE4 (with SSSE3's byte shuffles and maddubs): four lanes, no FMA and no F16C. The tiles' FMAs are rounded once as
// the instruction rounds (Fma below) and fp16 is converted by integer steps, so the bits are the reference's here too.
struct V {
  static constexpr int kRows = 1;
  static constexpr bool kVnni = false;
  using I = __m128i;
  using F = __m128;

  static I Zero() { return _mm_setzero_si128(); }
  static I Set8(int8_t v) { return _mm_set1_epi8(v); }
  static I Table16(const int8_t* t) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(t)); }
  static I Lookup(I table, I idx) { return _mm_shuffle_epi8(table, idx); }
  static I And(I a, I b) { return _mm_and_si128(a, b); }
  static I Or(I a, I b) { return _mm_or_si128(a, b); }
  static I Add8(I a, I b) { return _mm_add_epi8(a, b); }
  static I Add32(I a, I b) { return _mm_add_epi32(a, b); }
  static I Sub8(I a, I b) { return _mm_sub_epi8(a, b); }
  static I Add16(I a, I b) { return _mm_add_epi16(a, b); }
  static I Sub16(I a, I b) { return _mm_sub_epi16(a, b); }
  static I Set16(int16_t v) { return _mm_set1_epi16(v); }
  static I Xor(I a, I b) { return _mm_xor_si128(a, b); }
  template <int kBits> static I Shr16(I a) { return _mm_srli_epi16(a, kBits); }
  template <int kBits> static I Shl16(I a) { return _mm_slli_epi16(a, kBits); }
  static I ShrBytes(I a, int n) { return _mm_srl_epi16(a, _mm_cvtsi32_si128(n)); }
  template <int kShift, int kMask, bool kAffine = true>
  static I ByteField(I a) {
    const I mask = _mm_set1_epi8(static_cast<int8_t>(kMask));
    if constexpr (kShift == 0) return _mm_and_si128(a, mask);
    return _mm_and_si128(_mm_srli_epi16(a, kShift), mask);
  }
  static I AndOr(I a, I mask, I b) { return _mm_or_si128(_mm_and_si128(a, mask), b); }

  static I DotU8(I acc, I u, I s) {
    return _mm_add_epi32(acc, _mm_madd_epi16(_mm_maddubs_epi16(u, s), _mm_set1_epi16(1)));
  }
  static I DotU8At(I acc, I u, const int8_t* a) { return DotU8(acc, u, BroadcastWord(a)); }
  static I DotS8(I acc, I q, I a) { return DotU8(acc, _mm_sign_epi8(q, q), _mm_sign_epi8(a, q)); }
  static I PairsU8(I u, I s) { return _mm_maddubs_epi16(u, s); }
  struct Signed {
    I abs, sign;
  };
  static Signed PrepareSigned(I q) { return {_mm_sign_epi8(q, q), q}; }
  static I PairsS8(const Signed& q, I a) { return _mm_maddubs_epi16(q.abs, _mm_sign_epi8(a, q.sign)); }
  template <bool kHigh>
  static Signed Iq4nlSigned(I bytes) {
    const I nibbles = ByteField<kHigh ? 4 : 0, 0x0F>(bytes);
    return PrepareSigned(_mm_shuffle_epi8(Table16(kIq4nlValues), nibbles));
  }
  static I AddScaled(I acc, I pairs, I scales16) { return _mm_add_epi32(acc, _mm_madd_epi16(pairs, scales16)); }
  static I Scaled(I pairs, I scales16) { return _mm_madd_epi16(pairs, scales16); }
  static void InOrder(I& acc) { asm("" : "+x"(acc)); }

  static F ZeroF() { return _mm_setzero_ps(); }
  static F SetF(float v) { return _mm_set1_ps(v); }
  static F Cvt(I v) { return _mm_cvtepi32_ps(v); }
  static F Mul(F a, F b) { return _mm_mul_ps(a, b); }
  static F AddF(F a, F b) { return _mm_add_ps(a, b); }
  static F SubF(F a, F b) { return _mm_sub_ps(a, b); }
  // fmaf(a, b, c) in every lane, one rounding as the FMA instruction's: a * b is exact in double; the sum, rounded
  // to odd at double's 53 bits (TwoSum's error says whether it was exact and on which side), then rounds to float as
  // the exact sum would (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms using
  // rounding to odd", 2008: odd rounding at p + 2 or more bits, then to nearest at p).
  static HWY_INLINE F Fma(F a, F b, F c) {
    const __m128d low = FmaRoundedToOdd(_mm_cvtps_pd(a), _mm_cvtps_pd(b), _mm_cvtps_pd(c));
    const __m128d high = FmaRoundedToOdd(_mm_cvtps_pd(_mm_movehl_ps(a, a)), _mm_cvtps_pd(_mm_movehl_ps(b, b)),
                                         _mm_cvtps_pd(_mm_movehl_ps(c, c)));
    return _mm_movelh_ps(_mm_cvtpd_ps(low), _mm_cvtpd_ps(high));
  }
  static HWY_INLINE __m128d FmaRoundedToOdd(__m128d a, __m128d b, __m128d c) {
    const __m128d p = _mm_mul_pd(a, b), s = _mm_add_pd(p, c);
    const __m128d c_part = _mm_sub_pd(s, p);
    const __m128d error = _mm_add_pd(_mm_sub_pd(p, _mm_sub_pd(s, c_part)), _mm_sub_pd(c, c_part));  // p + c - s
    const __m128d inexact_lanes = _mm_cmpneq_pd(error, _mm_setzero_pd());
    // Where both sums are exact in double (mostly: the tiles' products have at most 39 bits, and their sums a few
    // more), s itself rounds to float as the exact sum does. Skipping the odd step then reads Q8_0's tile 1.9x as
    // fast, Q4_0's 1.5x (LOWBIT_BENCH_TARGET=SSE4).
    if (_mm_movemask_pd(inexact_lanes) == 0) return s;
    const __m128i bits = _mm_castpd_si128(s), one = _mm_set1_epi64x(1);
    // Where s is inexact, finite and even: one unit towards the exact sum (up in magnitude where the error has
    // s's sign), to the odd neighbour on its side.
    const __m128i finite = _mm_castpd_si128(_mm_cmplt_pd(_mm_andnot_pd(_mm_set1_pd(-0.0), s), _mm_set1_pd(HUGE_VAL)));
    const __m128i inexact = _mm_castpd_si128(inexact_lanes);
    const __m128i even = _mm_cmpeq_epi64(_mm_and_si128(bits, one), _mm_setzero_si128());
    const __m128i other_sign = _mm_srli_epi64(_mm_xor_si128(bits, _mm_castpd_si128(error)), 63);
    const __m128i step = _mm_sub_epi64(one, _mm_add_epi64(other_sign, other_sign));  // +1 or -1
    const __m128i adjust = _mm_and_si128(_mm_and_si128(finite, _mm_and_si128(inexact, even)), step);
    return _mm_castsi128_pd(_mm_add_epi64(bits, adjust));
  }

  static void StoreF(F v, float* out) { _mm_storeu_ps(out, v); }

  static constexpr int kLanes = 4;
  static I LoadLanes(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
  static I LoadLanesOnce(const uint8_t* p) {
    I v = LoadLanes(p);
    asm("" : "+x"(v));
    return v;
  }
  static I SetWord(int32_t v) { return _mm_set1_epi32(v); }
  static I BroadcastWord(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm_set1_epi32(v);
  }
  // The fp16 in the low word of each lane as float, exactly (core/f16_bits-inl.h).
  static HWY_INLINE F HalfWordsF(I x) {
    return F32FromF16Bits(hwy::HWY_NAMESPACE::Full128<float>(), hwy::HWY_NAMESPACE::Vec128<int32_t>{x}).raw;
  }
  static F LanesHalfF(const uint8_t* p) {
    return HalfWordsF(_mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static F LowHalvesF(I x) { return HalfWordsF(x); }
  // F16/BF16 (HalfLanes): four lanes hold half of a row's eight, so a row takes two vectors and the caller passes
  // each half's start. PairwiseEights: the wider passes' sum of eight lanes, low's l0..l3 and high's l4..l7,
  // ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), in lane 0.
  static F RepeatEightF(const float* p) { return _mm_loadu_ps(p); }
  static F PairwiseEights(F low, F high) {
    const F s1 = _mm_add_ps(low, high);
    const F s2 = _mm_add_ps(s1, _mm_movehl_ps(s1, s1));
    return _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, _MM_SHUFFLE(1, 1, 1, 1)));
  }
  static I RepeatPairs(const uint8_t* p) { return LoadLanes(p); }
  static F OddBf16F(I x) { return _mm_castsi128_ps(_mm_and_si128(x, _mm_set1_epi32(static_cast<int>(0xFFFF0000u)))); }
  static F EvenBf16F(I x) { return _mm_castsi128_ps(_mm_slli_epi32(x, 16)); }
  static I LanesHeads3(const uint8_t* p) { return _mm_shuffle_epi8(LoadLanes(p), Heads3Pattern()); }
  static HWY_INLINE void LanesHalfPairF(const uint8_t* p, F& low, F& high) {
    const I x = LoadLanes(p);
    low = HalfWordsF(x);
    high = HalfWordsF(_mm_srli_epi32(x, 16));
  }
  template <int kBits> static I ShrWords(I a) { return _mm_srli_epi32(a, kBits); }
  static I MulLo32(I a, I b) { return _mm_mullo_epi32(a, b); }
  static I LaneByte(I x, int k) { return _mm_shuffle_epi8(x, LaneBytePattern(k)); }
  static I LaneBytes(I x, __m128i pattern) { return _mm_shuffle_epi8(x, pattern); }
  static HWY_INLINE I LaneByteWords(I x, int k) { return _mm_shuffle_epi8(x, LaneByteWordsPattern(k)); }
  template <int kBits> static I Sar16(I a) { return _mm_srai_epi16(a, kBits); }
  template <int kBits> static I Sar32(I a) { return _mm_srai_epi32(a, kBits); }
  static void BroadcastWords(__m128i words, I* out) {
    out[0] = _mm_shuffle_epi32(words, 0x00);
    out[1] = _mm_shuffle_epi32(words, 0x55);
    out[2] = _mm_shuffle_epi32(words, 0xAA);
    out[3] = _mm_shuffle_epi32(words, 0xFF);
  }
};
#else  // AVX3 / AVX3_DL: 16 lanes, row groups of two
struct V {
  static constexpr int kRows = 2;
  static constexpr bool kVnni = HWY_TARGET == HWY_AVX3_DL;
  using I = __m512i;
  using F = __m512;

  static I Zero() { return _mm512_setzero_si512(); }
  static I Set8(int8_t v) { return _mm512_set1_epi8(v); }
  static I Table16(const int8_t* t) { return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t))); }
  static I Lookup(I table, I idx) { return _mm512_shuffle_epi8(table, idx); }
  static I And(I a, I b) { return _mm512_and_si512(a, b); }
  static I Or(I a, I b) { return _mm512_or_si512(a, b); }
  static I Add8(I a, I b) { return _mm512_add_epi8(a, b); }
  static I Add32(I a, I b) { return _mm512_add_epi32(a, b); }
  static I Sub32(I a, I b) { return _mm512_sub_epi32(a, b); }
  static I Sub8(I a, I b) { return _mm512_sub_epi8(a, b); }
  static I Add16(I a, I b) { return _mm512_add_epi16(a, b); }
  static I Sub16(I a, I b) { return _mm512_sub_epi16(a, b); }
  static I Set16(int16_t v) { return _mm512_set1_epi16(v); }
  static I Xor(I a, I b) { return _mm512_xor_si512(a, b); }
  template <int kBits> static I Shr16(I a) { return _mm512_srli_epi16(a, kBits); }
  template <int kBits> static I Shl16(I a) { return _mm512_slli_epi16(a, kBits); }
  static I ShrBytes(I a, int n) { return _mm512_srl_epi16(a, _mm_cvtsi32_si128(n)); }
  // Every byte's bits kShift.. under kMask, moved down to bit 0, the others clear: with GFNI one affine map of the
  // byte's bits (Affine), else a shift and a mask. kAffine false takes the shift and mask anyway, for a tile whose
  // multiplies already crowd the ports the affine map needs.
  template <int kShift, int kMask, bool kAffine = true>
  static I ByteField(I a) {
    const I mask = _mm512_set1_epi8(static_cast<int8_t>(kMask));
    if constexpr (kShift == 0) return _mm512_and_si512(a, mask);
#if HWY_TARGET == HWY_AVX3_DL
    if constexpr (kAffine) return Affine<FieldMatrix(kShift, kMask)>(a);
#endif
    return _mm512_and_si512(_mm512_srli_epi16(a, kShift), mask);
  }
  // (a & mask) | b.
  static I AndOr(I a, I mask, I b) { return _mm512_ternarylogic_epi32(a, mask, b, 0xEA); }
#if HWY_TARGET == HWY_AVX3_DL
  template <uint64_t kMatrix>  // GFNI's affine map of every byte (FieldMatrix)
  static I Affine(I a) {
    return _mm512_gf2p8affine_epi64_epi8(a, _mm512_set1_epi64(static_cast<int64_t>(kMatrix)), 0);
  }
#endif

  static I Scaled(I pairs, I scales16) { return _mm512_madd_epi16(pairs, scales16); }  // AddScaled from zero
#if HWY_TARGET == HWY_AVX3_DL
  static I DotU8(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }
  static I AddScaled(I acc, I pairs, I scales16) { return _mm512_dpwssd_epi32(acc, pairs, scales16); }
#else
  static I DotU8(I acc, I u, I s) {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
  }
  static I DotU8At(I acc, I u, const int8_t* a) { return DotU8(acc, u, BroadcastWord(a)); }
  static I AddScaled(I acc, I pairs, I scales16) { return _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, scales16)); }
#endif
  // AVX2's InOrder, not applied here: no AVX-512 machine has measured it (with 32 registers the trees have more room).
  static void InOrder(I&) {}
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
  // The magnitudes from a table, the signs from bit 3 of each nibble (Iq4nlSignsByBit3). With VBMI the 16
  // magnitudes repeat over vpermb's 64-byte table, so index bits 4 and 5 need no mask.
  template <bool kHigh>
  static Signed Iq4nlSigned(I bytes) {
    const I magnitudes = Table16(kIq4nlMagnitudes);
    const I shifted = kHigh ? _mm512_srli_epi16(bytes, 4) : bytes;
#if HWY_TARGET == HWY_AVX3_DL
    const I abs = _mm512_permutexvar_epi8(shifted, magnitudes);
#else
    const I abs = _mm512_shuffle_epi8(magnitudes, _mm512_and_si512(shifted, Set8(0x0F)));
#endif
    return {abs, _mm512_testn_epi8_mask(bytes, Set8(kHigh ? static_cast<int8_t>(0x80) : 0x08))};
  }


  static F ZeroF() { return _mm512_setzero_ps(); }
  static F SetF(float v) { return _mm512_set1_ps(v); }
  static F Cvt(I v) { return _mm512_cvtepi32_ps(v); }
  static F Mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F Fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F AddF(F a, F b) { return _mm512_add_ps(a, b); }


  static void StoreF(F v, float* out) { _mm512_storeu_ps(out, v); }

  static constexpr int kLanes = 16;
  static I LoadLanes(const uint8_t* p) { return _mm512_loadu_si512(p); }
  static I LoadLanesOnce(const uint8_t* p) { return LoadLanes(p); }  // AVX2's, unmeasured here: a plain load
  static I SetWord(int32_t v) { return _mm512_set1_epi32(v); }
  static I BroadcastWord(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
  }
  static F LanesHalfF(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static F RepeatEightF(const float* p) { return _mm512_broadcast_f32x8(_mm256_loadu_ps(p)); }
  static F PairwiseEights(F v) {
    const F s1 = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));  // 128-bit blocks 0<->1, 2<->3
    const F s2 = _mm512_add_ps(s1, _mm512_permute_ps(s1, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm512_add_ps(s2, _mm512_permute_ps(s2, _MM_SHUFFLE(2, 3, 0, 1)));
  }
  static F LowHalvesF(I x) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(x)); }
  static I LanesHeads3(const uint8_t* p) {
    const __m512i words = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11), LoadLanes(p));
    return _mm512_shuffle_epi8(words, _mm512_broadcast_i32x4(Heads3Pattern()));
  }
  static I RepeatPairs(const uint8_t* p) { return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static F OddBf16F(I x) { return _mm512_castsi512_ps(_mm512_and_si512(x, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u)))); }
  static F EvenBf16F(I x) { return _mm512_castsi512_ps(_mm512_slli_epi32(x, 16)); }
#if HWY_TARGET == HWY_AVX3_DL
  // vdpbf16ps: acc + odd products, then + even products, each step rounded, subnormals flushed. Only on CPUs with
  // AVX512-BF16 (cpu_has_avx512_bf16).
  static F DotBf16Pairs(F acc, I w, I a) { return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh>(w), reinterpret_cast<__m512bh>(a)); }
#endif
  static void LanesHalfPairF(const uint8_t* p, F& low, F& high) {
    const __m512i x = LoadLanes(p);
    low = LowHalvesF(x);
    high = LowHalvesF(_mm512_srli_epi32(x, 16));
  }
  template <int kBits> static I ShrWords(I a) { return _mm512_srli_epi32(a, kBits); }
  static I LaneByte(I x, int k) { return _mm512_shuffle_epi8(x, _mm512_broadcast_i32x4(LaneBytePattern(k))); }
  static I LaneBytes(I x, __m128i pattern) { return _mm512_shuffle_epi8(x, _mm512_broadcast_i32x4(pattern)); }
  static HWY_INLINE I LaneByteWords(I x, int k) { return _mm512_shuffle_epi8(x, _mm512_broadcast_i32x4(LaneByteWordsPattern(k))); }
  template <int kBits> static I Sar16(I a) { return _mm512_srai_epi16(a, kBits); }
  template <int kBits> static I Sar32(I a) { return _mm512_srai_epi32(a, kBits); }
  template <int kBits> static I Shl32(I a) { return _mm512_slli_epi32(a, kBits); }
#if HWY_TARGET == HWY_AVX3_DL
  static I MulLo32(I a, I b) { return _mm512_mullo_epi32(a, b); }
  // DotU8 with the four bytes at a in every lane, the broadcast folded into the instruction (GCC 12 loads it into a
  // register first, one more instruction).
  static I DotU8At(I acc, I u, const int8_t* a) {
    using Word = int32_t __attribute__((may_alias));
    asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(u), "m"(*reinterpret_cast<const Word*>(a)));
    return acc;
  }
#endif
  static void BroadcastWords(__m128i words, I* out) {
    out[0] = _mm512_broadcastd_epi32(words);
    out[1] = _mm512_broadcastd_epi32(_mm_srli_si128(words, 4));
    out[2] = _mm512_broadcastd_epi32(_mm_srli_si128(words, 8));
    out[3] = _mm512_broadcastd_epi32(_mm_srli_si128(words, 12));
  }
  static F SubF(F a, F b) { return _mm512_sub_ps(a, b); }
};
#endif
using I = V::I;
using F = V::F;
constexpr int kRows = V::kRows;
// Whether a tile takes the loop shapes and stream policies measured for AVX-512 (on Zen 5 and Sapphire Rapids), or
// AVX2's (measured on Zen 1-class and Zen 5 cores; SSE4 takes them unmeasured).
inline constexpr bool kAvx512Shapes = HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL;

// Bit pair k of every byte (k a constant once the loop over it is unrolled): with GFNI one affine map (kAffine as
// V::ByteField's). Q2_K's levels and the low bits of SplitFiveBitLevels.
template <bool kAffine = true>
HWY_INLINE I BitPair(I bytes, int k) {
  switch (k) {
    case 0: return V::ByteField<0, 3, kAffine>(bytes);
    case 1: return V::ByteField<2, 3, kAffine>(bytes);
    case 2: return V::ByteField<4, 3, kAffine>(bytes);
    default: return V::ByteField<6, 3, kAffine>(bytes);
  }
}

// The 5-bit levels whose bits 0-1 are bit pair p of w and 2-4 the top three bits of v (p a constant once unrolled):
// Q5_K's odd sub-blocks and Q5_0's and Q5_1's values 16..31 as packed (kQ5KPack, kQ5_0Pack). Against qh's bit moved
// onto the qs nibble (an affine map and an OR or ternary op each, a shift more for the high nibble): Q5_K's
// one-token tile 548 instructions instead of 594, in L3 42.3-48.0 -> 47.1-50.8 GB/s, AVX2 17.5-24.1 -> 23.0-29.6
// (four and three alternated rounds).
HWY_INLINE I SplitFiveBitLevels(I w, I v, int p) {
  const I top = V::ByteField<3, 0x1C>(v);
  // Pair 0 needs no shift: its mask and the OR are one ternary op.
  return p == 0 ? V::AndOr(w, V::Set8(3), top) : V::Or(BitPair(w, p), top);
}

// How far ahead PrefetchSlotStep runs. Zen 5 (AVX-512) wants the lines four pages ahead where one page served the
// AVX2 machine (kStreamPrefetchAhead, util/stream_prefetch.h; not measurable here since). Against one page, each
// distance in turn call by call or token by token in one process: whole r1b-Q6_K -t 1 1.11x, 1.13x (16 KiB; 24 KiB
// 1.14x, 32 KiB 1.09x), -t 2 1.07x, 1.09x; Q6_K streamed 4096x4096 1.19x, 2048x32000 (an output layer) 1.10x at
// 8 KiB; IQ4_XS 2048x5632 1.13x; Q3_K's loop (SubBlock16Lanes::OneTokenLoop) 2048x5632 1.00x.
inline constexpr size_t kSlotStepAhead = kAvx512Shapes ? 16 * 1024 : kStreamPrefetchAhead;

// How a one-token tile on AVX-512 opens its weights' stream ahead: two policies, each measured faster on one of
// the two kinds of AVX-512 machine here, picked per call by the CPU's maker (RowLanes::Run in ops/simd_matmul.cc,
// every tile's Tile takes one; batches and AVX2 take FarAhead, whose constants are then those they had).
// - FarAhead (AMD; measured on Zen 5): Zen 5's prefetchers follow the tiles shaped for them (SubBlock16Lanes::
//   OneTokenLoop, Q4KLanes' scales last, Q5KLanes' head behind) and the others (the 32-value types, Q2_K, F16)
//   given each page's first line (kPageStarts); the tiles that prefetch every line (Q6_K, IQ4_XS) do it
//   kSlotStepAhead on.
// - NearAhead (Intel; measured on a Sapphire Rapids guest, 2026-12-06): its prefetchers fall behind a stream read
//   between multiplies, and a prefetch into L1 that misses L2 holds one of its 16 fill buffers for the whole trip
//   to memory, so every line is prefetched, spread over the loads, only 2 KiB ahead, where the L2 streamer has
//   mostly brought it (NearAhead at 1, 4 and 8 KiB against 2, whole r1b-Q4_0, Q3_K_M and Q4_K_M: 0.97-0.98x,
//   0.87-0.94x, 0.85-0.93x). Each line also goes into L2 4 KiB ahead (kNearL2Ahead, util/stream_prefetch.h;
//   2026-12-06, twenty-ninth session): whole r1b files token by token against L1 alone, in one process, each
//   picked per call at dispatch (eight rounds of eight tokens, -t 1): Q2_K 1.11x, Q3_K_M 1.10x, Q5_K_M 1.09x,
//   Q4_K_M 1.08x, Q5_0 1.06x, Q8_0 1.05x, Q4_1 1.05x, Q4_0 1.05x, IQ4_XS 1.03x, F16 1.01x (Q6_K's tile keeps L1
//   lines alone: L1LinesOnly). L2 at 3, 6 and 8 KiB: Q4_K_M 1.07x, 1.04x, 1.00x; prefetcht2 as prefetcht1; a second
//   L1 prefetch at 4 KiB instead 1.00-1.04x; L1 at 1 KiB (L2 at 4) Q4_K_M 0.96x, Q6_K 0.97x, Q3_K_M and Q4_0 1.00x.
//   Before the L2 lines, whole r1b models token by token, NearAhead against FarAhead picked per call in
//   one process (set_stream_ahead; 7-9 rounds, both orders), -t 1 and -t 2: Q3_K_M 1.43x, 1.37x; Q4_K_M 1.20x,
//   1.18x; Q5_K_M 1.25x, 1.22x; Q6_K 1.19x, 1.18x; IQ4_XS 1.21x, 1.19x; Q2_K 1.34x, 1.28x; F16 1.12x, 1.14x;
//   Q4_0 1.19x (and 1.19x in the other order), 1.20x; Q8_0 1.05x and 1.04x, 1.08x; Q5_0 1.23x, 1.30x; Q4_1 1.13x,
//   1.17x; Q5_1 1.16x, 1.17x (IQ4_NL, Q4_0's tile, unmeasured); BF16 0.96-0.97x then, 1.08x with the L2 lines.
//   (A run-time switch inside PrefetchTileAhead had read the 32-value types 1.00x whatever it did, even with no
//   prefetch: as the twenty-fifth session found, only instances picked at dispatch measure a kernel.)
// - On Zen 5 NearAhead, L2 lines and all, reads slower (2026-12-06, thirtieth session): whole r1b-Q2_K 0.89x and
//   Q4_K_M 0.86x against FarAhead token by token in one process, and the probe's near-lines read 22.8 GB/s against
//   page starts' 44.9 (plain 31.9).
struct FarAhead {
  static constexpr bool kPageStarts = true;
  static constexpr size_t kLinesAhead = kSlotStepAhead, kL2Ahead = 0;
};
struct NearAhead {
  static constexpr bool kPageStarts = false;
  static constexpr size_t kLinesAhead = kNearL1Ahead, kL2Ahead = kNearL2Ahead;
};

// Generation's prefetch ahead of a tile's stream (util/stream_prefetch.h), by target, as measured on each kind of
// machine here, for the tiles that prefetch a slot at its start. Zen 5 (AVX-512) reads the 32-value types, Q2_K,
// F16/BF16 and Q3_K's, Q4_K's and Q5_K's one-token tiles (their loops shaped for it: OneTokenLoop, Q4KLanes,
// RunHeadBehind) fastest with only each page's first line opened ahead (Q6_K and IQ4_XS spread every line over their
// loads, PrefetchSlotStep below, as Q2_K does on AVX2); the AVX2-only machine (an EPYC guest shown as family 23,
// 2026-12-04), whose hardware prefetchers fall behind every kernel's stream, reads them all faster with every line
// (BM_*_Simd_Dram, GB/s, two rounds against page starts: Q4_0 6.0-6.2 -> 8.9-9.2, Q8_0 6.5-6.7 -> 9.4-9.7, F16 6.6-7.7
// -> 9.6-9.7, IQ4_NL 4.7-5.0 -> 5.7-6.1, Q2_K 3.8-4.3 -> 4.7-4.8, Q5_0 3.6-4.0 -> 4.3-4.6).
// Not HWY_INLINE: GCC 12 drops the prefetch loops of an always_inline function (tests/ops/tests.cmake checks).
// A tile under NearAhead (below) opens every line instead, Ahead::kLinesAhead on.
template <size_t kBytes, class Ahead = FarAhead>
inline void PrefetchTileAhead(const uint8_t* slot) {
  if (!kAvx512Shapes) prefetch_lines_ahead<kBytes>(slot);
  else if (!Ahead::kPageStarts) {
    prefetch_lines_ahead<kBytes, Ahead::kLinesAhead>(slot);
    if constexpr (Ahead::kL2Ahead > 0) prefetch_lines_ahead<kBytes, Ahead::kL2Ahead, 2>(slot);
  }
  else prefetch_stream_ahead(slot, kBytes);
}

// Step `step` of kSteps's share of the lines of a kSlot-byte slot at `slot`, prefetched kAhead bytes on, once
// `loaded` has been read: a tile that reads its slot in kSteps steps sends its prefetches out among its loads.
// GCC otherwise gathers them all at the slot's start, even when written among the loads, and there they hold back
// the loads (on the AVX2 machine Q4_K's 36 gathered so read BM_Q4_K_Simd_Dram 0.68x; Q6_K's, gathered before
// this, 1.34x once spread). Every line the slot touches: a slot of whole lines starts on one (packed tiles are
// line-aligned), others may straddle one line more. (Not HWY_INLINE, as PrefetchTileAhead above.)
// Ahead::kL2Ahead > 0 (NearAhead): each line also into L2, that far on.
template <size_t kSlot, int kSteps, class Ahead>
inline void PrefetchSlotStep(const uint8_t*& slot, I loaded, int step) {
  constexpr int kLines = static_cast<int>(kSlot % 64 ? kSlot / 64 + 2 : kSlot / 64);
  constexpr int kPerStep = (kLines + kSteps - 1) / kSteps;
  asm("" : "+r"(slot) : "v"(loaded));  // the address now waits for the load
  for (int i = 0; i < kPerStep; ++i) {
    const int line = kPerStep * step + i;
    if (line >= kLines) continue;
    __builtin_prefetch(slot + Ahead::kLinesAhead + 64 * line, 0, 3);
    if constexpr (Ahead::kL2Ahead > 0) __builtin_prefetch(slot + Ahead::kL2Ahead + 64 * line, 0, 2);
  }
}

// ---- the nibble dot products of Q4_0 and the K-quants, over V's primitives for every width ----
// ChunkSum: the exact sum, in each lane, of chunks' four bytes times the activations' four, built a chunk at a time
// so a tile can stream its chunks rather than hold them all; then added to acc times a scale made by DotScale.
// ScaledDot and NibbleDot (unscaled) do it for an array of chunks.
#if HWY_TARGET == HWY_AVX3_DL || defined(LOWBIT_AVX_VNNI)
// vpdpbusd keeps the exact sum in int32; one multiply by the scale. (AVX-VNNI on AVX2 too: whole Q4_K tiles from L2,
// one token, against the plain AVX2 ones 1.01-1.02x with int16 pairs as below, 1.09x so.)
struct ChunkSum {
  I sum;
  // A constructor of its own: the implicit one, made where first used, lacked the pass's target in the AVX-VNNI file.
  ChunkSum() : sum(V::Zero()) {}
  void Add(I u, const int8_t* a) { sum = V::DotU8At(sum, u, a); }
  I AddScaledTo(I acc, I scale) const { return V::Add32(acc, V::MulLo32(sum, scale)); }
  // Where every lane's sum lies within int16, its low word is it: a multiply-add of words with the scale's (scale,
  // 0) words replaces vpmulld's two port-0 uops.
  I ScaledInt16(I scale) const { return V::Scaled(sum, scale); }
  I AddScaledInt16To(I acc, I scale) const { return V::AddScaled(acc, sum, scale); }
  // The sum of levels kept in place, 2^kBits times the exact ones, as the exact sum (their low bits are zero).
  template <int kBits>
  ChunkSum Exact() const {
    ChunkSum exact;
    exact.sum = kBits == 0 ? sum : V::template Sar32<kBits>(sum);
    return exact;
  }
};
// Byte k of each lane as ChunkSum's scale: the lane's int32, for the mullo.
HWY_INLINE I DotScale(I x, int k) { return V::LaneByte(x, k); }
#else
// Without VNNI the maddubs are summed as int16 pairs (a pair's 2 * chunks products must fit, as they do for levels
// below 16 and at most 8 chunks) and widened by one madd, by the scale or by ones: on CPUs that split 256-bit
// multiplies (Zen 1) the madd per chunk was most of a block's cost.
struct ChunkSum {
  I pairs = V::Zero();
  void Add(I u, const int8_t* a) {
    pairs = V::Add16(pairs, V::PairsU8(u, V::BroadcastWord(a)));
    V::InOrder(pairs);
  }
  I AddScaledTo(I acc, I scale) const { return V::AddScaled(acc, pairs, scale); }
  I ScaledInt16(I scale) const { return V::Scaled(pairs, scale); }
  I AddScaledInt16To(I acc, I scale) const { return AddScaledTo(acc, scale); }
  template <int kBits>
  ChunkSum Exact() const {
    static_assert(kBits == 0, "int16 pairs hold only levels below 16");
    return *this;
  }
};
// Byte k of each lane as ChunkSum's scale: in both words, for the madd (one vpshufb, taken once per sub-block
// rather than a shift and an or per token: BM_Q4_K_Simd_L2 8.0-8.4 -> 8.5-8.6 GB/s, Q2_K 4.5-4.7 -> 4.8-4.9, three
// rounds alternated on the AVX2 machine).
HWY_INLINE I DotScale(I x, int k) { return V::LaneByteWords(x, k); }
#endif
template <int kChunks>
HWY_INLINE ChunkSum SumOfChunks(const I* u, const int8_t* a) {
  static_assert(kChunks <= 8);  // ChunkSum's int16 pairs without VNNI
  ChunkSum sum;
  for (int c = 0; c < kChunks; ++c) sum.Add(u[c], a + 4 * c);
  return sum;
}
template <int kChunks>
HWY_INLINE I ScaledDot(I acc, const I* u, const int8_t* a, I scale) {
  return SumOfChunks<kChunks>(u, a).AddScaledTo(acc, scale);
}
// acc plus two sub-blocks' sums times their scales, chunks u[0, kChunks) and u[kChunks, 2 kChunks) against the
// activations from a, where every lane's sum lies within int16 (ChunkSum::ScaledInt16). The pair is summed apart from
// acc, so acc's chain takes one add per pair: run through acc, the multiply-adds of a Q2_K super-block's sixteen
// sub-blocks made one chain of sixteen (four cycles each on Zen 5), and whole r1b-Q2_K read 1.04-1.17x this way
// (token by token in one process, both picked per call at dispatch, -t 1 and -t 2).
// AddScaledSumPair: the same from the two sums. Levels kept in place, 2^kInPlaceBits times their value, are shifted
// back before the scales (ChunkSum::Exact).
template <int kInPlaceBits = 0>
HWY_INLINE I AddScaledSumPair(I acc, const ChunkSum& lo, const ChunkSum& hi, I scale_lo, I scale_hi) {
  const I lo_scaled = lo.template Exact<kInPlaceBits>().ScaledInt16(scale_lo);
  return V::Add32(acc, hi.template Exact<kInPlaceBits>().AddScaledInt16To(lo_scaled, scale_hi));
}
template <int kChunks>
HWY_INLINE I AddScaledInt16Pair(I acc, const I* u, const int8_t* a, I scale_lo, I scale_hi) {
  return AddScaledSumPair(acc, SumOfChunks<kChunks>(u, a), SumOfChunks<kChunks>(u + kChunks, a + 4 * kChunks), scale_lo,
                          scale_hi);
}
template <int kChunks>
HWY_INLINE I NibbleDot(I acc, const I* u, const int8_t* a) {
#if HWY_TARGET == HWY_AVX3_DL || defined(LOWBIT_AVX_VNNI)
  for (int c = 0; c < kChunks; ++c) acc = V::DotU8At(acc, u[c], a + 4 * c);  // one chain, no multiply
  return acc;
#else
  return ScaledDot<kChunks>(acc, u, a, V::Set16(1));
#endif
}

// kRows weight rows, as RunTiles addresses them. Block b's head of row r lies at head_at(b) + r * head_stride, its
// rest chunk c at chunk_at(b, c) + r * stride. Row-major rows: stride = head_stride = row bytes, step = block bytes,
// chunks one after the other; packed tiles (ops/packed_weight.h): heads side by side, then the chunks in the
// type's stored order, the rows a chunk apart, a slot of tile_rows blocks a step, base being the first stored
// chunk's place. A stride of 0 repeats one row (the unused rows of a partial last tile).
struct RowGroup {
  const uint8_t* base;
  size_t stride, step;
  const uint8_t* head_base;
  size_t head_stride, head;
  size_t chunk_step;               // between consecutive chunk positions
  const uint8_t* chunk_positions;  // where each rest chunk is stored
  bool encode_units = false;       // the source holds file bytes of a type whose packed units are encoded
  const uint8_t* chunk_at(int64_t b, int c) const {
    return base + static_cast<size_t>(b) * step + static_cast<size_t>(chunk_positions[c]) * chunk_step;
  }
  const uint8_t* head_at(int64_t b) const { return head_base + static_cast<size_t>(b) * step; }
};

// ---- row lanes: one row per int32 / float lane ----
// A tile is V::kLanes rows; its slot for block b is the packed layout of ops/packed_weight.h with V::kLanes rows a
// tile: the rows' heads side by side, then chunk c of every row for each c in order, so a chunk of every row is one
// load.
template <const PackFormat& kPack>
inline constexpr size_t kLanesSlot = V::kLanes * kPack.unit;

// y[t * ldy + r] = lane r of acc[t] for the tile's first `rows` rows.
template <int T>
HWY_INLINE void StoreLanes(const F (&acc)[T], float* y, size_t ldy, int rows) {
  for (int t = 0; t < T; ++t) {
    float* out = y + static_cast<size_t>(t) * ldy;
    // A whole tile (every generation tile but a tensor's last) stores its vector; the copy loop below became a
    // call to memmove per tile, 0.65 % of a Q4_K_M token on one thread.
    if (rows == V::kLanes) {
      V::StoreF(acc[t], out);
      continue;
    }
    alignas(64) float lanes[V::kLanes];
    V::StoreF(acc[t], lanes);
    for (int r = 0; r < rows; ++r) out[r] = lanes[r];
  }
}

// For the row-lane tiles in vec_dot's order (Q8_0, Q5_0, Q4_1, Q5_1, Q3_K, Q5_K, Q6_K): its eight lane positions, one float vector each,
// added as hsum_float_8 adds its lanes: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), every row at once.
HWY_INLINE F PairwiseLanes(const F (&v)[8]) {
  return V::AddF(V::AddF(V::AddF(v[0], v[4]), V::AddF(v[2], v[6])), V::AddF(V::AddF(v[1], v[5]), V::AddF(v[3], v[7])));
}

// The tile's rows in any layout (row groups of kRows rows, RowGroup addressing) copied into slots.
template <const PackFormat& kPack>
HWY_INLINE void PackLanes(const RowGroup* groups, int64_t n_blocks, uint8_t* slots) {
  constexpr int L = V::kLanes;
  constexpr int kChunks = static_cast<int>((kPack.unit - kPack.head) / kPack.chunk);
  const auto unit_offset = [](int c) {  // of rest chunk c in a unit
    const size_t rest = kPack.chunk * static_cast<size_t>(c);
    return rest < kPack.head_offset ? rest : rest + kPack.head;
  };
  for (int64_t b = 0; b < n_blocks; ++b) {
    uint8_t* slot = slots + static_cast<size_t>(b) * kLanesSlot<kPack>;
    for (int row = 0; row < L; ++row) {
      const RowGroup& g = groups[row / kRows];
      const size_t r = static_cast<size_t>(row % kRows);
      const uint8_t* head = g.head_at(b) + r * g.head_stride;
      const uint8_t* chunks[kChunks];
      for (int c = 0; c < kChunks; ++c) chunks[c] = g.chunk_at(b, c) + r * g.stride;
      uint8_t unit[kPack.unit];
      if constexpr (kPack.encode != nullptr) {
        if (g.encode_units) {  // as pack_for_matmul does
          std::memcpy(unit + kPack.head_offset, head, kPack.head);
          for (int c = 0; c < kChunks; ++c) std::memcpy(unit + unit_offset(c), chunks[c], kPack.chunk);
          kPack.encode(unit);
          head = unit + kPack.head_offset;
          for (int c = 0; c < kChunks; ++c) chunks[c] = unit + unit_offset(c);
        }
      }
      std::memcpy(slot + kPack.head * row, head, kPack.head);
      for (int c = 0; c < kChunks; ++c)
        std::memcpy(slot + L * kPack.head + kPack.chunk * static_cast<size_t>(L * kPack.position[c] + row), chunks[c], kPack.chunk);
    }
  }
}


#endif  // LOWBIT_TILE_KERNELS

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#endif  // LOWBIT_OPS_SIMD_VECTORS_INL_H_
