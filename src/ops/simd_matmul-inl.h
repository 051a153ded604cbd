// The per-target half of ops/simd_matmul.cc: the F16/BF16 tile, the tile runner, each type's tile family and the
// entries MatmulRows and PackRows. Included by ops/simd_matmul.cc once per Highway target (foreach_target), and by
// ops/simd_matmul_avx_vnni.cc once more for AVX2 with AVX-VNNI, hence the toggling guard.
#if defined(LOWBIT_OPS_SIMD_MATMUL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWBIT_OPS_SIMD_MATMUL_INL_H_
#undef LOWBIT_OPS_SIMD_MATMUL_INL_H_
#else
#define LOWBIT_OPS_SIMD_MATMUL_INL_H_
#endif

#include <hwy/aligned_allocator.h>
#include <hwy/highway.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/float_formats.h"
#include "ops/activation_quant.h"
#include "ops/dot_reference.h"
#include "ops/packed_weight.h"
#include "ops/simd_kquants-inl.h"
#include "ops/simd_legacy-inl.h"
#include "ops/simd_matmul.h"
#include "ops/simd_vectors-inl.h"
#include "util/cpu_features.h"

namespace lowbit {
bool stream_ahead_near();  // whether the one-token tiles take NearAhead now (set_stream_ahead, ops/simd_matmul.cc)
}  // namespace lowbit
HWY_BEFORE_NAMESPACE();
LOWBIT_PASS_INSTRUCTIONS()  // ops/simd_vectors-inl.h
namespace lowbit {
namespace HWY_NAMESPACE {

#if LOWBIT_TILE_KERNELS

// ---- F16 / BF16 with the values in the lanes: the reference's eight float lanes of a row (F16: value i into lane
// i % 8, one FMA each; BF16: pair (2k, 2k + 1) of every 16 values into lane k, vdpbf16ps's two steps; added
// pairwise at the end, then the tail past the last whole unit) are eight lanes of a vector. A slot (kF16Pack,
// kBf16Pack) holds each row's unit of values, row after row, so one load gives kRowsPerVector rows' eight lanes
// (two rows on AVX-512, one on AVX2) and one FMA or vdpbf16ps with the token's unit of activations, repeated per
// row, adds them: one accumulator per output. One token keeps all eight of a slot's vectors in flight; a batch
// tile kBatchVectors of them for six tokens, a weight decode per six FMAs. (With one row per lane, as the other
// types, the F16 reference's order needed eight accumulators per token and row vector: a batch tile fitted three
// tokens and converted a weight vector for every three FMAs, Batch64 122-133 GB/s against 154-166 here, and lost
// to llama.cpp's prompts.) A batch prefetches the next row tile into L2 as it goes: its first pass would otherwise
// wait on memory (Batch64 149-154 without). On SSE4 four lanes hold half a row's eight: a row is two vectors
// (kParts), each with its half of the token's unit, summed together at the end. SSE4 has no FMA, and V::Fma's
// exact rounding costs ~25 instructions a pair of lanes, so the steps multiply and add where that gives fmaf's bits
// (F16Values, Bf16Pairs::MulAddStep) ----

inline uint16_t Bits16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// What a tile needs of each format: its unit, a weight vector, the token's activations for a unit, one step.
struct F16Values {
  static constexpr const PackFormat& kPack = kF16Pack;
  static constexpr int kBlockValues = 8;
  using W = F;
  using A = F;
  static W Weights(const uint8_t* p) { return V::LanesHalfF(p); }
  static A Acts(const ActRow& a, int64_t b, int part) { return V::RepeatEightF(a.values + 8 * b + V::kLanes * part); }
  static F Step(F acc, W w, A a) {
#if HWY_TARGET == HWY_SSE4
    // fp16 by fp16 (the activations are rounded to fp16 too) is exact in float: 22 significant bits, between 2^-48
    // and 2^32. So fmaf is the multiply and one rounded add.
    return V::AddF(V::Mul(w, a), acc);
#else
    return V::Fma(w, a, acc);
#endif
  }
  static float Value(const uint8_t* p) { return f16_to_f32(Bits16(p)); }
  static float Act(const ActRow& a, int64_t k) { return a.values[k]; }
};

// BF16 as the reference's vdpbf16ps steps: the instruction itself where the CPU has it (kInstruction, AVX3_DL
// only), else two FMAs, odd value first, which under MXCSR's flush-to-zero and denormals-are-zero (FlushSubnormals,
// around the whole call) round and flush exactly as the instruction does (tests/ops/dot_reference_test.cc). The
// activations are their bf16 row.
template <bool kInstruction>
struct Bf16Pairs {
  static constexpr const PackFormat& kPack = kBf16Pack;
  static constexpr int kBlockValues = 16;
  using W = I;
  using A = I;
  static W Weights(const uint8_t* p) { return V::LoadLanes(p); }
  static A Acts(const ActRow& a, int64_t b, int part) { return V::RepeatPairs(a.blocks + 32 * b + 4 * V::kLanes * part); }
  static F Step(F acc, W w, A a) {
#if HWY_TARGET == HWY_AVX3_DL
    if constexpr (kInstruction) return V::DotBf16Pairs(acc, w, a);
#endif
    return V::Fma(V::EvenBf16F(w), V::EvenBf16F(a), V::Fma(V::OddBf16F(w), V::OddBf16F(a), acc));
  }
  // Without FMA hardware (SSE4): a product of two bf16 (16 significant bits) is exact in float unless it leaves
  // float's normal range, and then MXCSR's underflow or overflow flag says so. The tile multiplies and adds, and
  // runs Step again only where a flag was raised (MulAddChecked; sums near FLT_MIN or FLT_MAX).
  static F MulAddStep(F acc, W w, A a) {
    const F odd = V::AddF(V::Mul(V::OddBf16F(w), V::OddBf16F(a)), acc);
    return V::AddF(V::Mul(V::EvenBf16F(w), V::EvenBf16F(a)), odd);
  }
  static float Value(const uint8_t* p) { return bf16_to_f32(Bits16(p)); }
  static float Act(const ActRow& a, int64_t k) { return Value(a.blocks + 2 * k); }
};

template <class Format>
struct HalfLanes {
  static constexpr const PackFormat& kPack = Format::kPack;
  // A slot's vectors: vector v holds rows from v * V::kLanes / 8, kRowsPerVector of them, or half a row (kParts).
  static constexpr int kBlockValues = Format::kBlockValues, kVectors = 8;
  static constexpr int kRowsPerVector = V::kLanes < 8 ? 1 : V::kLanes / 8, kParts = V::kLanes < 8 ? 8 / V::kLanes : 1;
  // Batch64 on AVX-512, GB/s of weights (F16): 4 vectors x 6 tokens 142-159, 8 x 3 148-152, 2 x 12 110-127.
  static constexpr int kBatchTokens = 6, kBatchVectors = V::kLanes == 16 ? 4 : 2;
  // kMulAdd: Format::MulAddStep's steps in place of Step (MulAddChecked).
  template <int T, class Ahead = FarAhead, bool kMulAdd = false>
  static void Tile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
    constexpr size_t kSlot = kLanesSlot<kPack>, kVectorBytes = kSlot / kVectors;
    constexpr int kGroup = T == 1 ? kVectors : kBatchVectors;
    static_assert(kGroup % kParts == 0);
    const size_t next_tile = static_cast<size_t>(n_blocks) * kSlot;
    for (int v0 = 0; v0 < kVectors && v0 * V::kLanes / 8 < rows; v0 += kGroup) {
      F acc[T][kGroup];
      for (auto& vectors : acc)
        for (F& a : vectors) a = V::ZeroF();
      for (int64_t b = 0; b < n_blocks; ++b) {
        const uint8_t* slot = slots + static_cast<size_t>(b) * kSlot + static_cast<size_t>(v0) * kVectorBytes;
        // One token under NearAhead (Sapphire Rapids): every line prefetched rather than page starts, whole
        // r1b-f16 token by token -t 1 1.12x and 1.12x, -t 2 1.14x. BF16's lighter steps read 0.96-0.97x so until
        // the lines also went into L2 (kNearL2Ahead); since, whole r1b-bf16 token by token in one process, each
        // picked per call at dispatch: -t 1 1.08x, -t 2 1.09x.
        if constexpr (T == 1) PrefetchTileAhead<kSlot, Ahead>(slot);
        else prefetch_next_tile(slot + next_tile, kGroup * kVectorBytes);
        typename Format::W w[kGroup];
        for (int g = 0; g < kGroup; ++g) w[g] = Format::Weights(slot + g * kVectorBytes);
        // Each part's activations loaded where used: held in an array, GCC 12 stored all 24 AVX-512 accumulators
        // to the stack every step (BF16 Batch64 262 -> 126 GB/s).
        for (int t = 0; t < T; ++t)
          for (int g0 = 0; g0 < kGroup; g0 += kParts)
            for (int part = 0; part < kParts; ++part) {
              const typename Format::A a = Format::Acts(acts[t], b, part);
              const int g = g0 + part;
              if constexpr (kMulAdd) acc[t][g] = Format::MulAddStep(acc[t][g], w[g], a);
              else acc[t][g] = Format::Step(acc[t][g], w[g], a);
            }
      }
      for (int t = 0; t < T; ++t)
        for (int g = 0; g < kGroup; g += kParts) {
          alignas(64) float sums[V::kLanes];
#if HWY_TARGET == HWY_SSE4  // the row's two vectors (kParts)
          V::StoreF(V::PairwiseEights(acc[t][g], acc[t][g + 1]), sums);
#else
          V::StoreF(V::PairwiseEights(acc[t][g]), sums);
#endif
          for (int j = 0; j < kRowsPerVector; ++j) {
            const int r = (v0 + g) * V::kLanes / 8 + j;
            if (r < rows) y[static_cast<size_t>(t) * ldy + static_cast<size_t>(r)] = sums[8 * j];
          }
        }
    }
  }
  // Rows whose length is not a multiple of the unit (row-major only): the values past the last unit, one FMA chain
  // per output, added last as the reference adds them.
  static void AddTails(const RowGroup* groups, const ActRow* acts, int64_t n, int64_t n_tokens, float* y, size_t ldy, int rows) {
    const int64_t first = n / kBlockValues * kBlockValues;
    if (first == n) return;
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int r = 0; r < rows; ++r) {
        const RowGroup& g = groups[r / kRows];
        const uint8_t* row = g.base + static_cast<size_t>(r % kRows) * g.stride;
        float tail = 0;
        for (int64_t k = first; k < n; ++k) tail = std::fma(Format::Value(row + 2 * k), Format::Act(acts[t], k), tail);
        y[static_cast<size_t>(t) * ldy + static_cast<size_t>(r)] += tail;
      }
  }
};

