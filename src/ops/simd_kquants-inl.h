// Matmul tiles for the 256-value super-block types (Q2_K ... Q6_K, IQ4_XS) against Q8_K activations.
// Included by ops/simd_matmul-inl.h once per Highway target and once more for AVX2 with AVX-VNNI, hence the
// toggling guard.
#if defined(LOWBIT_OPS_SIMD_KQUANTS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWBIT_OPS_SIMD_KQUANTS_INL_H_
#undef LOWBIT_OPS_SIMD_KQUANTS_INL_H_
#else
#define LOWBIT_OPS_SIMD_KQUANTS_INL_H_
#endif

#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "ops/activation_quant.h"
#include "ops/simd_vectors-inl.h"
#include "quant/k_quant_common.h"
#include "quant/legacy_quants.h"

HWY_BEFORE_NAMESPACE();
LOWBIT_PASS_INSTRUCTIONS()  // ops/simd_vectors-inl.h
namespace lowbit {
namespace HWY_NAMESPACE {

#if LOWBIT_TILE_KERNELS

// ---- 256-value super-blocks against Q8_K ----

// The activations' eight sub-block sums S_j = bsums[2j] + bsums[2j+1] of one super-block, as int16 words.
HWY_INLINE __m128i SubBlockSums(const BlockQ8K& a) {
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 8));
  return _mm_hadd_epi16(lo, hi);
}

// A one-token tile's super-blocks with their heads (d, scales) read one super-block behind their chunks:
// chunks(b, buffer) for b = 0..n_blocks-1 holds super-block b's scale-free exact sums in buffer b % 2, and
// tail(b - 1, buffer) then reads b - 1's head and scales what chunks(b - 1) held. The integer sums are the same and
// each super-block is still added in order, so the bits are too. Why: Zen 5 reads a tile's stream from memory
// faster when nothing waits on a line just loaded. Read first, the head held every position's sums up behind one
// DRAM miss a super-block; read last in the same super-block (as Q4KLanes's kScalesLast) the tail still waited on
// it. Q5_K one token, against its head read first (every line prefetched), alternated rounds: BM_Q5_K_Simd_Dram 1.30x
// (head last in the same super-block 1.14x; twenty single runs each); whole Q5_K_M, lowbit bench -p 0 -n 32 -r 3,
// -t 1 1.10-1.21x (three sets of seven to nine rounds), -t 2 1.04-1.14x (two sets).
template <class Chunks, class Tail>
HWY_INLINE void RunHeadBehind(int64_t n_blocks, const Chunks& chunks, const Tail& tail) {
  for (int64_t b = 0; b <= n_blocks; ++b) {
    if (b < n_blocks) chunks(b, static_cast<int>(b % 2));
    if (b > 0) tail(b - 1, static_cast<int>((b - 1) % 2));
  }
}

// body(i) for i = 0..3: in a loop left rolled (kRolled), or unrolled, where each i is a constant. A one-token
// tile on AVX-512 rolls its loop over a super-block's parts so Zen 5's prefetchers follow its stream (Q4KLanes,
// IQ4XSLanes); the others unroll it so a scale byte is picked by a constant pattern.
template <bool kRolled, class Body>
HWY_INLINE void ForFour(const Body& body) {
  if constexpr (kRolled) {
#pragma GCC unroll 1
    for (int i = 0; i < 4; ++i) body(i);
  } else {
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) body(i);
  }
}

// ---- the repacked K-quants' row lanes (Q4_K, Q2_K) ----
// Eight int16 x0..x7 as the pairs (x0, x2), (x1, x3), (x4, x6), (x5, x7), each in every lane: the pairs the mins'
// lane words meet.
HWY_INLINE void SpreadWordPairs(__m128i words, I* out) {
  V::BroadcastWords(_mm_shuffle_epi8(words, _mm_setr_epi8(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15)), out);
}
// One super-block of one token, llama.cpp's repacked order: the exact sums of the values and of the mins each meet
// their scale times the activations' d in one FMA into their own float per row.
HWY_INLINE void AddSuperBlock(I values, I offsets, F d, F dmin, float da, F& acc, F& mins) {
  const F a = V::SetF(da);
  acc = V::Fma(V::Cvt(values), V::Mul(d, a), acc);
  mins = V::Fma(V::Cvt(offsets), V::Mul(dmin, a), mins);
}
// The rows' outputs: values minus mins.
template <int T>
HWY_INLINE void StoreValuesMinusMins(F (&acc)[T], const F (&mins)[T], float* y, size_t ldy, int rows) {
  for (int t = 0; t < T; ++t) acc[t] = V::SubF(acc[t], mins[t]);
  StoreLanes(acc, y, ldy, rows);
}

// The 6-bit scales and mins of Q4_K and Q5_K from the three words w0, w1, w2 (bytes 4k..4k+3 of the twelve) of
// every lane's row, word by word as kquant::unpack_scale_min_k4 works byte by byte: scales 0-3 = w0 & 0x3F..,
// scales 4-7 = (w2 & 0x0F..) | top two bits of w0's bytes, mins 0-3 = w1 & 0x3F.., mins 4-7 = (w2 >> 4 & 0x0F..)
// | top two bits of w1's bytes. The mins as int16 pairs (m0, m2), (m1, m3), (m4, m6), (m5, m7), the pairs
// SpreadWordPairs gives the activations' sub-block sums in.
struct K4ScalesMins {
  I scales[2];  // byte k of lane word i: sub-block 4i + k's scale
  I min_pairs[4];
};
HWY_INLINE K4ScalesMins UnpackK4Lanes(const uint8_t* words) {
  constexpr int L = V::kLanes;
  const I six_bits = V::SetWord(0x3F3F3F3F), four_bits = V::SetWord(0x0F0F0F0F), top_two = V::SetWord(0x30303030),
          even_bytes = V::SetWord(0x00FF00FF);
  const I w0 = V::LoadLanes(words), w1 = V::LoadLanes(words + 4 * L), w2 = V::LoadLanes(words + 8 * L);
  const I mins03 = V::And(w1, six_bits);
  const I mins47 = V::Or(V::And(V::ShrWords<4>(w2), four_bits), V::And(V::ShrWords<2>(w1), top_two));
  return {{V::And(w0, six_bits), V::Or(V::And(w2, four_bits), V::And(V::ShrWords<2>(w0), top_two))},
          {V::And(mins03, even_bytes), V::And(V::ShrWords<8>(mins03), even_bytes), V::And(mins47, even_bytes),
           V::And(V::ShrWords<8>(mins47), even_bytes)}};
}
// The exact sum of one super-block's mins times the activations' sub-block sums, in every lane.
HWY_INLINE I K4MinsDot(const K4ScalesMins& k4, const BlockQ8K& a) {
  I sum_pairs[4];
  SpreadWordPairs(SubBlockSums(a), sum_pairs);
  I offsets = V::Zero();
  for (int i = 0; i < 4; ++i) offsets = V::AddScaled(offsets, k4.min_pairs[i], sum_pairs[i]);
  return offsets;
}

// Q4_K's high nibbles as the chunks' unsigned bytes. With VNNI they stay in place, 16 times the level (bytes &
// 0xF0), and the low sub-block's scale is taken 16 times to match (AddScaledPair), so the super-block's sum is 16
// times the exact one, at most 8 sub-blocks x 32 values x 240 x 128 x 63 < 2^29, and Q4KExactSum shifts it back:
// the shift was a third of a one-token tile's port-0 work on Sapphire Rapids (BM_Q4_K_Simd_L2 1.05x, whole Q4_K_M
// token by token 1.05x); in AVX2's AVX-VNNI pass on Zen 5, BM_Q4_K_Simd 39.2 -> 42.7 GB/s (best of four alternated
// rounds; its batches stay on the plain tile). Without VNNI the chunks' int16 pairs (ChunkSum) hold only levels
// below 16.
inline constexpr bool kQ4KHighInPlace = V::kVnni;
HWY_INLINE I Q4KHighNibbles(I bytes) {
  if constexpr (kQ4KHighInPlace) return V::And(bytes, V::Set8(static_cast<int8_t>(0xF0)));
  return V::template ByteField<4, 0x0F>(bytes);  // (the passes without VNNI have no GFNI: a shift and a mask)
}
HWY_INLINE I Q4KExactSum(I values) {
  if constexpr (kQ4KHighInPlace) return V::template Sar32<4>(values);
  return values;
}
// acc plus sub-blocks 2g and 2g+1's sums (lo, hi) times their scales, bytes 2(g%2) and 2(g%2)+1 of each lane's word
// in `scales` (K4ScalesMins::scales[g / 2]; g a constant once unrolled, so each byte is a constant pattern).
HWY_INLINE I AddScaledPair(I acc, const ChunkSum& lo, const ChunkSum& hi, I scales, int g) {
  I lo_scale = DotScale(scales, 2 * (g % 2));
  if constexpr (kQ4KHighInPlace) lo_scale = V::template Shl16<4>(lo_scale);  // at most 63 x 16: the low word's
  return hi.AddScaledTo(lo.AddScaledTo(acc, lo_scale), DotScale(scales, 2 * (g % 2) + 1));
}

