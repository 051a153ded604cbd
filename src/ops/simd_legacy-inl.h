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

// ---- 32-value blocks in ggml's vec_dot order: Q5_0, Q8_0, IQ4_NL (signed values against Q8_0), Q4_1, Q5_1 (levels
// against Q8_1); Q4_0 has its own tile at the end ----
// Each decoder gives the block's values for kRows rows: Levels, unsigned (up to kMaxLevel), with Levels - kOffset
// the signed value (kOffset 0 for the affine types); Values, the signed values themselves. The unsigned levels
// go straight into the u8 x s8 pair sums, started from -kOffset times the activations' quad sums
// (QuantizedActivations::quad_sums) so the lanes come out as the signed products; that needs VNNI (non-
// saturating) or levels small enough for maddubs' int16 pairs. Otherwise the signed values take ggml's |q| and
// sign(a, q) path.

struct Q8_0Decode {
  using Block = BlockQ8_0;
  using Act = BlockQ8_0;
  static constexpr int kOffset = 128, kMaxLevel = 255;
  static constexpr int kGenGroups = kRows == 2 ? 2 : 4;  // AVX-512: 4 rows at a time stream ~1.3x faster than 8
  static I Values(const RowGroup& g, int64_t b) { return V::Rows32(g.at<Block>(b, offsetof(Block, qs)), g.stride); }
  static I Levels(const RowGroup& g, int64_t b) { return V::Xor(Values(g, b), V::Set8(static_cast<int8_t>(0x80))); }
};
// Q5_0 and Q5_1 levels 0..31: the nibble with the fifth bit from qh.
template <typename Block>
HWY_INLINE I FiveBitLevels(const RowGroup& g, int64_t b) {
  const I high = V::RowsBits(g.at<Block>(b, offsetof(Block, qh)), g.stride);
  return V::Or(V::RowsNibbles(g.at<Block>(b, offsetof(Block, qs)), g.stride), V::And(high, V::Set8(0x10)));
}
// Level - 16 is the nibble with 0xF0 ORed in where the fifth bit is clear (two's complement).
struct Q5_0Decode {
  using Block = BlockQ5_0;
  using Act = BlockQ8_0;
  static constexpr int kOffset = 16, kMaxLevel = 31;
  static I Levels(const RowGroup& g, int64_t b) { return FiveBitLevels<Block>(g, b); }
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
  static I LevelsOf(I nibbles) { return V::Lookup(V::Table16(reinterpret_cast<const int8_t*>(kIq4nlLevels)), nibbles); }
  static I ValuesOf(I nibbles) { return V::Lookup(V::Table16(kIq4nlValues), nibbles); }
  static I Levels(const RowGroup& g, int64_t b) { return LevelsOf(Nibbles(g, b)); }
  static I Values(const RowGroup& g, int64_t b) { return ValuesOf(Nibbles(g, b)); }
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
  static I Levels(const RowGroup& g, int64_t b) { return FiveBitLevels<Block>(g, b); }
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
    const Act& a = reinterpret_cast<const Act*>(acts[t].blocks)[b];
    const I av = V::Act32(a.qs);
    I init = V::Zero();
    if constexpr (D::kOffset != 0 && kUseLevels<D>) init = V::NegShl(V::Act32Words(acts[t].quad_sums + 8 * b), D::kOffset);
    const F da = V::SetF(acts[t].scales[b]);
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

// IQ4_NL's odd last block of one row added to v, in scalar as ggml's tail loop.
HWY_INLINE float Iq4nlTailBlock(const uint8_t* qs, const uint8_t* head, const BlockQ8_0& a, float v) {
  int32_t s = 0;
  for (int j = 0; j < 16; ++j) s += a.qs[j] * kIq4nlValues[qs[j] & 0xF] + a.qs[j + 16] * kIq4nlValues[qs[j] >> 4];
  return std::fma(Half(a.d) * Half16At(head), static_cast<float>(s), v);
}

// P row groups x T tokens over n_blocks blocks: y[t * ldy + r] for row r of the tile, `rows` of them valid;
// kPacked: the groups are a whole packed tile (TileGroups).
template <typename D, int P, int T, bool kPacked = false>
void LegacyTile(const RowGroup* given, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows,
                const DecodedRows<P>* decoded) {
  using Block = typename D::Block;
  using Act = typename D::Act;
  RowGroup local[P];
  const RowGroup* const groups = TileGroups<kPacked, sizeof(Block), 2>(given, local);
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
          for (int64_t bt = b; bt < n_blocks; ++bt)
            v = Iq4nlTailBlock(groups[p].template at<Block>(bt, offsetof(Block, qs)) + r * groups[p].stride,
                               groups[p].head_at(bt) + r * groups[p].head_stride,
                               reinterpret_cast<const Act*>(acts[t].blocks)[bt], v);
        }
        y[static_cast<size_t>(t) * ldy + static_cast<size_t>(p * kRows + r)] = v;
      }
    }
}