// A HalfLanes whose Format multiplies and adds first (SSE4's BF16, Bf16Pairs::MulAddStep): each tile runs so, and
// again with the exact steps only where MXCSR's overflow or underflow flag was raised meanwhile. The flags are
// cleared first: left set by earlier work (an exponential's underflow), they would send every tile round twice.
template <class Lanes>
struct MulAddChecked : Lanes {
  template <int T, class Ahead = FarAhead>
  static void Tile(const uint8_t* slots, const ActRow* acts, int64_t n_blocks, float* y, size_t ldy, int rows) {
    constexpr unsigned kRangeFlags = 0x18;  // OE, UE
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr & ~kRangeFlags);
    Lanes::template Tile<T, Ahead, true>(slots, acts, n_blocks, y, ldy, rows);
    const bool left_range = (_mm_getcsr() & kRangeFlags) != 0;
    _mm_setcsr(csr);
    if (left_range) Lanes::template Tile<T, Ahead, false>(slots, acts, n_blocks, y, ldy, rows);
  }
};

// BF16's rounding mode (ops/dot_reference.cc's dot_bf16) while a call's tiles, sums and tails run: MXCSR's
// flush-to-zero and denormals-are-zero, the previous mode restored at the end.
class FlushSubnormals {
 public:
  // Off (every other type), MXCSR is not even read: this runs on every call of every type.
  explicit FlushSubnormals(bool on) : saved_(on ? _mm_getcsr() : 0), on_(on) {
    if (on_) _mm_setcsr(saved_ | kFtzDaz);
  }
  ~FlushSubnormals() {
    if (on_) _mm_setcsr(saved_);
  }
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;