// ---- Q4_K in row lanes: llama.cpp's x86 order (ops/dot_reference.h), one row per int32 / float lane ----
// A tile is V::kLanes rows. Its packed slot for a super-block (kQ4KPack) holds the rows' d|dmin side by side, then
// the three words of their scales and mins (w0, w1, w2 of every row), then for c = 0..31 qs bytes 4c..4c+3 of every
// row, whose low nibbles are values 4(c%8)..4(c%8)+3 of sub-block 2(c/8) and high nibbles those of sub-block
// 2(c/8)+1. Per sub-block, eight chunks meet the activations' four bytes broadcast (vpdpbusd, or maddubs in int16)
// and the lane's scale multiplies the exact sum; the mins' exact sum is four int16-pair products with the
// activations' sub-block sums. One FMA each for values and mins per super-block and kLanes outputs.
static_assert(kQ4KPack.unit == sizeof(BlockQ4K) && kQ4KPack.head_offset == 0 && kQ4KPack.head == 4 &&
              kQ4KPack.chunk == 4 && offsetof(BlockQ4K, scales) == 4 && offsetof(BlockQ4K, qs) == 16);

struct Q4KLanes {
  static constexpr const PackFormat& kPack = kQ4KPack;
  static constexpr int kBlockValues = 256, kBatchTokens = 4;
  // Generation on AVX2 takes two whole tiles at a time (Tiles<1, 2>): each activation word is broadcast once for
  // both tiles' chunks, where Zen 1 spends an issue slot on every vpbroadcastd (VNNI folds it into the multiply).
  // Whole Q4_K_M, lowbit bench -p 0 -n 32 -r 3, per-round ratios against one tile at a time, order alternated,
  // five rounds: -t 1 1.047, -t 2 1.022; BM_Q4_K_Simd_Dram 1.086, _Dram_T2 1.044, _L2 1.009.
  static constexpr int kGenTiles = HWY_TARGET == HWY_AVX2 ? 2 : 1;
  template <int T, class Ahead = FarAhead>
  static void Tile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
    Tiles<T, 1, Ahead>(slots, 0, acts, n_blocks, y, ldy, rows);
  }
  // T tokens over R tiles of rows, tile r's slots r * tile_bytes after the first's and its outputs r * kLanes after
  // y (R > 1: whole tiles only). Every row is summed as with R = 1.
  // (Not inlined: inlined into its runner, Tiles<1, 2> spilled three times as many vectors.)
  template <int T, int R, class Ahead = FarAhead>
  static HWY_NOINLINE void Tiles(const uint8_t* slots, size_t tile_bytes, const ActRow* acts, int64_t n_blocks,
                                 float* y, size_t ldy, int rows) {
    constexpr int L = V::kLanes;
    constexpr size_t kSlot = kLanesSlot<kQ4KPack>;
    F acc[R][T], mins[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = mins[r][t] = V::ZeroF();
    const I low_nibble = V::Set8(0x0F);
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* slot[R];
      for (int r = 0; r < R; ++r) slot[r] = slots + r * tile_bytes + static_cast<size_t>(b) * kSlot;
      I values[R][T];
      for (auto& tile : values)
        for (I& v : tile) v = V::Zero();
      // Generation on AVX-512 reads each super-block's scales after its chunks, in a loop over the sub-block pairs
      // rather than unrolled, and opens only each page's start ahead (kScalesLast); AVX2 and batches take the scales
      // where used, unrolled. Zen 5's hardware prefetchers follow the stream so and not otherwise: with the scales
      // read (even unused) among the chunks, or the loop unrolled, page starts alone read 0.55-0.80x as fast.
      // Against every line spread over the unrolled loads (alternated rounds): BM_Q4_K_Simd_Dram 1.06x,
      // _Dram_Short 1.15x, _L2 1.03x; whole Q4_K_M -t 1 1.06x (every round of seven faster), -t 2 1.02x. NearAhead
      // (Sapphire Rapids) takes the AVX2 shape, every line prefetched: whole Q4_K_M 1.02x against its scales last
      // with every line spread, 1.10x against page starts.
      constexpr bool kScalesLast = T == 1 && R == 1 && kAvx512Shapes && Ahead::kPageStarts;
      // Each tile's prefetch runs ahead into the same stream's next tile (R on), not into the next tile's stream,
      // which has read it: two streams from memory otherwise read BM_Q4_K_Simd_Dram 0.80x, _T2 0.71x.
      const uint8_t* ahead[R];
      if constexpr (T == 1) {
        const bool past_tile = static_cast<size_t>(b + 1) * kSlot + kSlotStepAhead > tile_bytes;
        const size_t next = R > 1 && past_tile ? (R - 1) * tile_bytes : 0;
        for (int r = 0; r < R; ++r) ahead[r] = slot[r] + next;
      }
      if constexpr (kScalesLast) PrefetchTileAhead<kSlot>(slot[0]);
      ChunkSum pair_sums[kScalesLast ? 4 : 1][2];  // kScalesLast: each pair's sums until the scales are read
      const auto sub_block_pair = [&](int g) HWY_ATTR {  // sub-blocks 2g and 2g+1
        // Chunk by chunk rather than a sub-block pair's sixteen decoded chunks at once: BM_Q4_K_Simd_L2 8.2-8.6 ->
        // 8.8-9.2 GB/s on the AVX2 machine (three rounds alternated), no change elsewhere.
        ChunkSum lo_sum[R][T], hi_sum[R][T];
  #pragma GCC unroll 8
        for (int c = 0; c < 8; ++c) {
  #pragma GCC unroll 2
          for (int r = 0; r < R; ++r) {
            const I bytes = V::LoadLanesOnce(slot[r] + 16 * L + 4 * L * (8 * g + c));
            if constexpr (T == 1 && !kScalesLast) PrefetchSlotStep<kSlot, 32, Ahead>(ahead[r], bytes, 8 * g + c);
            const I lo = V::And(bytes, low_nibble), hi = Q4KHighNibbles(bytes);
            for (int t = 0; t < T; ++t) {
              const int8_t* a = reinterpret_cast<const BlockQ8K*>(acts[t].blocks)[b].qs + 64 * g + 4 * c;
              lo_sum[r][t].Add(lo, a);  // the tiles' broadcasts of a are one (common subexpressions)
              hi_sum[r][t].Add(hi, a + 32);
            }
          }
        }
        if constexpr (kScalesLast) {
          pair_sums[g][0] = lo_sum[0][0];
          pair_sums[g][1] = hi_sum[0][0];
        } else {
          for (int r = 0; r < R; ++r) {
            // Unpacked where used, as the mins below, not held across the chunks, where two tiles' scales spill; so
            // unpacked, the batch tile also reads 1.2x as fast (BM_Q4_K_Simd_Batch64, five rounds).
            const I scales = UnpackK4Lanes(slot[r] + 4 * L).scales[g / 2];
            for (int t = 0; t < T; ++t)
              values[r][t] = AddScaledPair(values[r][t], lo_sum[r][t], hi_sum[r][t], scales, g);
          }
        }
      };
      ForFour<kScalesLast>(sub_block_pair);
      for (int r = 0; r < R; ++r) {
        F d, dmin;
        V::LanesHalfPairF(slot[r], d, dmin);
        const K4ScalesMins k4 = UnpackK4Lanes(slot[r] + 4 * L);
        if constexpr (kScalesLast) {
  #pragma GCC unroll 4
          for (int g = 0; g < 4; ++g)
            values[0][0] = AddScaledPair(values[0][0], pair_sums[g][0], pair_sums[g][1], k4.scales[g / 2], g);
        }
        for (int t = 0; t < T; ++t) {
          const BlockQ8K& a = reinterpret_cast<const BlockQ8K*>(acts[t].blocks)[b];
          AddSuperBlock(Q4KExactSum(values[r][t]), K4MinsDot(k4, a), d, dmin, a.d, acc[r][t], mins[r][t]);
        }
      }
    }
    for (int r = 0; r < R; ++r) StoreValuesMinusMins(acc[r], mins[r], y + static_cast<size_t>(r) * L, ldy, rows);
  }
};

