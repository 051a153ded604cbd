// Matmul tiles for the 32-value block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL and the GPTQ/AWQ I4G groups).
// Included by ops/simd_matmul.cc once per Highway target (foreach_target), hence the toggling guard.
#if defined(LOWBIT_OPS_SIMD_LEGACY_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWBIT_OPS_SIMD_LEGACY_INL_H_
#undef LOWBIT_OPS_SIMD_LEGACY_INL_H_
#else
#define LOWBIT_OPS_SIMD_LEGACY_INL_H_
#endif

#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include <hwy/aligned_allocator.h>
#include <hwy/cache_control.h>

#include "ops/activation_quant.h"
#include "ops/packed_weight.h"
#include "ops/simd_vectors-inl.h"
#include "quant/int_groups.h"
#include "quant/legacy_quants.h"

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")  // see ops/simd_vectors-inl.h
#endif
namespace lowbit {
namespace HWY_NAMESPACE {

#if LOWBIT_WIDE_KERNELS

// ---- the GPTQ/AWQ groups (I4G, signed values against Q8_0) in ggml's vec_dot order, two rows per 512-bit register;
// the other 32-value types have row-lane tiles below ----
// The decoder gives a block's unsigned levels for kRows rows, level - kOffset the signed value: they go straight into
// the u8 x s8 pair sums, started from -kOffset times the activations' quad sums (QuantizedActivations::quad_sums),
// so the lanes come out as the signed products (levels up to 31: maddubs' int16 pairs cannot saturate without VNNI).
// GPTQ/AWQ groups (quant/int_groups.h): level - zero, zero 0..16; unsigned as level + 16 - zero (0..31).
struct I4GDecode {
  using Block = BlockI4G;
  static constexpr int kOffset = 16;
  static I Nibbles(const RowGroup& g, int64_t b) { return V::RowsNibbles(g.at<Block>(b, offsetof(Block, qs)), g.stride); }
  static I Zero(const RowGroup& g, int64_t b) { return V::RowsByte(g.at<Block>(b, offsetof(Block, z)), g.stride); }
  static I Levels(const RowGroup& g, int64_t b) { return V::Sub8(V::Or(Nibbles(g, b), V::Set8(16)), Zero(g, b)); }
};

// Block b of P row groups: the levels and the rows' scales.
template <typename D, int P>
HWY_INLINE void DecodeLegacy(const RowGroup* groups, int64_t b, I (&q)[P], F (&dw)[P]) {
  using Block = typename D::Block;
  for (int p = 0; p < P; ++p) {
    q[p] = D::Levels(groups[p], b);
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
                            F (&acc)[P][T]) {
  StreamAhead<T>(groups[0], b);
  I q[P];
  F dw[P];
  if (decoded) {
    const auto& e = decoded->blocks[static_cast<size_t>(b)];
    for (int p = 0; p < P; ++p) q[p] = e.q[p], dw[p] = e.dw[p];
  } else {
    DecodeLegacy<D, P>(groups, b, q, dw);
  }
  for (int t = 0; t < T; ++t) {
    const BlockQ8_0& a = reinterpret_cast<const BlockQ8_0*>(acts[t].blocks)[b];
    const I av = V::Act32(a.qs);
    const I init = V::NegShl(V::Act32Words(acts[t].quad_sums + 8 * b), D::kOffset);
    const F da = V::SetF(acts[t].scales[b]);
    for (int p = 0; p < P; ++p) acc[p][t] = V::Fma(V::Mul(dw[p], da), V::Cvt(V::DotU8(init, q[p], av)), acc[p][t]);
  }
}

// P row groups x T tokens over n_blocks blocks: y[t * ldy + r] for row r of the tile, `rows` of them valid;
// kPacked: the groups are a whole packed tile (TileGroups).
template <typename D, int P, int T, bool kPacked = false>
void LegacyTile(const RowGroup* given, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows,
                const DecodedRows<P>* decoded) {
  using Block = typename D::Block;
  RowGroup local[P];
  const RowGroup* const groups = TileGroups<kPacked, sizeof(Block), 2>(given, local);
  F acc[P][T];
  for (int p = 0; p < P; ++p)
    for (int t = 0; t < T; ++t) acc[p][t] = V::ZeroF();
  for (int64_t b = 0; b < n_blocks; ++b) LegacyBlock<D, P, T>(groups, acts, b, decoded, acc);
  for (int p = 0; p < P; ++p)
    for (int t = 0; t < T; ++t) {
      float sums[kRows];
      V::StoreSums(acc[p][t], sums);
      for (int r = 0; r < kRows && p * kRows + r < rows; ++r) y[static_cast<size_t>(t) * ldy + static_cast<size_t>(p * kRows + r)] = sums[r];
    }
}

// ---- Q4_0 and IQ4_NL in row lanes: llama.cpp's x86 order (ops/dot_reference.h), one row per int32 / float lane ----
// A tile is V::kLanes rows. Its packed slot for a block (kQ4_0Pack; IQ4_NL's block has the same layout) holds the
// rows' fp16 scales side by side, then for c = 0..3 qs bytes 4c..4c+3 of every row: one load gives that chunk of
// every row, whose low nibbles are values 4c..4c+3 and high nibbles 16+4c..16+4c+3, and vpdpbusd meets each with
// the activations' four bytes broadcast to every lane. After eight of them a lane holds its row's exact block sum,
// and one FMA per block adds it to the row's float: no horizontal sums, and one convert, multiply and FMA per
// kLanes outputs where the vec_dot order needs them per output.
static_assert(kQ4_0Pack.unit == sizeof(BlockQ4_0) && kQ4_0Pack.head_offset == offsetof(BlockQ4_0, d) &&
              kQ4_0Pack.head == 2 && kQ4_0Pack.chunk == 4 && offsetof(BlockQ4_0, qs) == 2);
static_assert(sizeof(BlockIQ4NL) == sizeof(BlockQ4_0) && offsetof(BlockIQ4NL, d) == 0 && offsetof(BlockIQ4NL, qs) == 2);

// How each type's nibbles meet the activations. Q4_0: levels 0..15 (value + 8), the sum started from -8 times the
// activations' block sum. IQ4_NL: with VNNI its table's values + 128 (0..241), started from -128 times the block
// sum; without, the maddubs pairs of such levels could overflow int16, so the signed values (|v| <= 127) meet the
// activations with the sign trick.
struct Q4_0Nibbles {
  static constexpr int kOffset = 8;
  static I Decode(I nibbles) { return nibbles; }
  static I Dot(I acc, I levels, I act) { return V::DotU8(acc, levels, act); }
};
// The IQ4_NL table plus 128 as unsigned levels.
alignas(16) constexpr uint8_t kIq4nlLevels[16] = {1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241};
static_assert(kIq4nlLevels[0] == kIq4nlValues[0] + 128 && kIq4nlLevels[15] == kIq4nlValues[15] + 128);
struct IQ4NLNibbles {
  static constexpr int kOffset = V::kVnni ? 128 : 0;
  static I Decode(I nibbles) {
    return V::Lookup(V::Table16(V::kVnni ? reinterpret_cast<const int8_t*>(kIq4nlLevels) : kIq4nlValues), nibbles);
  }
  static I Dot(I acc, I q, I act) {
    if constexpr (V::kVnni) return V::DotU8(acc, q, act);
    else return V::DotS8(acc, q, act);
  }
};

// T tokens over one tile whose blocks are packed slots from `slots`; y[t * ldy + r] for the first `rows` rows.
template <class N>
struct NibbleLanes {
  static constexpr const PackFormat& kPack = kQ4_0Pack;
  static constexpr int kBlockValues = 32, kBatchTokens = 8;
  template <int T>
  static void Tile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
    constexpr int L = V::kLanes;
    constexpr size_t kSlot = kLanesSlot<kQ4_0Pack>;
    F acc[T];
    for (F& a : acc) a = V::ZeroF();
    const I low_nibble = V::Set8(0x0F);
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* slot = slots + static_cast<size_t>(b) * kSlot;
      if constexpr (T == 1) prefetch_stream_ahead(slot, kSlot);
      const F dw = V::LanesHalfF(slot);
      I lo[4], hi[4];
      for (int c = 0; c < 4; ++c) {
        const I bytes = V::LoadLanes(slot + 2 * L + 4 * L * c);
        lo[c] = N::Decode(V::And(bytes, low_nibble));
        hi[c] = N::Decode(V::And(V::template Shr16<4>(bytes), low_nibble));
      }
      for (int t = 0; t < T; ++t) {
        const BlockQ8_0& a = reinterpret_cast<const BlockQ8_0*>(acts[t].blocks)[b];
        I sum = V::SetWord(-N::kOffset * acts[t].block_sums[b]);
        for (int c = 0; c < 4; ++c) sum = N::Dot(sum, lo[c], V::BroadcastWord(a.qs + 4 * c));
        for (int c = 0; c < 4; ++c) sum = N::Dot(sum, hi[c], V::BroadcastWord(a.qs + 16 + 4 * c));
        acc[t] = V::Fma(V::Cvt(sum), V::Mul(dw, V::SetF(acts[t].scales[b])), acc[t]);
      }
    }
    StoreLanes(acc, y, ldy, rows);
  }
};

// ---- Q8_0, Q5_0, Q4_1 and Q5_1 in row lanes, in ggml's vec_dot order (ops/dot_reference.h) ----
// llama.cpp does not repack these on x86, so each row keeps vec_dot's eight float lanes: position l the exact sum
// of values 4l..4l+3 of a block, met by d_w * d_a in one FMA per block, the lanes added pairwise at the end; Q4_1
// and Q5_1 add the blocks' m * s (weight offset times activation sum), summed apart. A tile is V::kLanes rows, one
// per lane, the positions eight float vectors (and the offsets a ninth). Its slot for a block holds the rows' heads
// side by side (fp16 d; Q4_1, Q5_1: d and m), then the rest in 4-byte chunks of every row (kQ8_0Pack ...
// kQ5_1Pack): Q8_0's qs bytes 4l.. per position l; the 4-bit types' qs bytes 4c..4c+3 per c < 4, whose low nibbles
// are values 4c.. (position c) and high nibbles 16+4c.. (position c + 4), after Q5_0's and Q5_1's qh word (bit j:
// value j's fifth bit). Per position every row's four levels (value + kOffset, unsigned) meet the activations' four
// bytes in one vpdpbusd started from -kOffset times their quad sum.
static_assert(kQ8_0Pack.unit == sizeof(BlockQ8_0) && kQ8_0Pack.head == 2 && offsetof(BlockQ8_0, qs) == 2);
static_assert(kQ4_1Pack.unit == sizeof(BlockQ4_1) && kQ4_1Pack.head == 4 && offsetof(BlockQ4_1, m) == 2 && offsetof(BlockQ4_1, qs) == 4);
static_assert(kQ5_0Pack.unit == sizeof(BlockQ5_0) && kQ5_0Pack.head == 2 && offsetof(BlockQ5_0, qh) == 2 && offsetof(BlockQ5_0, qs) == 6);
static_assert(kQ5_1Pack.unit == sizeof(BlockQ5_1) && kQ5_1Pack.head == 4 && offsetof(BlockQ5_1, qh) == 4 && offsetof(BlockQ5_1, qs) == 8);

// Q8_0: with VNNI the values + 128 (an xor), started from -128 times the quad sum; without, the signed values with
// the sign trick.
struct Q8_0Levels {
  static constexpr const PackFormat& kPack = kQ8_0Pack;
  using Act = BlockQ8_0;
  static constexpr int kOffset = V::kVnni ? 128 : 0, kBatchTokens = 2;
  struct Block {
    const uint8_t* rest;
  };
  static Block Load(const uint8_t* rest) { return {rest}; }
  static I Position(const Block& b, int l) {
    const I q = V::LoadLanes(b.rest + 4 * V::kLanes * l);
    if constexpr (V::kVnni) return V::Xor(q, V::Set8(static_cast<int8_t>(0x80)));
    else return q;
  }
  static I Dot(I start, I q, I act) {
    if constexpr (V::kVnni) return V::DotU8(start, q, act);
    else return V::DotS8(start, q, act);
  }
};
// The 4-bit types: levels 0..15, or 0..31 with the fifth bit; level - kOffset the value (Q5_0: 16; Q4_1, Q5_1: 0,
// their offset is m). Levels up to 31 keep maddubs' int16 pairs from saturating without VNNI.
template <const PackFormat& kFormat, typename ActBlock, int kLevelOffset, bool kFifthBit>
struct NibbleLevels {
  static constexpr const PackFormat& kPack = kFormat;
  using Act = ActBlock;
  // On AVX2 (16 registers) Q5_0's per-token offsets tip two tokens' 16 accumulators into spills: batches of 64
  // tokens ran at 14 GB/s of weights with two tokens a tile, 17 with one (Q4_1 and Q5_1 lose with one: 33 -> 28, 28
  // -> 20).
  static constexpr int kOffset = kLevelOffset, kBatchTokens = kLevelOffset != 0 && V::kRows == 1 ? 1 : 2;
  struct Block {
    const uint8_t* qs;
    I qh;
  };
  static Block Load(const uint8_t* rest) {
    if constexpr (kFifthBit) return {rest + 4 * V::kLanes, V::LoadLanes(rest)};
    else return {rest, V::Zero()};
  }
  static I Position(const Block& b, int l) {
    const I bytes = V::LoadLanes(b.qs + 4 * V::kLanes * (l % 4));
    const I nibbles = V::And(l < 4 ? bytes : V::template Shr16<4>(bytes), V::Set8(0x0F));
    if constexpr (kFifthBit) return V::AddWhereLaneBits(nibbles, b.qh, 4 * l, 16);
    else return nibbles;
  }
  static I Dot(I start, I levels, I act) { return V::DotU8(start, levels, act); }
};
using Q5_0Levels = NibbleLevels<kQ5_0Pack, BlockQ8_0, 16, true>;
using Q4_1Levels = NibbleLevels<kQ4_1Pack, BlockQ8_1, 0, false>;
using Q5_1Levels = NibbleLevels<kQ5_1Pack, BlockQ8_1, 0, true>;

template <class D>
struct Block32Lanes {
  static constexpr const PackFormat& kPack = D::kPack;
  static constexpr int kBlockValues = 32, kBatchTokens = D::kBatchTokens;
  static constexpr bool kAffine = std::is_same_v<typename D::Act, BlockQ8_1>;  // Q4_1, Q5_1: the m * s offsets
  template <int T>
  static void Tile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
    constexpr int L = V::kLanes;
    constexpr size_t kSlot = kLanesSlot<kPack>;
    F acc[T][8];  // per token, the eight lane positions' floats
    F offsets[T];
    for (int t = 0; t < T; ++t) {
      offsets[t] = V::ZeroF();
      for (F& a : acc[t]) a = V::ZeroF();
    }
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* slot = slots + static_cast<size_t>(b) * kSlot;
      if constexpr (T == 1) prefetch_stream_ahead(slot, kSlot);
      F dw, m;
      if constexpr (kAffine) V::LanesHalfPairF(slot, dw, m);
      else dw = V::LanesHalfF(slot);
      const typename D::Block block = D::Load(slot + L * kPack.head);
      const typename D::Act* a[T];
      F dd[T];
      for (int t = 0; t < T; ++t) {
        a[t] = reinterpret_cast<const typename D::Act*>(acts[t].blocks) + b;
        dd[t] = V::Mul(dw, V::SetF(acts[t].scales[b]));
        if constexpr (kAffine) offsets[t] = V::Fma(m, V::SetF(Half(a[t]->s)), offsets[t]);
      }
      for (int l = 0; l < 8; ++l) {
        const I q = D::Position(block, l);
        for (int t = 0; t < T; ++t) {
          const I start = D::kOffset ? V::SetWord(-D::kOffset * acts[t].quad_sums[8 * b + l]) : V::Zero();
          const I sum = D::Dot(start, q, V::BroadcastWord(a[t]->qs + 4 * l));
          acc[t][l] = V::Fma(dd[t], V::Cvt(sum), acc[t][l]);
        }
      }
    }
    F sums[T];
    for (int t = 0; t < T; ++t) {
      sums[t] = PairwiseLanes(acc[t]);
      if constexpr (kAffine) sums[t] = V::AddF(sums[t], offsets[t]);
    }
    StoreLanes(sums, y, ldy, rows);
  }
};

#endif  // LOWBIT_WIDE_KERNELS

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#endif  // LOWBIT_OPS_SIMD_LEGACY_INL_H_