 private:
  static constexpr unsigned kFtzDaz = 0x8040;
  unsigned saved_;
  bool on_;
};

// fn.template operator()<T>() for the compile-time T == nt (1 <= nt <= kT).
template <int kT, typename Fn>
HWY_INLINE void WithTokenCount(int nt, Fn&& fn) {
  if (nt == kT) fn.template operator()<kT>();
  else if constexpr (kT > 1) WithTokenCount<kT - 1>(nt, fn);
}

// Every token of one row tile, in tiles of up to kT tokens (Family::Run<P, T> does one).
template <class Family, int kP, int kT, typename... Extra>
HWY_INLINE void ForTokenTiles(const RowGroup* groups, const ActRow* acts, int64_t n, int64_t n_tokens, float* y,
                              size_t ldy, int rows, const Extra&... extra) {
  for (int64_t t = 0; t < n_tokens; t += kT) {
    const int nt = static_cast<int>(std::min<int64_t>(kT, n_tokens - t));
    float* out = y + static_cast<size_t>(t) * ldy;
    const ActRow* a = acts + t;
    WithTokenCount<kT>(nt, [&]<int T>() { Family::template Run<kP, T>(groups, a, n, out, ldy, rows, extra...); });
  }
}

// Every type's tile family: its Lanes (WholeBlockLanes, Block32Lanes, ..., each its packed format and its Tile<T>) in
// row lanes, a tile being V::kLanes rows, one per lane, kP row groups as RunTiles counts them. A whole packed tile
// is read in place; other rows (the row-major ones after the last whole tile, or a tensor packed for another
// target's tile) are first copied into packed slots, once for all the tokens. n is the row length in values.
template <class Lanes>
struct RowLanes {
  static constexpr int kGenGroups = V::kLanes / kRows, kBatchGroups = kGenGroups, kBatchTokens = Lanes::kBatchTokens;
  template <int P, int T>
  static void Run(const RowGroup*, const ActRow* a, int64_t n, float* y, size_t ldy, int rows, const uint8_t* slots) {
    const int64_t n_blocks = n / Lanes::kBlockValues;
    // One token on AVX-512: NearAhead on a CPU not AMD's (every tile takes a stream policy).
    if constexpr (T == 1 && kAvx512Shapes)
      if (stream_ahead_near()) return Lanes::template Tile<1, NearAhead>(slots, a, n_blocks, y, ldy, rows);
    Lanes::template Tile<T>(slots, a, n_blocks, y, ldy, rows);
  }
  // A whole packed tile, read in place: its slots are its bytes.
  template <int kP, int kT>
  static void PackedTile(const uint8_t* slots, const ActRow* acts, int64_t n, int64_t n_tokens, float* y, size_t ldy) {
    ForTokenTiles<RowLanes, kP, kT>(nullptr, acts, n, n_tokens, y, ldy, V::kLanes, slots);
  }
  // Generation's whole packed tiles kGenTiles at a time, where the Lanes reads several at once (Tiles<1, R>).
  static constexpr int kGenTiles = [] {
    if constexpr (requires { Lanes::kGenTiles; }) return Lanes::kGenTiles;
    else return 1;
  }();
  static void PackedGenTiles(const uint8_t* slots, size_t tile_bytes, const ActRow* acts, int64_t n, float* y) {
    Lanes::template Tiles<1, kGenTiles>(slots, tile_bytes, acts, n / Lanes::kBlockValues, y, 0, V::kLanes);
  }
  template <int kP, int kT>
  static void RowTile(const RowGroup* g, const ActRow* acts, int64_t n, int64_t n_tokens, float* y, size_t ldy,
                      int rows) {
    static_assert(kP * kRows == V::kLanes);
    const int64_t n_blocks = n / Lanes::kBlockValues;
    const auto slots = hwy::AllocateAligned<uint8_t>(static_cast<size_t>(n_blocks) * kLanesSlot<Lanes::kPack>);
    PackLanes<Lanes::kPack>(g, n_blocks, slots.get());
    ForTokenTiles<RowLanes, kP, kT>(g, acts, n, n_tokens, y, ldy, rows, static_cast<const uint8_t*>(slots.get()));
    if constexpr (requires { Lanes::AddTails(g, acts, n, n_tokens, y, ldy, rows); }) Lanes::AddTails(g, acts, n, n_tokens, y, ldy, rows);
  }
};