// ---- Q2_K in row lanes: llama.cpp's x86 order on AVX-512 (ops/dot_reference.h), one row per lane ----
// A tile is V::kLanes rows. Its slot for a super-block (kQ2KPack) holds the rows' d|dmin, then the four words of
// their sixteen scale bytes (scale in the low nibble, min in the high), then for c = 0..15 qs bytes 4c..4c+3 of
// every row: bit pair k of byte 4q+i of half h is value 128h + 32k + 4q + i, in sub-block 8h + 2k + q/4. Per
// sub-block, four chunks meet the activations (vpdpbusd, or maddubs in int16) and the lane's scale multiplies the
// exact sum; the mins' sum is eight int16-pair products with the activations' bsums. One FMA each for values and
// mins per super-block and kLanes outputs.
static_assert(kQ2KPack.unit == sizeof(BlockQ2K) && kQ2KPack.head_offset == offsetof(BlockQ2K, d) &&
              kQ2KPack.head == 4 && kQ2KPack.chunk == 4 && offsetof(BlockQ2K, dmin) == 82 &&
              offsetof(BlockQ2K, scales) == 0 && offsetof(BlockQ2K, qs) == 16);

struct Q2KLanes {
  static constexpr const PackFormat& kPack = kQ2KPack;
  static constexpr int kBlockValues = 256, kBatchTokens = 4;
  // The bit pairs by shift and mask in AVX2's AVX-VNNI pass, whose 256-bit affine maps share the multiply-adds' pipes
  // on Zen 5 (BM_Q2_K_Simd 21.4 -> 17.7 GB/s with them, _Batch64 33.7 -> 32.0; best of four alternated rounds).
  static constexpr bool kAffineBitPairs = HWY_TARGET != HWY_AVX2;
  // With VNNI one token's bit pairs stay in place: bit pair k masked (vpandd, on pipes vpdpbusd leaves free) is 4^k
  // times the level, at most 192 (a sub-block's int32 sum then at most 16 x 192 x 128 < 2^19), and each sub-block's
  // exact sum is shifted back by 2k before its scale's int16 multiply-add. Against the affine maps, which share
  // vpdpbusd's pipes on Zen 5 (lowbit_bench, LOWBIT_BENCH_TARGET=AVX3_DL, alternated rounds, best / median GB/s):
  // BM_Q2_K_Simd 44.0 -> 55.4 / 43.4 -> 49.1 and 45.1 -> 50.1 / 44.0 -> 44.9, _Stream 37.6 -> 38.5 / 33.8 -> 36.1.
  // Batches keep the maps: their four tokens share them, and the shifts grow with the tokens (_Batch64 73.8 -> 72.0
  // best). AVX2's AVX-VNNI pass, in place for one token, read 1.03x against the plain AVX2 tile (22.4 -> 23.1), which
  // it keeps (avx_vnni_takes).
  template <int T>
  static constexpr bool kPairsInPlace = V::kVnni && T == 1;
  // acc plus sub-blocks 8h + 2k and 8h + 2k + 1's sums, bit pair k's levels in place, times their scales (k a
  // constant once unrolled).
  template <int T>
  static HWY_INLINE I AddInPlacePair(I acc, const ChunkSum& lo, const ChunkSum& hi, I scale_lo, I scale_hi, int k) {
    static_assert(kPairsInPlace<T>);
    switch (k) {
      case 0: return AddScaledSumPair<0>(acc, lo, hi, scale_lo, scale_hi);
      case 1: return AddScaledSumPair<2>(acc, lo, hi, scale_lo, scale_hi);
      case 2: return AddScaledSumPair<4>(acc, lo, hi, scale_lo, scale_hi);
      default: return AddScaledSumPair<6>(acc, lo, hi, scale_lo, scale_hi);
    }
  }
  template <int T, class Ahead = FarAhead>
  static void Tile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
    constexpr int L = V::kLanes;
    constexpr size_t kSlot = kLanesSlot<kQ2KPack>;
    F acc[T], mins[T];
    for (int t = 0; t < T; ++t) acc[t] = mins[t] = V::ZeroF();
    const I low_nibbles = V::SetWord(0x0F0F0F0F), word_nibbles = V::SetWord(0x000F000F);
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* slot = slots + static_cast<size_t>(b) * kSlot;
      // AVX2 prefetches every line, spread over the slot's loads (below); AVX-512 only each page's start, but for
      // NearAhead.
      constexpr bool kEveryLine = !kAvx512Shapes || !Ahead::kPageStarts;
      if constexpr (T == 1 && !kEveryLine) PrefetchTileAhead<kSlot>(slot);
      const uint8_t* ahead = slot;
      F d, dmin;
      V::LanesHalfPairF(slot, d, dmin);
      // Scale word w holds bytes 4w..4w+3 of every row; its mins as int16 pairs (m_4w, m_4w+2), (m_4w+1, m_4w+3).
      I scales[4], min_pairs[8];
      for (int w = 0; w < 4; ++w) {
        const I word = V::LoadLanes(slot + 4 * L * (1 + w));
        scales[w] = V::And(word, low_nibbles);
        min_pairs[2 * w] = V::And(V::ShrWords<4>(word), word_nibbles);
        min_pairs[2 * w + 1] = V::And(V::ShrWords<12>(word), word_nibbles);
      }
      const uint8_t* qs = slot + 20 * L;
      I values[T];
      for (I& v : values) v = V::Zero();
      if constexpr (kPairsInPlace<T>) {
        // In place, chunk by chunk: each chunk, once loaded, meets the activations for its four bit pairs, into
        // eight sums a half (bit pair k, low or high sub-block), rather than a half's eight chunks loaded at once and
        // then taken bit pair by bit pair. The same sums; from memory the stream keeps up (rounds alternated,
        // LOWBIT_BENCH_TARGET=AVX3_DL, best / median): BM_Q2_K_Simd_Dram 0.71 -> 0.85 / 0.65 -> 0.81 of the probe
        // (six rounds, each faster; two later sets of three were level), _Stream 37.7 -> 45.7 GB/s, in L3 51.2 ->
        // 54.5; _L2 47.6 -> 42.9 (its calls hold one super-block a tile). Whole r1b-Q2_K, processes alternated, tg32
        // -t 1: 52-54 tokens/s in six rounds of seven (81 in one) -> 66-83, and in a faster hour 78-81 -> 82-85 (six
        // rounds, each faster); -t 2 112-131 -> 127-142 (four rounds); lowbit bench --roofline -t 1, eight runs each:
        // 71-74 % -> 74-79 % of the bound.
  #pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          ChunkSum sums[4][2];  // bit pair k's low (chunks q < 4) and high sub-block
          const int8_t* a = reinterpret_cast<const BlockQ8K*>(acts[0].blocks)[b].qs + 128 * h;
  #pragma GCC unroll 8
          for (int q = 0; q < 8; ++q) {
            const I bytes = V::LoadLanes(qs + 4 * L * (8 * h + q));
            if constexpr (kEveryLine) PrefetchSlotStep<kSlot, 16, Ahead>(ahead, bytes, 8 * h + q);
  #pragma GCC unroll 4
            for (int k = 0; k < 4; ++k)
              sums[k][q / 4].Add(V::And(bytes, V::Set8(static_cast<int8_t>(3 << (2 * k)))),
                                 a + 32 * k + 16 * (q / 4) + 4 * (q % 4));
          }
  #pragma GCC unroll 4
          for (int k = 0; k < 4; ++k) {
            const int j = 8 * h + 2 * k;
            values[0] = AddInPlacePair<T>(values[0], sums[k][0], sums[k][1], DotScale(scales[j / 4], j % 4),
                                          DotScale(scales[j / 4], j % 4 + 1), k);
          }
        }
      } else {
  #pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          I bytes[8];
          for (int q = 0; q < 8; ++q) {
            bytes[q] = V::LoadLanes(qs + 4 * L * (8 * h + q));
            if constexpr (T == 1 && kEveryLine) PrefetchSlotStep<kSlot, 16, Ahead>(ahead, bytes[q], 8 * h + q);
          }
  #pragma GCC unroll 4
          for (int k = 0; k < 4; ++k) {  // sub-blocks 8h + 2k (chunks q < 4) and 8h + 2k + 1 (q >= 4)
            I level[8];
            for (int q = 0; q < 8; ++q) level[q] = BitPair<kAffineBitPairs>(bytes[q], k);
            const int j = 8 * h + 2 * k;
            const I scale_lo = DotScale(scales[j / 4], j % 4), scale_hi = DotScale(scales[j / 4], j % 4 + 1);
            for (int t = 0; t < T; ++t) {
              const int8_t* a = reinterpret_cast<const BlockQ8K*>(acts[t].blocks)[b].qs + 16 * j;
              // A sub-block's sum is at most 16 x 3 x 128 = 6144: int16 (with VNNI multiply-adds of words for the
              // scales, not vpmulld: BM_Q2_K_Simd_L2 1.23x on Sapphire Rapids).
              values[t] = AddScaledInt16Pair<4>(values[t], level, a, scale_lo, scale_hi);
            }
          }
        }
      }
      for (int t = 0; t < T; ++t) {
        const BlockQ8K& a = reinterpret_cast<const BlockQ8K*>(acts[t].blocks)[b];
        I sum_pairs[8];  // of the sixteen bsums
        SpreadWordPairs(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums)), sum_pairs);
        SpreadWordPairs(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 8)), sum_pairs + 4);
        I offsets = V::Zero();
        for (int i = 0; i < 8; ++i) offsets = V::AddScaled(offsets, min_pairs[i], sum_pairs[i]);
        AddSuperBlock(values[t], offsets, d, dmin, a.d, acc[t], mins[t]);
      }
    }
    StoreValuesMinusMins(acc, mins, y, ldy, rows);
  }
};