// ---- generation over a whole packed tile of IQ4_NL ----
// A packed slot holds the tile's qs side by side, so one load gives V::kQuadRows rows' bytes, a 128-bit lane a row.
// Their low nibbles (values 0-15) meet activations 0-15 and the high ones 16-31 in the same lanes, which keeps
// ggml's eight lanes per row as four "low" lanes (its lanes 0-3) and four "high" ones (4-7) in two accumulators:
// the same integer and float sums, so the same bits as LegacyTile, with half its unpacking and one scale vector for
// kQuadRows rows. Adding the two accumulators is the first step of ggml's horizontal sum.
template <typename D>
constexpr bool kQuadNibbles = std::is_same_v<D, IQ4NLDecode>;

template <typename D, int P>
void QuadNibbleGen(const RowGroup* given, const ActRow& act, int64_t n_blocks, float* y) {
  using Block = typename D::Block;
  static_assert(sizeof(Block) == 18 && offsetof(Block, qs) == 2, "the fp16 scale and 16 qs");
  constexpr int kGroupsPerQuad = V::kQuadRows / kRows, Q = P / kGroupsPerQuad;
  constexpr int kChains = kTwoChains<D> ? 2 : 1;
  RowGroup g[P];  // constant addressing: a quad's rows start at its first group's qs and heads, side by side
  PackedTileGroups<sizeof(Block), 2, P>(given[0], g);
  F lo[kChains][Q], hi[kChains][Q];
  for (int c = 0; c < kChains; ++c)
    for (int q = 0; q < Q; ++q) lo[c][q] = hi[c][q] = V::ZeroF();
  const auto* blocks = reinterpret_cast<const BlockQ8_0*>(act.blocks);
  const I low_nibble = V::Set8(0x0F);
  int64_t b = 0;
  const auto block = [&](int64_t bi, F(&acc_lo)[Q], F(&acc_hi)[Q]) {
    StreamAhead<1>(g[0], bi);
    const BlockQ8_0& a = blocks[bi];
    const I a_lo = V::Act16(a.qs), a_hi = V::Act16(a.qs + 16);
    I init_lo = V::Zero(), init_hi = V::Zero();
    if constexpr (kUseLevels<D>) {
      init_lo = V::NegShl(V::Act16(act.quad_sums + 8 * bi), D::kOffset);
      init_hi = V::NegShl(V::Act16(act.quad_sums + 8 * bi + 4), D::kOffset);
    }
    const float da = act.scales[bi];
    for (int q = 0; q < Q; ++q) {
      const RowGroup& first = g[q * kGroupsPerQuad];
      const F d = V::QuadRowsScale(first.head_at(bi), da);
      const I bytes = V::QuadRows16(first.at<Block>(bi, offsetof(Block, qs)));
      const I n_lo = V::And(bytes, low_nibble), n_hi = V::And(V::template Shr16<4>(bytes), low_nibble);
      const I q_lo = kUseLevels<D> ? D::LevelsOf(n_lo) : D::ValuesOf(n_lo);
      const I q_hi = kUseLevels<D> ? D::LevelsOf(n_hi) : D::ValuesOf(n_hi);
      acc_lo[q] = V::Fma(d, V::Cvt(LegacyLanes<D>(q_lo, a_lo, init_lo)), acc_lo[q]);
      acc_hi[q] = V::Fma(d, V::Cvt(LegacyLanes<D>(q_hi, a_hi, init_hi)), acc_hi[q]);
    }
  };
  if constexpr (kChains == 2) {
    for (; b + 1 < n_blocks; b += 2) {
      block(b, lo[0], hi[0]);
      block(b + 1, lo[1], hi[1]);
    }
  } else {
    for (; b < n_blocks; ++b) block(b, lo[0], hi[0]);
  }
  for (int q = 0; q < Q; ++q) {
    F l = lo[0][q], h = hi[0][q];
    if constexpr (kChains == 2) l = V::AddF(l, lo[1][q]), h = V::AddF(h, hi[1][q]);
    alignas(64) float s[4 * V::kQuadRows];
    V::StoreF(V::AddF(h, l), s);
    for (int i = 0; i < V::kQuadRows; ++i) {
      float v = (s[4 * i] + s[4 * i + 2]) + (s[4 * i + 1] + s[4 * i + 3]);
      const int row = q * V::kQuadRows + i;
      if constexpr (kTwoChains<D>) {
        const RowGroup& gr = g[row / kRows];
        const int r = row % kRows;
        for (int64_t bt = b; bt < n_blocks; ++bt)
          v = Iq4nlTailBlock(gr.at<Block>(bt, offsetof(Block, qs)) + r * gr.stride, gr.head_at(bt) + r * gr.head_stride, blocks[bt], v);
      }
      y[row] = v;
    }
  }
}