// Rows [r0, r1) in tiles of kP groups (kP * kRows rows), each over every token: a tile's weight rows stay in L1
// while the tokens pass. In a partial last tile the groups past the valid rows repeat the last valid row and are
// not stored.
template <class Family, int kP, int kT>
void RunTiles(const uint8_t* data, const WeightLayout& w, const ActRow* act_rows, int64_t n, int64_t n_tokens, int64_t r0, int64_t r1,
              int64_t n_out, float* y) {
  constexpr int kTileRows = kP * kRows;
  // Packed tiles have an even number of rows, so a row pair never straddles two (a kernel tile may).
  // Generation reads rows [r0, r1) once, front to back, from byte r0 * row_bytes in either layout: its first pages
  // are opened here, the rest by the tiles as they reach each slot (prefetch_stream_ahead / prefetch_lines_ahead).
  if constexpr (kT == 1) prefetch_stream_start(data + static_cast<size_t>(r0) * w.row_bytes);
  // Whole packed tiles, read in place, for any batch: the next tile's slots are one add away. Working out each
  // tile's row groups first (byte_offset, with divisions) left a gap in the generation stream at every tile: one
  // thread over Q4_0 4096x4096 spent 93.5-95 % of a call in the tiles' loops, 97 % now (rdtsc), and read 0.70-0.74
  // -> 0.84-0.96 of the probe (BM_Q4_0_Simd_Dram, four rounds against the old binary; Q8_0 0.72-0.83 -> 0.85-0.88;
  // the K-quants, whose every line is prefetched 4 KiB ahead across the gap, unchanged).
  int64_t r = r0;
  if (w.tile_rows == kTileRows && r0 % kTileRows == 0) {
    const int64_t whole_end = std::min(r1, w.packed_rows);
    const size_t tile_bytes = static_cast<size_t>(kTileRows) * w.row_bytes;
    const uint8_t* slots = data + static_cast<size_t>(r0) * w.row_bytes;
    if constexpr (constexpr int kGen = Family::kGenTiles; kT == 1 && kGen > 1)
      for (; r + kGen * kTileRows <= whole_end; r += kGen * kTileRows, slots += kGen * tile_bytes)
        Family::PackedGenTiles(slots, tile_bytes, act_rows, n, y + r);
    for (; r + kTileRows <= whole_end; r += kTileRows, slots += tile_bytes)
      Family::template PackedTile<kP, kT>(slots, act_rows, n, n_tokens, y + r, static_cast<size_t>(n_out));
  }
  for (; r < r1; r += kTileRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kTileRows, r1 - r));
    const int64_t last_valid = r + rows - 1;
    RowGroup groups[kP];
    for (int p = 0; p < kP; ++p) {
      const int64_t first = std::min(r + p * kRows, last_valid);
      const uint8_t* head = data + w.byte_offset(first, 0, w.head_offset);
      if (first < w.packed_rows) {
        const auto tile = static_cast<size_t>(w.tile_rows);
        groups[p] = {data + w.first_position_offset(first, 0), w.chunk, tile * w.unit, head, w.head, w.head, tile * w.chunk, w.position.data()};
      } else {
        const size_t stride = first + 1 <= last_valid ? w.row_bytes : 0;
        groups[p] = {data + w.byte_offset(first, 0, w.rest_offset()), stride, w.unit, head, stride, w.head, w.chunk, kChunksInOrder.data()};
      }
    }
    for (RowGroup& g : groups) g.encode_units = !w.units_encoded;
    Family::template RowTile<kP, kT>(groups, act_rows, n, n_tokens, y + r, static_cast<size_t>(n_out), rows);
  }
}