// ---- Q6_K and Q3_K in row lanes, in ggml's vec_dot order (ops/dot_reference.h), one row per int32 / float lane --
// llama.cpp does not repack these on x86, so each row keeps vec_dot's eight float lanes: lane position l sums, per
// super-block, the exact products of values 4l..4l+3 of every 32-value group g times the group's scale for that
// half (sc[2g] for l < 4, sc[2g+1] for l >= 4: sixteen 16-value sub-blocks), and meets d_w * d_a in one FMA. Here a
// tile is V::kLanes rows, one per vector lane, and the eight positions are eight float vectors, added pairwise at
// the end as vec_dot adds its lanes. A slot (the type's pack format) holds the rows' d, the words of their scales,
// then per position l the chunks (four bytes of every row) that hold the eight groups' values there, the groups
// paired (ops/packed_weight.h): a chunk holds two values of each group of a pair, and so do the activations' four
// bytes it meets (ActRow::paired_qs). Per chunk: one maddubs of the levels (values + 2^kOffsetBits, unsigned) with
// the activations; per two chunks, one add of their int16 pairs and one multiply-add by the lane's two scales
// (vpdpwssd, or madd and add), the offset taken away from the pairs first: the activations' quad sums times it
// (ActRow::quad_pairs, worked out once per call). The decoder D gives the scales (Load, ScalePairs) and a
// position's levels (Levels: paired group g's).

// Q6_K's one-token tile (SubBlock16Lanes::Tile) prefetches its lines into L1 only, not also into L2 as NearAhead's
// others: whole r1b-Q6_K read the same either way token by token in one process (0.998x), and 0.94x in the build
// that had the L2 lines, processes alternated against the one before them (lowbit bench -p 0 -n 32 -r 3 -t 1).
template <class Ahead>
struct L1LinesOnly : Ahead {
  static constexpr size_t kL2Ahead = 0;
};

template <class D>
struct SubBlock16Lanes {
  static constexpr const PackFormat& kPack = D::kPack;
  static constexpr int kBlockValues = 256, kBatchTokens = 4;
  static constexpr size_t kSlot = kLanesSlot<kPack>;
  static constexpr int kOffsetTable = quad_pairs_table(D::kOffsetBits);
  static_assert(kOffsetTable >= 0, "ActRow::quad_pairs has no table for this offset");

  // Group pair w's exact products at position l with one token's activations (`paired`, `offset_pairs`: its
  // super-block's ActRow::paired_qs and quad_pairs), from the pair's two chunks' levels, less the levels' offset.
  static HWY_INLINE I PairProducts(I levels0, I levels1, const int8_t* paired, const int32_t* offset_pairs, int w,
                                   int l) {
    const int8_t* a = paired + 64 * w + 4 * l;
    const I products = V::Add16(V::PairsU8(levels0, V::BroadcastWord(a)), V::PairsU8(levels1, V::BroadcastWord(a + 32)));
    return V::Add16(products, V::SetWord(offset_pairs[8 * w + l]));
  }

  // A super-block's head for one token: d_w * d_a and, per part (positions 0-3, 4-7), the four group pairs' scales.
  struct Head {
    F dd;
    I scale_pairs[2][4];
  };
  static HWY_INLINE Head ReadHead(const uint8_t* slot, const ActRow& act, int64_t b) {
    Head h;
    h.dd = V::Mul(V::LanesHalfF(slot), V::SetF(reinterpret_cast<const BlockQ8K*>(act.blocks)[b].d));
    const typename D::Scales scales = D::Load(slot + 2 * V::kLanes);
    for (int part = 0; part < 2; ++part)
      for (int w = 0; w < 4; ++w) h.scale_pairs[part][w] = D::ScalePairs(scales, w, part);
    return h;
  }

