// Matmul tiles for the 32-value block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL and the GPTQ/AWQ I4G groups).
// Included by ops/simd_matmul-inl.h once per Highway target and once more for AVX2 with AVX-VNNI, hence the
// toggling guard.
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

#include <hwy/cache_control.h>

#include "ops/activation_quant.h"
#include "ops/packed_weight.h"
#include "ops/simd_vectors-inl.h"
#include "quant/int_groups.h"
#include "quant/legacy_quants.h"

HWY_BEFORE_NAMESPACE();
LOWBIT_PASS_INSTRUCTIONS()  // ops/simd_vectors-inl.h
namespace lowbit {
namespace HWY_NAMESPACE {

#if LOWBIT_TILE_KERNELS

// ---- Q4_0, IQ4_NL, int4 groups (Q8_0, Q4_1 in the AMX order) in row lanes: one float per row (dot_reference.h) --
// A tile is V::kLanes rows, one row per int32 / float lane. Its packed slot for a block holds the rows' heads (fp16 d;
// Q4_1's d and m; the int4 groups' d and zero) side by side, then 4-byte chunks of every row: Q4_0's (kQ4_0Pack;
// IQ4_NL's and the int4 groups' (kI4GPack) blocks have the same layout) and Q4_1's qs bytes 4c..4c+3 for c = 0..3,
// whose low nibbles are values 4c..4c+3 and high nibbles 16+4c..16+4c+3; Q8_0's (kQ8_0Pack) qs bytes 4l..4l+3 for l =
// 0..7. Each of a block's eight level vectors meets the activations' four bytes broadcast to every lane in one
// vpdpbusd; after eight of them a lane holds its row's exact block sum, and one FMA per block adds it to the row's
// float (Q4_1: and a second its m * s): no horizontal sums, and one convert, multiply and FMA per kLanes outputs where
// the vec_dot order needs them per output.
static_assert(kQ4_0Pack.unit == sizeof(BlockQ4_0) && kQ4_0Pack.head_offset == offsetof(BlockQ4_0, d) &&
              kQ4_0Pack.head == 2 && kQ4_0Pack.chunk == 4 && offsetof(BlockQ4_0, qs) == 2);
static_assert(sizeof(BlockIQ4NL) == sizeof(BlockQ4_0) && offsetof(BlockIQ4NL, d) == 0 && offsetof(BlockIQ4NL, qs) == 2);
static_assert(kI4GPack.unit == sizeof(BlockI4G) && kI4GPack.head == 3 && offsetof(BlockI4G, z) == 2 && offsetof(BlockI4G, qs) == 3);

// A block's eight level vectors (values 4c.. of the activations' order) against its 32 activations: unsigned levels
// (value + kOffset) with VNNI, else signed values (|v| <= 127) with the sign trick, where maddubs' int16 pairs of
// levels up to 255 could overflow.
HWY_INLINE I EightChunksDot(I acc, const I* q, const int8_t* act) {
  for (int c = 0; c < 8; ++c) {
    if constexpr (V::kVnni) acc = V::DotU8At(acc, q[c], act + 4 * c);
    else acc = V::DotS8(acc, q[c], V::BroadcastWord(act + 4 * c));
    V::InOrder(acc);
  }
  return acc;
}

// How each type's levels meet the activations (Act: its blocks), the sum started from -kOffset times the
// activations' block sum. Q4_0: levels 0..15 (value + 8). IQ4_NL: with VNNI its table's values + 128 (0..241);
// without, the signed values. Q4_1: levels 0..15, its value d * level + m.
template <class Nibbles, const PackFormat& kFormat = kQ4_0Pack>
struct NibbleChunks {
  static constexpr const PackFormat& kPack = kFormat;
  // Always inlined: GCC left IQ4_NL's a call per block, its eight vectors through the stack (BM_IQ4_NL_Simd 22.7 ->
  // 59.4 GB/s; tests/ops/block_helpers_inlined.sh).
  // The high nibbles (here and in NibbleLevels::Position) by V::ByteField: one GFNI affine map on AVX3_DL and in
  // AVX2's AVX-VNNI pass, a shift and a mask elsewhere. One token, lowbit_bench, best of four alternated rounds:
  // AVX-VNNI IQ4_XS 24.4 -> 26.0 GB/s, the int4 groups 36.2 -> 37.2; AVX3_DL Q4_1 62.2 -> 64.9 (batches 82.6 ->
  // 85.7); the others level.
  static HWY_INLINE void Levels(const uint8_t* slot, I* q) {
    constexpr int L = V::kLanes;
    const I low_nibble = V::Set8(0x0F);
    for (int c = 0; c < 4; ++c) {  // values 4c.. (low nibbles), then 16 + 4c.. (high)
      const I bytes = V::LoadLanes(slot + kPack.head * L + 4 * L * c);
      q[c] = Nibbles::Decode(V::And(bytes, low_nibble));
      q[4 + c] = Nibbles::Decode(V::template ByteField<4, 0x0F>(bytes));
    }
  }
};
struct Q4_0Nibbles : NibbleChunks<Q4_0Nibbles> {
  using Act = BlockQ8_0;
  static constexpr int kOffset = 8;
  static I Decode(I nibbles) { return nibbles; }
  static I BlockDot(I acc, const I* levels, const int8_t* act) { return NibbleDot<8>(acc, levels, act); }
};
// The IQ4_NL table plus 128 as unsigned levels.
alignas(16) constexpr uint8_t kIq4nlLevels[16] = {1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241};
static_assert(kIq4nlLevels[0] == kIq4nlValues[0] + 128 && kIq4nlLevels[15] == kIq4nlValues[15] + 128);
struct IQ4NLNibbles : NibbleChunks<IQ4NLNibbles> {
  using Act = BlockQ8_0;
  static constexpr int kOffset = V::kVnni ? 128 : 0;
  static I Decode(I nibbles) {
    return V::Lookup(V::Table16(V::kVnni ? reinterpret_cast<const int8_t*>(kIq4nlLevels) : kIq4nlValues), nibbles);
  }
  static I BlockDot(I acc, const I* q, const int8_t* act) { return EightChunksDot(acc, q, act); }
};
struct Q4_1WholeBlocks : NibbleChunks<Q4_1WholeBlocks, kQ4_1Pack> {
  using Act = BlockQ8_1;
  static constexpr int kOffset = 0;
  static I Decode(I nibbles) { return nibbles; }
  static I BlockDot(I acc, const I* levels, const int8_t* act) { return NibbleDot<8>(acc, levels, act); }
};
struct Q8_0Levels;
// Q8_0 in the AMX order: its eight chunks as Block32Lanes reads them (Q8_0Levels, below).
struct Q8_0WholeBlocks {
  using Act = BlockQ8_0;
  static constexpr const PackFormat& kPack = kQ8_0Pack;
  static constexpr int kOffset = V::kVnni ? 128 : 0;
  static void Levels(const uint8_t* slot, I* q);
  static I BlockDot(I acc, const I* q, const int8_t* act) { return EightChunksDot(acc, q, act); }
};

// T tokens over one tile whose blocks are packed slots from `slots`; y[t * ldy + r] for the first `rows` rows.
template <class N>
struct WholeBlockLanes {
  static constexpr const PackFormat& kPack = N::kPack;
  static constexpr int kBlockValues = 32, kBatchTokens = 8;
  static constexpr bool kAffine = std::is_same_v<typename N::Act, BlockQ8_1>;  // Q4_1: each block's m * s
  template <int T, class Ahead = FarAhead>
  static void Tile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
    constexpr size_t kSlot = kLanesSlot<kPack>;
    F acc[T];
    for (F& a : acc) a = V::ZeroF();
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* slot = slots + static_cast<size_t>(b) * kSlot;
      if constexpr (T == 1) PrefetchTileAhead<kSlot, Ahead>(slot);
      F dw, mw;
      if constexpr (kAffine) V::LanesHalfPairF(slot, dw, mw);
      else if constexpr (requires { N::Scales(slot); }) dw = N::Scales(slot);
      else dw = V::LanesHalfF(slot);
      I levels[8];  // the activations' order
      N::Levels(slot, levels);
      for (int t = 0; t < T; ++t) {
        const auto& a = reinterpret_cast<const typename N::Act*>(acts[t].blocks)[b];
        const I sum = N::BlockDot(V::SetWord(-N::kOffset * acts[t].block_sums[b]), levels, a.qs);
        acc[t] = V::Fma(V::Cvt(sum), V::Mul(dw, V::SetF(acts[t].scales[b])), acc[t]);
        if constexpr (kAffine) acc[t] = V::Fma(mw, V::SetF(Half(a.s)), acc[t]);
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
// are values 4c.. (position c) and high nibbles 16+4c.. (position c + 4); Q5_0's and Q5_1's w word, then v bytes
// 4c.., whose low five bits are values 4c.. and top three with w's bit pair c values 16+4c... Per position every
// row's four levels (value + kOffset, unsigned) meet the activations' four bytes in one vpdpbusd started from
// -kOffset times their quad sum.
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
    F d, m;
    const uint8_t* rest;
  };
  static Block Load(const uint8_t* slot) { return {V::LanesHalfF(slot), V::ZeroF(), slot + 2 * V::kLanes}; }
  static I Position(const Block& b, int l) {
    const I q = V::LoadLanes(b.rest + 4 * V::kLanes * l);
    if constexpr (V::kVnni) return V::Xor(q, V::Set8(static_cast<int8_t>(0x80)));
    else return q;
  }
  static I Dot(I start, I q, const int8_t* act) {
    if constexpr (V::kVnni) return V::DotU8At(start, q, act);
    else return V::DotS8(start, q, V::BroadcastWord(act));
  }
};
HWY_INLINE void Q8_0WholeBlocks::Levels(const uint8_t* slot, I* q) {
  const Q8_0Levels::Block block = Q8_0Levels::Load(slot);
  for (int l = 0; l < 8; ++l) q[l] = Q8_0Levels::Position(block, l);
}

// The 4-bit types: levels 0..15, with Q5_0's and Q5_1's fifth bit 0..31; level - kOffset the value (Q5_0: 16;
// Q4_1, Q5_1: 0, their offset is m). The GPTQ/AWQ groups (quant/int_groups.h, value = nibble - zero, zero 0..16)
// as levels nibble + 16 - zero (0..31), kOffset 16; their slot's heads are three bytes, fp16 d and the zero.
// Levels up to 31 keep maddubs' int16 pairs from saturating without VNNI.
enum class NibbleExtra { kNone, kFifthBit, kZeroPoint };
template <const PackFormat& kFormat, typename ActBlock, int kLevelOffset, NibbleExtra kExtra>
struct NibbleLevels {
  static constexpr const PackFormat& kPack = kFormat;
  using Act = ActBlock;
  // On AVX2 (16 registers) Q5_0's per-token offsets tip two tokens' 16 accumulators into spills (Batch64 14 GB/s of
  // weights against 17 with one token a tile), so it takes four tokens in four passes (Block32Lanes): 17.5-18.1 ->
  // 23.9-24.4, AVX-VNNI 20.9 -> 27.7-27.9, in the layout before kQ5_0Pack's w and v (with them 29.0-29.4 and
  // 32.6-32.8). Q4_1 and Q5_1 gain nothing in passes (33 -> 25-31; 28 -> 25-30, and 36 -> 29 since w and v); with
  // one token a tile, 33 -> 28 and 28 -> 20.
  static constexpr int kOffset = kLevelOffset,
                       kBatchTokens = V::kLanes == 8 && kExtra == NibbleExtra::kFifthBit && kLevelOffset != 0 ? 4 : 2;
  struct Block {
    F d, m;
    const uint8_t* qs;
    I extra;  // the w words (kQ5_0Pack), or 16 - zero in every byte
  };
  static Block Load(const uint8_t* slot) {
    constexpr int L = V::kLanes;
    const uint8_t* rest = slot + L * kPack.head;
    Block b{V::ZeroF(), V::ZeroF(), rest, V::Zero()};
    if constexpr (kExtra == NibbleExtra::kZeroPoint) {
      const I heads = V::LanesHeads3(slot);  // d | zero << 16
      b.d = V::LowHalvesF(heads);
      b.extra = V::Sub8(V::Set8(16), V::LaneBytes(heads, LaneByteCopiesPattern(2)));
    } else if constexpr (kPack.head == 4) {
      V::LanesHalfPairF(slot, b.d, b.m);
    } else {
      b.d = V::LanesHalfF(slot);
    }
    if constexpr (kExtra == NibbleExtra::kFifthBit) b.extra = V::LoadLanes(rest), b.qs = rest + 4 * L;
    return b;
  }
  static I Position(const Block& b, int l) {
    const I bytes = V::LoadLanes(b.qs + 4 * V::kLanes * (l % 4));
    if constexpr (kExtra == NibbleExtra::kFifthBit)  // v and w as packed (kQ5_0Pack)
      return l < 4 ? V::ByteField<0, 0x1F>(bytes) : SplitFiveBitLevels(b.extra, bytes, l - 4);
    const I nibbles = l < 4 ? V::And(bytes, V::Set8(0x0F)) : V::template ByteField<4, 0x0F>(bytes);
    if constexpr (kExtra == NibbleExtra::kZeroPoint) return V::Add8(nibbles, b.extra);
    else return nibbles;
  }
  static I Dot(I start, I levels, const int8_t* act) { return V::DotU8At(start, levels, act); }
};
using Q5_0Levels = NibbleLevels<kQ5_0Pack, BlockQ8_0, 16, NibbleExtra::kFifthBit>;
using Q4_1Levels = NibbleLevels<kQ4_1Pack, BlockQ8_1, 0, NibbleExtra::kNone>;
using Q5_1Levels = NibbleLevels<kQ5_1Pack, BlockQ8_1, 0, NibbleExtra::kFifthBit>;
using I4GLevels = NibbleLevels<kI4GPack, BlockQ8_0, 16, NibbleExtra::kZeroPoint>;

// The GPTQ/AWQ groups in WholeBlockLanes (Q4_0's order: lowbit's own engine type, with no llama.cpp order to keep,
// so it takes the fastest): I4GLevels' levels, nibble + 16 - zero (0..31), each block's exact sum in one chain
// and one FMA per block and kLanes rows. Every chunk widened on its own without VNNI, where eight chunks' int16
// pairs of levels up to 31 could overflow (NibbleDot's need levels below 16).
struct I4GWholeBlocks {
  static constexpr const PackFormat& kPack = kI4GPack;
  using Act = BlockQ8_0;
  static constexpr int kOffset = 16;
  static HWY_INLINE F Scales(const uint8_t* slot) { return I4GLevels::Load(slot).d; }
  static HWY_INLINE void Levels(const uint8_t* slot, I* q) {
    const I4GLevels::Block block = I4GLevels::Load(slot);
    for (int l = 0; l < 8; ++l) q[l] = I4GLevels::Position(block, l);
  }
  static I BlockDot(I acc, const I* levels, const int8_t* act) {
    for (int c = 0; c < 8; ++c) {
      acc = V::DotU8At(acc, levels[c], act + 4 * c);
      V::InOrder(acc);
    }
    return acc;
  }
};

// The start of a position's dot product: -kOffset times its quad sum. ActRow holds it for kOffset 16 (Q8_0's 128 is
// eight times it). Batches load it broadcast as it is, where a negate, a shift and a move from a general register had
// made Q5_0 and the int4 groups (then in these lanes) compute-bound (Batch64 60-64 -> 69-74 and 54-56 -> 62-65 GB/s).
// One token keeps the move from a general register: streamed from memory, the broadcast load read less (int4 groups
// 0.51-0.65 -> 0.41-0.46 of the probe, back to back).
template <int kOffset, int T>
HWY_INLINE I StartOfPosition(const int32_t* quad_start) {
  static_assert(kOffset == 0 || kOffset == 16 || kOffset == 128);
  if constexpr (kOffset == 16 && T > 1) {
    return V::BroadcastWord(reinterpret_cast<const int8_t*>(quad_start));
  } else if constexpr (kOffset == 16) {
    int32_t start = *quad_start;
    asm("" : "+r"(start));  // through a general register, not folded into a broadcast load
    return V::SetWord(start);
  } else if constexpr (kOffset == 128) {
    return V::SetWord(8 * *quad_start);
  } else {
    return V::Zero();
  }
}

template <class D>
struct Block32Lanes {
  static constexpr const PackFormat& kPack = D::kPack;
  static constexpr int kBlockValues = 32, kBatchTokens = D::kBatchTokens;
  static constexpr bool kAffine = std::is_same_v<typename D::Act, BlockQ8_1>;  // Q4_1, Q5_1: the m * s offsets
  // The lane positions a pass over the blocks takes: all eight, but on AVX2 (16 registers) a tile of three or four
  // tokens takes two, l and l + 4, in four passes, so that its accumulators stay in registers. Its weights come from
  // L1 after the first pass; the decode is then paid once per four tokens (Q5_0: eight tokens in eight passes of one
  // position read 0.85-0.89x of four).
  template <int T>
  static constexpr int kPassPositions = V::kLanes == 8 && T >= 3 ? 2 : 8;
  template <int T, class Ahead = FarAhead>
  static void Tile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
    constexpr size_t kSlot = kLanesSlot<kPack>;
    constexpr int P = kPassPositions<T>, kPasses = 8 / P;
    F lanes[T][8];  // per token, the eight lane positions' floats
    F offsets[T];
    for (int t = 0; t < T; ++t) offsets[t] = V::ZeroF();
    for (int pass = 0; pass < kPasses; ++pass) {
      F acc[T][P];
      for (int t = 0; t < T; ++t)
        for (F& a : acc[t]) a = V::ZeroF();
      for (int64_t b = 0; b < n_blocks; ++b) {
        const uint8_t* slot = slots + static_cast<size_t>(b) * kSlot;
        if constexpr (T == 1) PrefetchTileAhead<kSlot, Ahead>(slot);
        const typename D::Block block = D::Load(slot);
        const typename D::Act* a[T];
        F dd[T];
        for (int t = 0; t < T; ++t) {
          a[t] = reinterpret_cast<const typename D::Act*>(acts[t].blocks) + b;
          dd[t] = V::Mul(block.d, V::SetF(acts[t].scales[b]));
          if constexpr (kAffine)
            if (pass == 0) offsets[t] = V::Fma(block.m, V::SetF(Half(a[t]->s)), offsets[t]);
        }
        // Left a loop, GCC keeps acc[t][l] on the stack (a store each per block). Unrolled (`#pragma GCC unroll 8`)
        // they were registers, but one token streamed no better for it: Q5_1 0.77-0.80 -> 0.44-0.74 of the probe,
        // Q5_0 0.58-0.60 -> 0.63-0.73, Q8_0 and the batches unchanged (back to back, three and four rounds).
        for (int i = 0; i < P; ++i) {
          const int l = pass + kPasses * i;
          const I q = D::Position(block, l);
          for (int t = 0; t < T; ++t) {
            const I start = StartOfPosition<D::kOffset, T>(acts[t].quad_starts + 8 * b + l);
            const I sum = D::Dot(start, q, a[t]->qs + 4 * l);
            acc[t][i] = V::Fma(dd[t], V::Cvt(sum), acc[t][i]);
          }
        }
      }
      for (int t = 0; t < T; ++t)
        for (int i = 0; i < P; ++i) lanes[t][pass + kPasses * i] = acc[t][i];
    }
    F sums[T];
    for (int t = 0; t < T; ++t) {
      sums[t] = PairwiseLanes(lanes[t]);
      if constexpr (kAffine) sums[t] = V::AddF(sums[t], offsets[t]);
    }
    StoreLanes(sums, y, ldy, rows);
  }
};

#endif  // LOWBIT_TILE_KERNELS

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#endif  // LOWBIT_OPS_SIMD_LEGACY_INL_H_