// Tile shapes: generation (one token) keeps a family's kGenGroups row groups in flight; batches reuse each
// decoded block for several tokens (each family's kBatchGroups x kBatchTokens).

template <class Family>
void Rows(const uint8_t* data, const WeightLayout& w, const ActRow* acts, int64_t n, int64_t nt, int64_t r0, int64_t r1,
          int64_t n_out, float* y) {
  if (nt == 1) RunTiles<Family, Family::kGenGroups, 1>(data, w, acts, n, nt, r0, r1, n_out, y);
  else RunTiles<Family, Family::kBatchGroups, Family::kBatchTokens>(data, w, acts, n, nt, r0, r1, n_out, y);
}

// fn(Family{}) for type kType's family, or `none` where this pass builds no tiles for the type: the AVX-VNNI pass
// builds only the types it takes, for one token or for batches (avx_vnni_takes).
template <DType kType, class Family, typename Fn, typename R>
HWY_INLINE R With(Fn& fn, R none) {
#ifdef LOWBIT_AVX_VNNI
  if constexpr (!avx_vnni_takes(kType) && !avx_vnni_takes(kType, true)) return none;
  else
#endif
    return fn(Family{});
}

// The one place a type meets its tile family: calls fn(Family{}) and returns what it returns, or `none` for a
// type without one.
template <typename Fn, typename R>
R WithFamily(DType type, Fn&& fn, R none) {
  switch (type) {
    case DType::Q4_0: return With<DType::Q4_0, RowLanes<WholeBlockLanes<Q4_0Nibbles>>>(fn, none);
    case DType::Q5_0: return With<DType::Q5_0, RowLanes<Block32Lanes<Q5_0Levels>>>(fn, none);
    case DType::Q8_0:
      if (amx_sum_order()) return With<DType::Q8_0, RowLanes<WholeBlockLanes<Q8_0WholeBlocks>>>(fn, none);
      return With<DType::Q8_0, RowLanes<Block32Lanes<Q8_0Levels>>>(fn, none);
    case DType::IQ4_NL: return With<DType::IQ4_NL, RowLanes<WholeBlockLanes<IQ4NLNibbles>>>(fn, none);
    case DType::I4G: return With<DType::I4G, RowLanes<WholeBlockLanes<I4GWholeBlocks>>>(fn, none);
    case DType::Q4_1:
      if (amx_sum_order()) return With<DType::Q4_1, RowLanes<WholeBlockLanes<Q4_1WholeBlocks>>>(fn, none);
      return With<DType::Q4_1, RowLanes<Block32Lanes<Q4_1Levels>>>(fn, none);
    case DType::Q5_1: return With<DType::Q5_1, RowLanes<Block32Lanes<Q5_1Levels>>>(fn, none);
    case DType::Q2_K: return With<DType::Q2_K, RowLanes<Q2KLanes>>(fn, none);
    case DType::Q3_K: return With<DType::Q3_K, RowLanes<SubBlock16Lanes<Q3KLevels>>>(fn, none);
    case DType::Q4_K: return With<DType::Q4_K, RowLanes<Q4KLanes>>(fn, none);
    case DType::Q5_K: return With<DType::Q5_K, RowLanes<Q5KLanes>>(fn, none);
    case DType::Q6_K: return With<DType::Q6_K, RowLanes<SubBlock16Lanes<Q6KLevels>>>(fn, none);
    case DType::IQ4_XS:
      if (amx_sum_order()) return With<DType::IQ4_XS, RowLanes<IQ4XSLanes<true>>>(fn, none);
      return With<DType::IQ4_XS, RowLanes<IQ4XSLanes<false>>>(fn, none);
    case DType::F16: return With<DType::F16, RowLanes<HalfLanes<F16Values>>>(fn, none);
    case DType::BF16:
#if HWY_TARGET == HWY_AVX3_DL
      if (cpu_has_avx512_bf16()) return With<DType::BF16, RowLanes<HalfLanes<Bf16Pairs<true>>>>(fn, none);
#endif
#if HWY_TARGET == HWY_SSE4
      return With<DType::BF16, RowLanes<MulAddChecked<HalfLanes<Bf16Pairs<false>>>>>(fn, none);
#else
      return With<DType::BF16, RowLanes<HalfLanes<Bf16Pairs<false>>>>(fn, none);
#endif
    default: return none;
  }
}
#endif  // LOWBIT_TILE_KERNELS