  // One token on AVX-512 (D::kOneTokenLoop): the eight positions in a loop, not unrolled, and each super-block's head
  // read at the end of the one before. Unrolled, GCC hoists the positions' loads and decodes and spills them (Q3_K:
  // 660 instructions and 86 stack references a super-block; here 331 and 17). Only each page's start is opened
  // ahead (PrefetchTileAhead), not every line (PrefetchSlotStep): whole r1b-Q3_K_M token by token, both tiles built
  // and picked per call at dispatch in one process (21 rounds, both orders), -t 1 1.06x and 1.07x, -t 2 1.05x and
  // 1.05x. (Measured before with a run-time switch inside the loop, page starts had read 0.92x.) For Q3_K, against
  // Tile<1>, variants alternated call by call in one process (twenty rounds of ~256 MiB each):
  // streamed 4096x4096 1.19x, 2048x5632 1.21x (-t 2: 1.17x), 2048x2048 1.05x; whole r1b-Q3_K_M, token by token, -t 1
  // 1.07x and 1.02x (two runs of fifteen rounds), -t 2 1.07x. Q6_K's six-chunk positions read slower so (2048x5632
  // 0.98x, 2048x32000 0.94x; with kSlotStepAhead's 16 KiB 0.89x, whole r1b-Q6_K 0.88x, and again 0.93-0.95x picked
  // at dispatch on 2026-12-06) and keep Tile<1>.
  // NearAhead (Sapphire Rapids) prefetches every line instead, spread over the chunks' loads.
  template <class Ahead>
  static void OneTokenLoop(const uint8_t* slots, const ActRow& act, int64_t n_blocks, float* y, int rows) {
    constexpr int L = V::kLanes;
    F acc[8];  // the positions' floats, as Tile's
    for (F& a : acc) a = V::ZeroF();
    const auto slot_at = [slots](int64_t b) { return slots + static_cast<size_t>(b) * kSlot; };
    Head head = ReadHead(slot_at(0), act, 0);
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* q = slot_at(b) + 2 * L + 4 * L * D::kScaleWords;
      if constexpr (Ahead::kPageStarts) PrefetchTileAhead<kSlot>(slot_at(b));
      const uint8_t* ahead = slot_at(b);
      const int8_t* paired = act.paired_qs + 256 * b;
      const int32_t* offset_pairs = act.quad_pairs + kQuadPairsWords * b + kOffsetTable;
      // The parts unrolled, so each group pair's scales are the head's constant member.
#pragma GCC unroll 2
      for (int part = 0; part < 2; ++part) {
#pragma GCC unroll 1
        for (int l = 4 * part; l < 4 * part + 4; ++l) {
          const uint8_t* chunks = q + 4 * L * D::kChunksPerPosition * l;
          // Two chains, as Tile's with VNNI, each begun by a plain multiply-add (vpmaddwd) rather than vpdpwssd on a
          // zero, which GCC copies from a register it keeps for it (vmovdqa32): whole r1b-Q3_K_M token by token,
          // both built and picked per call at dispatch (21 rounds, both orders), -t 1 1.035-1.12x (six runs), -t 2
          // 1.05x and 1.07x; Q5_K's and IQ4_XS's one-token tiles the same way 0.91-1.01x.
          I sumi[2];
#pragma GCC unroll 4
          for (int w = 0; w < 4; ++w) {
            const I levels0 = D::Levels(chunks, 2 * w), levels1 = D::Levels(chunks, 2 * w + 1);
            if constexpr (!Ahead::kPageStarts) PrefetchSlotStep<kSlot, 32, Ahead>(ahead, levels1, 4 * l + w);
            const I products = PairProducts(levels0, levels1, paired, offset_pairs, w, l);
            const I scales = head.scale_pairs[part][w];
            sumi[w % 2] = w < 2 ? V::Scaled(products, scales) : V::AddScaled(sumi[w % 2], products, scales);
            V::InOrder(sumi[w % 2]);
          }
          acc[l] = V::Fma(head.dd, V::Cvt(V::Add32(sumi[0], sumi[1])), acc[l]);
        }
      }
      if (b + 1 < n_blocks) head = ReadHead(slot_at(b + 1), act, b + 1);
    }
    F sums[1] = {PairwiseLanes(acc)};
    StoreLanes(sums, y, 0, rows);
  }

  template <int T, class Ahead = FarAhead>
  static void Tile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
    if constexpr (T == 1 && D::kOneTokenLoop && kAvx512Shapes)
      return OneTokenLoop<Ahead>(slots, acts[0], n_blocks, y, rows);
    constexpr int L = V::kLanes;
    F acc[T][8];  // per token, the eight lane positions' floats
    for (auto& lanes : acc)
      for (F& a : lanes) a = V::ZeroF();
    // One token on AVX-512 (Q6_K; Q3_K takes OneTokenLoop) reads each super-block's head (d, scales) at the end of
    // the one before, as OneTokenLoop and IQ4XSLanes do. Whole r1b-Q6_K token by token, both tiles built and picked
    // per call at dispatch in one process (21 rounds, both orders): -t 1 1.04x and 1.03x, -t 2 1.07x and 1.07x;
    // r1b-Q4_K_M (a quarter Q6_K) 1.01x and 0.99x.
    constexpr bool kHeadAhead = T == 1 && kAvx512Shapes;
    F d;
    typename D::Scales scales;
    if constexpr (kHeadAhead) d = V::LanesHalfF(slots), scales = D::Load(slots + 2 * L);
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* slot = slots + static_cast<size_t>(b) * kSlot;
      if constexpr (!kHeadAhead) d = V::LanesHalfF(slot), scales = D::Load(slot + 2 * L);
      const int8_t* paired[T];  // the activations with their groups paired (ActRow::paired_qs)
      const int32_t* offset_pairs[T];  // the activations' quad sum pairs (ActRow::quad_pairs)
      F dd[T];
      for (int t = 0; t < T; ++t) {
        paired[t] = acts[t].paired_qs + 256 * b;
        offset_pairs[t] = acts[t].quad_pairs + kQuadPairsWords * b + kOffsetTable;
        dd[t] = V::Mul(d, V::SetF(reinterpret_cast<const BlockQ8K*>(acts[t].blocks)[b].d));
      }
      const uint8_t* q = slot + 2 * L + 4 * L * D::kScaleWords;
      const uint8_t* ahead = slot;
      // Unrolled, so each group's scale word is picked by a constant pattern.
#pragma GCC unroll 2
      for (int part = 0; part < 2; ++part) {  // positions 0-3 take each group's first scale, 4-7 its second
        I scale_pairs[4];  // per lane, the int16 pairs (sc(2w), sc(2w+1)) of this part
        for (int w = 0; w < 4; ++w) scale_pairs[w] = D::ScalePairs(scales, w, part);
#pragma GCC unroll 4
        for (int l = 4 * part; l < 4 * part + 4; ++l) {
          const uint8_t* chunks = q + 4 * L * D::kChunksPerPosition * l;
          // The exact sum of position l. With VNNI each multiply-add is one vpdpwssd, whose latency a single chain
          // waits on: one token's sum goes in two chains (group pairs 2v + chain), added at the end (Q3_K in L3
          // 39-41 -> 42-43 GB/s, alternated; Q6_K level). A batch's tokens are chains enough and more accumulators
          // spill (Q6_K 94 -> 40 GB/s); AVX2's madd-then-add chains only add (Q3_K 14.9 -> 14.1).
          constexpr int kChains = T == 1 && HWY_TARGET == HWY_AVX3_DL ? 2 : 1;
          I sumi[kChains][T];
          for (auto& chain : sumi)
            for (I& sum : chain) sum = V::Zero();
          // Groups 2w and 2w + 1 at once: paired (ops/packed_weight.h), each chunk holds two values of each, so
          // the two chunks' int16 pairs add up to group 2w's four level products in a lane's low word and group
          // 2w + 1's in its high word; less the activations' quad sums times the levels' offset (ActRow::quad_pairs)
          // they are the four values' products (|sum| <= 4 * 32 * 128 = 2^14), which meet the pair's scales in one
          // multiply-add. Taking the offset away so, not by a multiply-add of its own per pair, on the AVX2
          // machine (three rounds alternated): BM_Q6_K_Simd_L2 1.08x, _Batch64 1.10x, _Dram 1.03x; Q3_K (then shifting
          // Q6_K's offsets; its own table since) L2 1.03x, _Dram 1.09x, _Batch64 0.98x.
#pragma GCC unroll 4
          for (int w = 0; w < 4; ++w) {
            const I levels0 = D::Levels(chunks, 2 * w), levels1 = D::Levels(chunks, 2 * w + 1);
            if constexpr (T == 1) PrefetchSlotStep<kSlot, 32, L1LinesOnly<Ahead>>(ahead, levels1, 4 * l + w);
            for (int t = 0; t < T; ++t) {
              I& sum = sumi[w % kChains][t];
              sum = V::AddScaled(sum, PairProducts(levels0, levels1, paired[t], offset_pairs[t], w, l), scale_pairs[w]);
              V::InOrder(sum);
            }
          }
          for (int t = 0; t < T; ++t) {
            I sum = sumi[0][t];
            for (int c = 1; c < kChains; ++c) sum = V::Add32(sum, sumi[c][t]);
            acc[t][l] = V::Fma(dd[t], V::Cvt(sum), acc[t][l]);
          }
        }
      }
      if constexpr (kHeadAhead)
        if (b + 1 < n_blocks) d = V::LanesHalfF(slot + kSlot), scales = D::Load(slot + kSlot + 2 * L);
    }
    F sums[T];
    for (int t = 0; t < T; ++t) sums[t] = PairwiseLanes(acc[t]);
    StoreLanes(sums, y, ldy, rows);
  }
};

// Q6_K: int8 scales, levels 0..63 (values -32..31), in packed tensors rewritten as the fields x, y, z
// (q6k_encode_fields in ops/packed_weight.h) in place of ql and qh. kQ6KPack: the four scale words, then per
// position l and half h the chunks x (bytes 64h+4l..), y (64h+32+4l..), z (128+32h+4l..).
static_assert(kQ6KPack.unit == sizeof(BlockQ6K) && kQ6KPack.head_offset == offsetof(BlockQ6K, d) &&
              kQ6KPack.head == 2 && kQ6KPack.chunk == 4 && offsetof(BlockQ6K, qh) == 128 &&
              offsetof(BlockQ6K, scales) == 192);