// ---- Q4_0 in row lanes: llama.cpp's x86 order (ops/dot_reference.h), one row per int32 / float lane ----
// A tile is V::kLanes rows. Its packed slot for a block (kQ4_0Pack) holds the rows' fp16 scales side by side, then
// for c = 0..3 qs bytes 4c..4c+3 of every row: one load gives that chunk of every row, whose low nibbles are values
// 4c..4c+3 and high nibbles 16+4c..16+4c+3, and vpdpbusd meets each with the activations' four bytes broadcast to
// every lane. After eight of them a lane holds its row's exact block sum (levels times activations, started from
// -8 times the activations' block sum), and one FMA per block adds it to the row's float: no horizontal sums, and
// one convert, multiply and FMA per kLanes outputs where the vec_dot order needs them per output.
static_assert(kQ4_0Pack.unit == sizeof(BlockQ4_0) && kQ4_0Pack.head_offset == offsetof(BlockQ4_0, d) &&
              kQ4_0Pack.head == 2 && kQ4_0Pack.chunk == 4 && offsetof(BlockQ4_0, qs) == 2);

// T tokens over one tile whose blocks are packed slots from `slots`; y[t * ldy + r] for the first `rows` rows.
template <int T>
void Q4_0LanesTile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
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
      lo[c] = V::And(bytes, low_nibble);
      hi[c] = V::And(V::template Shr16<4>(bytes), low_nibble);
    }
    for (int t = 0; t < T; ++t) {
      const BlockQ8_0& a = reinterpret_cast<const BlockQ8_0*>(acts[t].blocks)[b];
      I sum = V::SetWord(-8 * acts[t].block_sums[b]);
      for (int c = 0; c < 4; ++c) sum = V::DotU8(sum, lo[c], V::BroadcastWord(a.qs + 4 * c));
      for (int c = 0; c < 4; ++c) sum = V::DotU8(sum, hi[c], V::BroadcastWord(a.qs + 16 + 4 * c));
      acc[t] = V::Fma(V::Cvt(sum), V::Mul(dw, V::SetF(acts[t].scales[b])), acc[t]);
    }
  }
  StoreLanes(acc, y, ldy, rows);
}

struct Q4_0Lanes {
  static constexpr const PackFormat& kPack = kQ4_0Pack;
  static constexpr int kBlockValues = 32, kBatchTokens = 8;
  template <int T>
  static void Tile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
    Q4_0LanesTile<T>(slots, acts, n_blocks, y, ldy, rows);
  }
};

#endif  // LOWBIT_WIDE_KERNELS

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#endif  // LOWBIT_OPS_SIMD_LEGACY_INL_H_