// This pass's Highway target, so the dispatcher can tell which pass it calls: hwy::SupportedTargets() would say
// too, but runs CPUID each time, and CPUID in a virtual machine traps (5.6 us a call on the Zen 5 guest).
int64_t PassTarget() { return HWY_TARGET; }

void FmaLanes(const float* a, const float* b, const float* c, float* out, size_t n) {
  size_t i = 0;
#if LOWBIT_TILE_KERNELS
  for (; i + V::kLanes <= n; i += V::kLanes) {
    F va, vb, vc;
    std::memcpy(&va, a + i, sizeof(F));
    std::memcpy(&vb, b + i, sizeof(F));
    std::memcpy(&vc, c + i, sizeof(F));
    V::StoreF(V::Fma(va, vb, vc), out + i);
  }
#endif
  for (; i < n; ++i) out[i] = std::fma(a[i], b[i], c[i]);
}

void HalfToFloatLanes(const uint16_t* h, float* out, size_t n) {
  size_t i = 0;
#if LOWBIT_TILE_KERNELS
  for (; i + V::kLanes <= n; i += V::kLanes) V::StoreF(V::LanesHalfF(reinterpret_cast<const uint8_t*>(h + i)), out + i);
#endif
  for (; i < n; ++i) out[i] = f16_to_f32(h[i]);
}