struct Q6KLevels {
  static constexpr const PackFormat& kPack = kQ6KPack;
  static constexpr int kOffsetBits = 5, kScaleWords = 4, kChunksPerPosition = 6;
  static constexpr bool kOneTokenLoop = false;  // see SubBlock16Lanes::OneTokenLoop
  struct Scales {
    I words[4];  // scale bytes 4w..4w+3 of every row
  };
  static Scales Load(const uint8_t* p) {
    Scales s;
    for (int w = 0; w < 4; ++w) s.words[w] = V::LoadLanes(p + 4 * V::kLanes * w);
    return s;
  }
  // Bytes 0, 2 (part 0) or 1, 3 of word w, sign-extended.
  static I ScalePairs(const Scales& s, int w, int part) {
    return part ? V::Sar16<8>(s.words[w]) : V::Sar16<8>(V::Shl16<8>(s.words[w]));
  }
  // Paired group g = 4h + k from the half's fields x, y, z (q6k_encode_fields, ops/packed_weight.h): L0, L1 a mask,
  // L2 the low nibble of z under x's top two bits, L3 z's high nibble under y's. Shifts, not GFNI's affine maps:
  // 1.05x in L3 for this tile (46-47 -> 48-50 GB/s, alternated), where Q3_K's decode-heavy tile gains 1.1x by them.
  static I Levels(const uint8_t* chunks, int g) {
    constexpr int L = V::kLanes;
    const uint8_t* fields = chunks + 12 * L * (g / 4);
    const I x = V::LoadLanes(fields), y = V::LoadLanes(fields + 4 * L), z = V::LoadLanes(fields + 8 * L);
    switch (g % 4) {
      case 0: return V::ByteField<0, 0x3F>(x);
      case 1: return V::ByteField<0, 0x3F>(y);
      case 2: return V::AndOr(z, V::Set8(0x0F), V::ByteField<2, 0x30, false>(x));
      default: return V::Or(V::ByteField<4, 0x0F, false>(z), V::ByteField<2, 0x30, false>(y));
    }
  }
};

// Q3_K: 6-bit scale codes biased by 32, levels 0..7 (values -4..3), in packed tensors rewritten as the fields x, y, z
// (q3k_encode_fields in ops/packed_weight.h) in place of hmask and qs. kQ3KPack: the three words of the twelve code
// bytes, then per position l the chunks x, y, z (bytes 4l.. of each).
static_assert(kQ3KPack.unit == sizeof(BlockQ3K) && kQ3KPack.head_offset == offsetof(BlockQ3K, d) &&
              kQ3KPack.head == 2 && kQ3KPack.chunk == 4 && offsetof(BlockQ3K, qs) == 32 &&
              offsetof(BlockQ3K, scales) == 96);
struct Q3KLevels {
  static constexpr const PackFormat& kPack = kQ3KPack;
  static constexpr int kOffsetBits = 2, kScaleWords = 3, kChunksPerPosition = 3;
  static constexpr bool kOneTokenLoop = true;
  struct Scales {
    I codes[4];  // byte k of codes[q]: scale code 4q + k
  };
  // Code 4q + k: its low nibble from byte 4q + k of the first eight bytes' low, then high nibbles, its top two bits
  // from bits 2q, 2q+1 of byte 8 + k.
  // Inlined: with NearAhead's loop beside it GCC called it out of line from FarAhead's, which then differed from the
  // loop measured on Zen 5; forced, FarAhead's is that loop instruction for instruction.
  static HWY_INLINE Scales Load(const uint8_t* p) {
    constexpr int L = V::kLanes;
    const I two_bits = V::Set8(3), low_nibbles = V::SetWord(0x0F0F0F0F);
    const I w0 = V::LoadLanes(p), w1 = V::LoadLanes(p + 4 * L), w2 = V::LoadLanes(p + 8 * L);
    const I low[4] = {V::And(w0, low_nibbles), V::And(w1, low_nibbles), V::And(V::ShrWords<4>(w0), low_nibbles),
                      V::And(V::ShrWords<4>(w1), low_nibbles)};
    Scales s;
    for (int q = 0; q < 4; ++q) s.codes[q] = V::Or(low[q], V::Shl16<4>(V::And(V::ShrBytes(w2, 2 * q), two_bits)));
    return s;
  }
  // Codes 4w + part and 4w + part + 2, less 32.
  static I ScalePairs(const Scales& s, int w, int part) {
    return V::Sub16(V::And(part ? V::ShrWords<8>(s.codes[w]) : s.codes[w], V::SetWord(0x00FF00FF)), V::SetWord(0x00200020));
  }
  // Paired group g's levels: one GFNI affine map (or mask) of x, y or z; L6 and L7 take their top bit from z. Against
  // hmask and qs (a shift, a mask, a test and a masked add each) a one-token tile reads 1.3x as fast in L3.
  static I Levels(const uint8_t* chunks, int g) {
    constexpr int L = V::kLanes;
    const I x = V::LoadLanes(chunks), y = V::LoadLanes(chunks + 4 * L), z = V::LoadLanes(chunks + 8 * L);
    switch (g) {
      case 0: return V::ByteField<2, 7>(x);
      case 1: return V::ByteField<5, 7>(x);
      case 2: return V::ByteField<2, 7>(y);
      case 3: return V::ByteField<5, 7>(y);
      case 4: return V::ByteField<0, 7>(z);
      case 5: return V::ByteField<5, 7>(z);
      case 6: return V::AndOr(x, V::Set8(3), V::ByteField<1, 4>(z));
      default: return V::AndOr(y, V::Set8(3), V::ByteField<2, 4>(z));
    }
  }
};

// ---- Q5_K in row lanes, in ggml's vec_dot order (ops/dot_reference.h), one row per int32 / float lane ----
// As Q6_K above: llama.cpp does not repack Q5_K on x86, so each row keeps vec_dot's eight float lanes (position l:
// values 4l..4l+3 of every 32-value sub-block j times its scale sc_j, one FMA with d_w * d_a per super-block) and
// one more float for the mins, the exact sum of m_j S_j times -d_a * dmin_w per super-block, added at the end. Its
// slot (kQ5KPack) holds the rows' d|dmin, the three words of their scales and mins (UnpackK4Lanes), then for each
// position l the w chunk and the four v_p chunks of sub-block pairs (2p, 2p+1), the levels 0..31 rewritten at load
// (q5k_encode_fields in ops/packed_weight.h): paired sub-block 2p's in the low five bits of v_p, 2p + 1's from w
// and the top of v_p. Paired as Q6_K's groups, each chunk holds two values of both sub-blocks of the pair, and so do
// the activations' four bytes it meets (ActRow::paired_qs): per pair and position, two maddubs, one add of their
// int16 pairs (sub-block 2p's four products in a lane's low word, 2p + 1's in its high) and one multiply-add by
// the pair's two scales. No offset.
static_assert(kQ5KPack.unit == sizeof(BlockQ5K) && kQ5KPack.head_offset == 0 && kQ5KPack.head == 4 &&
              kQ5KPack.chunk == 4 && offsetof(BlockQ5K, scales) == 4 && offsetof(BlockQ5K, qh) == 16 &&
              offsetof(BlockQ5K, qs) == 48);

struct Q5KLanes {
  static constexpr const PackFormat& kPack = kQ5KPack;
  static constexpr int kBlockValues = 256, kBatchTokens = 4;
  template <int T, class Ahead = FarAhead>
  static void Tile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
    constexpr int L = V::kLanes;
    constexpr size_t kSlot = kLanesSlot<kQ5KPack>;
    // Generation on AVX-512 reads each super-block's head one super-block behind its chunks (RunHeadBehind), its
    // positions in a loop, only each page's start opened ahead (NearAhead: every line, spread over the chunks'
    // loads); AVX2 and batches read the head first, unrolled.
    constexpr bool kHeadBehind = T == 1 && kAvx512Shapes;
    F acc[T][8], mins[T];  // per token, the eight lane positions' floats and the mins'
    for (int t = 0; t < T; ++t) {
      mins[t] = V::ZeroF();
      for (F& a : acc[t]) a = V::ZeroF();
    }
    const I low_five = V::Set8(0x1F);
    const auto slot_at = [slots](int64_t b) { return slots + static_cast<size_t>(b) * kSlot; };
    const auto activations = [acts](int t, int64_t b) { return reinterpret_cast<const BlockQ8K*>(acts[t].blocks) + b; };
    // Super-block b's head: its scale pairs (per lane, the int16 pairs (sc_2p, sc_2p+1)) and d_w * d_a; its mins
    // are added here.
    const auto read_head = [&](int64_t b, I (&scale_pairs)[4], F (&dd)[T]) HWY_ATTR {
      F d, dmin;
      V::LanesHalfPairF(slot_at(b), d, dmin);
      const K4ScalesMins k4 = UnpackK4Lanes(slot_at(b) + 4 * L);
      for (int p = 0; p < 4; ++p)
        scale_pairs[p] = V::LaneBytes(k4.scales[p / 2], LaneByteWordsPattern(2 * (p % 2), 2 * (p % 2) + 1));
      for (int t = 0; t < T; ++t) {
        const BlockQ8K* a = activations(t, b);
        dd[t] = V::Mul(d, V::SetF(a->d));
        mins[t] = V::Fma(V::Mul(V::SetF(-a->d), dmin), V::Cvt(K4MinsDot(k4, *a)), mins[t]);
      }
    };
    // Super-block b's position l: the int16 pair products of each sub-block pair p and token t, given to
    // take(p, t, products).
    const auto position_products = [&](int64_t b, int l, const uint8_t*& ahead, const auto& take) HWY_ATTR {
      const uint8_t* chunks = slot_at(b) + 16 * L + 20 * L * l;
      const I w = V::LoadLanes(chunks);
  #pragma GCC unroll 4
      for (int p = 0; p < 4; ++p) {
        const I v = V::LoadLanes(chunks + 4 * L * (1 + p));
        if constexpr (T == 1 && !(kHeadBehind && Ahead::kPageStarts))
          PrefetchSlotStep<kSlot, 32, Ahead>(ahead, v, 4 * l + p);
        const I lo = V::And(v, low_five), hi = SplitFiveBitLevels(w, v, p);
        for (int t = 0; t < T; ++t) {
          const int8_t* at = acts[t].paired_qs + 256 * b + 64 * p + 4 * l;  // ActRow::paired_qs
          take(p, t, V::Add16(V::PairsU8(lo, V::BroadcastWord(at)), V::PairsU8(hi, V::BroadcastWord(at + 32))));
        }
      }
    };
    const auto add_scaled = [](I& sum, I products, I scale_pair) HWY_ATTR {
      sum = V::AddScaled(sum, products, scale_pair);
      V::InOrder(sum);
    };
    if constexpr (kHeadBehind) {
      I held[2][8][4];  // two super-blocks' pair products, per position and pair
      RunHeadBehind(
          n_blocks,
          [&](int64_t b, int buffer) HWY_ATTR {
            if constexpr (Ahead::kPageStarts) PrefetchTileAhead<kSlot>(slot_at(b));
            const uint8_t* ahead = slot_at(b);
  #pragma GCC unroll 1
            for (int l = 0; l < 8; ++l)
              position_products(b, l, ahead, [&](int p, int, I products) HWY_ATTR { held[buffer][l][p] = products; });
          },
          [&](int64_t b, int buffer) HWY_ATTR {
            I scale_pairs[4];
            F dd[1];
            read_head(b, scale_pairs, dd);
  #pragma GCC unroll 8
            for (int l = 0; l < 8; ++l) {
              I sumi = V::Zero();  // the exact sum of position l
              for (int p = 0; p < 4; ++p) add_scaled(sumi, held[buffer][l][p], scale_pairs[p]);
              acc[0][l] = V::Fma(dd[0], V::Cvt(sumi), acc[0][l]);
            }
          });
    } else {
      for (int64_t b = 0; b < n_blocks; ++b) {
        I scale_pairs[4];
        F dd[T];
        read_head(b, scale_pairs, dd);
        const uint8_t* ahead = slot_at(b);
  #pragma GCC unroll 8
        for (int l = 0; l < 8; ++l) {
          I sumi[T];  // the exact sums of position l
          for (I& sum : sumi) sum = V::Zero();
          position_products(b, l, ahead,
                            [&](int p, int t, I products) HWY_ATTR { add_scaled(sumi[t], products, scale_pairs[p]); });
          for (int t = 0; t < T; ++t) acc[t][l] = V::Fma(dd[t], V::Cvt(sumi[t]), acc[t][l]);
        }
      }
    }
    F sums[T];
    for (int t = 0; t < T; ++t) sums[t] = V::AddF(PairwiseLanes(acc[t]), mins[t]);
    StoreLanes(sums, y, ldy, rows);
  }
};

// ---- IQ4_XS in row lanes, in ggml's vec_dot order (ops/dot_reference.h), one row per int32 / float lane ----
// As Q5_K: llama.cpp does not repack IQ4_XS on x86, so each row keeps vec_dot's eight float lanes (position l:
// values 4l..4l+3 of every 32-value sub-block j times its scale code_j - 32, one FMA with d_w * d_a per
// super-block), no mins. Its slot (kIQ4XSPack) holds the rows' d|scales_h, their scales_l words, then for c = 0..3
// the eight sub-blocks' chunks c, whose low nibbles are position c and high nibbles position c + 4: table values
// -127..113, met by the activations with the sign trick (|q| times a with q's sign: maddubs' pairs cannot
// saturate) and one multiply-add of the pairs by the scale.
static_assert(kIQ4XSPack.unit == sizeof(BlockIQ4XS) && kIQ4XSPack.head == 4 && offsetof(BlockIQ4XS, scales_h) == 2 &&
              offsetof(BlockIQ4XS, scales_l) == 4 && offsetof(BlockIQ4XS, qs) == 8);

// The eight 6-bit scale codes of every lane's row, less 32, each in both int16 words: code j is nibble j of
// scales_l (the word `low`) under bits 2j, 2j+1 of scales_h (the high half of `head`).
HWY_INLINE void IQ4XSScales(I head, I low, I (&scale)[8]) {
  // Byte k's high nibble: bits 4k..4k+3 of scales_h (bytes 2, 3 of the lane), for codes 2k (bits 4, 5) and 2k+1.
  const I high_bytes = V::LaneBytes(head, LaneBytesPattern(2, 2, 3, 3));
  const I high = V::Or(V::And(V::Shl16<4>(high_bytes), V::SetWord(0x00F000F0)), V::And(high_bytes, V::SetWord(static_cast<int32_t>(0xF000F000u))));
  const I nibbles = V::SetWord(0x0F0F0F0F), two_bits = V::SetWord(0x30303030);
  const I codes[2] = {V::Or(V::And(low, nibbles), V::And(high, two_bits)),  // byte k: code 2k
                      V::Or(V::And(V::Shr16<4>(low), nibbles), V::And(V::Shr16<2>(high), two_bits))};
  for (int j = 0; j < 8; ++j) scale[j] = V::Sub16(V::LaneByteWords(codes[j % 2], j / 2), V::SetWord(0x00200020));
}