int PackRows(DType type) {
#if LOWBIT_TILE_KERNELS
  return WithFamily(type, [](auto family) { return decltype(family)::kGenGroups * kRows; }, 1);
#else
  (void)type;
  return 1;  // the reference reads each row in place (pack_for_matmul leaves the rows row-major)
#endif
}

// One entry for every weight type: rows [r0, r1) of W times every token's quantized activations.
void MatmulRows(DType type, const uint8_t* data, const WeightLayout& w, const ActRow* acts, int64_t n, int64_t nt,
                int64_t r0, int64_t r1, int64_t n_out, float* y) {
#if LOWBIT_TILE_KERNELS
  const FlushSubnormals flush(type == DType::BF16);
  const bool done = WithFamily(type, [&](auto family) {
    Rows<decltype(family)>(data, w, acts, n, nt, r0, r1, n_out, y);
    return true;
  }, false);
  if (done) return;
#endif
  // Narrow targets (and any type without a tile): the reference, output by output, on row-major rows where they
  // are (a narrow pass packs none), else on a copy (a weight packed for a wider pass's tiles).
  const RowDotFn dot = reference_row_dot(type);
  std::vector<uint8_t> row(w.row_bytes);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* bytes = data + static_cast<size_t>(r) * w.row_bytes;
    if (r < w.packed_rows || w.units_encoded) {
      copy_row(data, w, r, row.data());
      bytes = row.data();
    }
    for (int64_t t = 0; t < nt; ++t) y[t * n_out + r] = dot(bytes, acts[t].blocks, n);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#endif  // LOWBIT_OPS_SIMD_MATMUL_INL_H_