// kWhole: in the AMX order (ops/dot_reference.h), each super-block's position sums added as integers and met by
// d_w * d_a in one FMA into one float per row, not vec_dot's eight lane positions.
template <bool kWhole>
struct IQ4XSLanes {
  static constexpr const PackFormat& kPack = kIQ4XSPack;
  static constexpr int kBlockValues = 256, kBatchTokens = 2;
  // A super-block's head: the rows' d and their eight scale codes less 32, each in both words.
  static HWY_INLINE void ReadHead(const uint8_t* slot, F& d, I (&scale)[8]) {
    const I head = V::LoadLanes(slot);  // d | scales_h << 16
    d = V::LowHalvesF(head);
    IQ4XSScales(head, V::LoadLanes(slot + 4 * V::kLanes), scale);
  }

#if HWY_TARGET == HWY_AVX3_DL
  // kWhole with VNNI and VBMI (the AMX order on a CPU with AMX): the table's values plus 128 (kIq4nlOffsetLevels),
  // unsigned, go straight into vpdpbusd with the activations' bytes, one exact sum per sub-block and row, scaled once
  // per super-block; the 128s come off as 128 times the scales times the sub-blocks' activation sums (bsums
  // pairs). A chunk is then one shift, two vpermb and two vpdpbusd where the signed pairs (maddubs with the sign
  // trick, a multiply-add by the scale) took about twelve instructions: BM_IQ4_XS_Simd_L2 1.35x, _Dram 0.89 -> 0.92
  // of the probe, whole IQ4_XS token by token 1.03x. Bounds: a sub-block's sum at most 32 x 241 x 128 < 2^20, eight
  // of them times scales of at most 32 < 2^28; the offsets' 128 x 8 x 32 x 4096 < 2^28.
  template <int T, class Ahead>
  static void WholeTile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
    constexpr int L = V::kLanes;
    constexpr size_t kSlot = kLanesSlot<kIQ4XSPack>;
    const I levels = V::Table16(kIq4nlOffsetLevels.data());  // vpermb reads index bits 0-5: the table four times over
    F acc[T];
    for (F& a : acc) a = V::ZeroF();
    // One token reads each super-block's head at the end of the one before (as Tile).
    constexpr bool kHeadAhead = T == 1;
    F d;
    I scale[8];  // each code - 32 in both words
    if constexpr (kHeadAhead) ReadHead(slots, d, scale);
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* slot = slots + static_cast<size_t>(b) * kSlot;
      if constexpr (!kHeadAhead) ReadHead(slot, d, scale);
      const BlockQ8K* a[T];
      for (int t = 0; t < T; ++t) a[t] = reinterpret_cast<const BlockQ8K*>(acts[t].blocks) + b;
      const uint8_t* qs = slot + 8 * L;
      const uint8_t* ahead = slot;
      I sub[T][8];  // per sub-block, the exact sum of its (levels + 128) times the activations
      for (auto& sums : sub)
        for (I& x : sums) x = V::Zero();
#pragma GCC unroll 1
      for (int c = 0; c < 4; ++c) {  // positions c and c + 4 of every sub-block
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          const I bytes = V::LoadLanes(qs + 4 * L * (8 * c + j));
          if constexpr (T == 1) PrefetchSlotStep<kSlot, 32, Ahead>(ahead, bytes, 8 * c + j);
          const I lo = _mm512_permutexvar_epi8(bytes, levels);
          const I hi = _mm512_permutexvar_epi8(V::template Shr16<4>(bytes), levels);
          for (int t = 0; t < T; ++t) {
            const int8_t* at = a[t]->qs + 32 * j + 4 * c;
            sub[t][j] = V::DotU8At(V::DotU8At(sub[t][j], lo, at), hi, at + 16);
          }
        }
      }
      for (int t = 0; t < T; ++t) {
        I whole = V::Zero(), offsets = V::Zero();
        for (int j = 0; j < 8; ++j) {
          whole = V::Add32(whole, V::MulLo32(sub[t][j], V::template Sar32<16>(scale[j])));
          int32_t sums;  // bsums 2j and 2j + 1: sub-block j's activations, as an int16 pair
          std::memcpy(&sums, a[t]->bsums + 2 * j, sizeof(sums));
          offsets = V::AddScaled(offsets, scale[j], V::SetWord(sums));
        }
        whole = V::Sub32(whole, V::template Shl32<7>(offsets));
        acc[t] = V::Fma(V::Cvt(whole), V::Mul(d, V::SetF(a[t]->d)), acc[t]);
      }
      if constexpr (kHeadAhead)
        if (b + 1 < n_blocks) ReadHead(slot + kSlot, d, scale);
    }
    StoreLanes(acc, y, ldy, rows);
  }
#endif

  // Not inlined into its runner, as before the two stream policies (FarAhead's tile is then the one measured on
  // Zen 5, instruction for instruction; NearAhead's read the same on Sapphire Rapids, 1.24x against FarAhead).
  template <int T, class Ahead = FarAhead>
  static HWY_NOINLINE void Tile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
#if HWY_TARGET == HWY_AVX3_DL
    if constexpr (kWhole) return WholeTile<T, Ahead>(slots, acts, n_blocks, y, ldy, rows);
#endif
    constexpr int L = V::kLanes;
    constexpr size_t kSlot = kLanesSlot<kIQ4XSPack>;
    F acc[T][kWhole ? 1 : 8];  // per token, the eight lane positions' floats (kWhole: the one float)
    for (auto& lanes : acc)
      for (F& a : lanes) a = V::ZeroF();
    [[maybe_unused]] I whole[T];  // kWhole: the super-block's exact sum so far
    // Generation on AVX-512 takes each super-block's positions in a loop, not unrolled (as Q4KLanes its sub-block
    // pairs), and reads its head (d, scales) at the end of the one before (as SubBlock16Lanes::OneTokenLoop), so
    // no chunk's multiply-add waits on a head line just loaded. The same bits. Whole r1b-IQ4_XS token by token, each
    // step against the tile before it, both built and picked per call at dispatch in one process (21 rounds, both
    // orders): the rolled loop -t 1 1.20x and 1.21x, -t 2 1.07x and 1.04x (processes alternated: 1.11-1.16x,
    // 1.06-1.13x; streamed 2048x5632 alone only 1.03x, in L3 1.00x); the head ahead -t 1 1.085x and 1.07x, -t 2
    // 1.06x and 1.06x. Unrolled, a super-block's 32 chunks were ~500 instructions; rolled, ~130 a position pair.
    // With only each page's start prefetched, not every line, it read 0.69-0.76x. (Rolling Q2_K's halves or Q6_K's
    // parts the same way measured 1.00x.)
    constexpr bool kOneTokenShape = T == 1 && kAvx512Shapes;
    F d;
    I scale[8];
    if constexpr (kOneTokenShape) ReadHead(slots, d, scale);
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* slot = slots + static_cast<size_t>(b) * kSlot;
      if constexpr (!kOneTokenShape) ReadHead(slot, d, scale);
      const BlockQ8K* a[T];
      F dd[T];
      for (int t = 0; t < T; ++t) {
        a[t] = reinterpret_cast<const BlockQ8K*>(acts[t].blocks) + b;
        dd[t] = V::Mul(d, V::SetF(a[t]->d));
      }
      const uint8_t* qs = slot + 8 * L;
      const uint8_t* ahead = slot;
      if constexpr (kWhole)
        for (I& w : whole) w = V::Zero();
      const auto positions = [&](int c) HWY_ATTR {  // c and c + 4
        I low_sum[T], high_sum[T];  // the exact sums of positions c and c + 4
        for (int t = 0; t < T; ++t) low_sum[t] = high_sum[t] = V::Zero();
  #pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          const I bytes = V::LoadLanes(qs + 4 * L * (8 * c + j));
          if constexpr (T == 1) PrefetchSlotStep<kSlot, 32, Ahead>(ahead, bytes, 8 * c + j);
          const typename V::Signed lo = V::template Iq4nlSigned<false>(bytes), hi = V::template Iq4nlSigned<true>(bytes);
          for (int t = 0; t < T; ++t) {
            const int8_t* at = a[t]->qs + 32 * j + 4 * c;
            low_sum[t] = V::AddScaled(low_sum[t], V::PairsS8(lo, V::BroadcastWord(at)), scale[j]);
            high_sum[t] = V::AddScaled(high_sum[t], V::PairsS8(hi, V::BroadcastWord(at + 16)), scale[j]);
            V::InOrder(low_sum[t]);
            V::InOrder(high_sum[t]);
          }
        }
        for (int t = 0; t < T; ++t) {
          if constexpr (kWhole) {
            whole[t] = V::Add32(whole[t], V::Add32(low_sum[t], high_sum[t]));
          } else {
            acc[t][c] = V::Fma(dd[t], V::Cvt(low_sum[t]), acc[t][c]);
            acc[t][c + 4] = V::Fma(dd[t], V::Cvt(high_sum[t]), acc[t][c + 4]);
          }
        }
      };
      ForFour<kOneTokenShape>(positions);
      if constexpr (kWhole)
        for (int t = 0; t < T; ++t) acc[t][0] = V::Fma(V::Cvt(whole[t]), dd[t], acc[t][0]);
      if constexpr (kOneTokenShape)
        if (b + 1 < n_blocks) ReadHead(slot + kSlot, d, scale);
    }
    F sums[T];
    for (int t = 0; t < T; ++t) {
      if constexpr (kWhole) sums[t] = acc[t][0];
      else sums[t] = PairwiseLanes(acc[t]);
    }
    StoreLanes(sums, y, ldy, rows);
  }
};

#endif  // LOWBIT_TILE_KERNELS

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#endif  // LOWBIT_OPS_SIMD_KQUANTS_INL_H_
