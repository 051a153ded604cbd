// Batches on AMX tiles: Q8_0, Q4_0, IQ4_NL, Q4_K and IQ4_XS. A weight tile is 16 rows, packed as the AVX-512
// kernels read them (ops/packed_weight.h): a block's slot holds the 16 rows' heads (fp16 d; Q4_K's d and dmin;
// IQ4_XS's d and high scale bits), then 4-byte chunks of every row. Q8_0's chunks (bytes 4l..4l+3 of each row,
// l = 0..7) are the layout AMX wants for its B operand (K/4 rows of 16 columns times 4 bytes), so its slot's last 512
// bytes are one tile load in place; the 4-bit types' four chunks (each of IQ4_XS's eight 32-value groups' four) hold
// two such rows each in their low and high nibbles, and are split into that layout through the type's table of values
// once per row tile for all the tokens (Q4_K: see Q4KTiles). A is 16 tokens' 32 values of the block (group), at the
// activation rows' stride; each B tile serves two token tiles. One TDPBSSD gives 16 x 16 exact sums; the vector units
// then add each, times d_w * d_a, to its output's float with one FMA (IQ4_XS: times its group's scale into an
// integer first, one FMA a super-block), while the tiles already compute the next block (two sets, alternating).
#include "ops/amx_matmul.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define LOWBIT_AMX_TILES 1  // elsewhere cpu_has_amx_int8() is false and nothing below the includes is built
#endif

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include "ops/dot_reference.h"
#include "quant/k_quant_common.h"
#include "quant/k_quants.h"
#include "quant/legacy_quants.h"
#include "util/cpu_features.h"

namespace lowbit {
#if LOWBIT_AMX_TILES
namespace {

constexpr int kTile = 16;      // weight rows (the tile's columns) and tokens (its rows)
constexpr size_t kBBytes = 512;  // a block's B operand: 8 rows of 16 columns times 4 bytes

// What the tiles need of each type: its packed slot, its activations' blocks, and how many bytes of B operands (and
// scales) a block's slot is decoded into once per row tile (0: read in place).
struct Q8_0Tiles {
  static constexpr const PackFormat& kPack = kQ8_0Pack;
  using Act = BlockQ8_0;
  static constexpr size_t kDecodedBytes = 0;
};
// Q4_0 and IQ4_NL: their nibbles through a table of signed values (Q4_0's level - 8), in their own order already
// (one float a row), so they take the tiles on any CPU with AMX.
alignas(16) constexpr int8_t kQ4_0Values[16] = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};
template <const int8_t* kValues>
struct NibbleTableTiles {
  static constexpr const PackFormat& kPack = kQ4_0Pack;
  using Act = BlockQ8_0;
  static constexpr size_t kDecodedBytes = kBBytes;
  static constexpr const int8_t* kTable = kValues;
};
using Q4_0Tiles = NibbleTableTiles<kQ4_0Values>;
using IQ4NLTiles = NibbleTableTiles<kIq4nlValues>;
static_assert(kQ4_0Pack.unit == sizeof(BlockQ4_0) && sizeof(BlockIQ4NL) == sizeof(BlockQ4_0) && kQ4_0Pack.head == 2);
// IQ4_XS: a super-block's eight groups' B operands (table values, signed), then their scales, 16 int32 a group.
struct IQ4XSTiles {
  static constexpr const PackFormat& kPack = kIQ4XSPack;
  using Act = BlockQ8K;
  static constexpr size_t kScalesOffset = 8 * kBBytes, kDecodedBytes = kScalesOffset + 8 * kTile * sizeof(int32_t);
};
// Q4_K, in its own order on every CPU (one float for the values, one for the mins). Its group scales (6 bits) would
// cost a 32-bit multiply per group and output if applied to the tile sums (vpmulld, 1.01x and 0.94x the row-lane
// kernels), so they go into the B operands instead, split in two so that every byte fits: level * (scale & 7) and
// level * (scale >> 3), each at most 15 * 7. The tiles then sum a super-block's 256 values whole, K = 64 at a time,
// and its exact value sum is lo + 8 * hi. Decoded per super-block: for each K chunk q (groups 2q, 2q + 1) the lo
// and hi B operands (16 rows of 64 bytes), then the mins as int16 pairs (m, m) per row and group, which meet the
// activations' bsums pairs in one vpdpwssd.
struct Q4KTiles {
  static constexpr const PackFormat& kPack = kQ4KPack;
  using Act = BlockQ8K;
  static constexpr size_t kWideB = 1024, kMinsOffset = 8 * kWideB, kDecodedBytes = kMinsOffset + 8 * kTile * 4;
};
static_assert(kQ4KPack.unit == sizeof(BlockQ4K) && kQ4KPack.head == 4 && kQ4KPack.chunk == 4 &&
              offsetof(BlockQ4K, scales) == 4 && offsetof(BlockQ8K, qs) == 4 && offsetof(BlockQ8K, bsums) == 260);
static_assert(kIQ4XSPack.unit == sizeof(BlockIQ4XS) && kIQ4XSPack.head == 4 && kIQ4XSPack.chunk == 4 &&
              offsetof(BlockIQ4XS, scales_h) == 2 && offsetof(BlockIQ4XS, scales_l) == 4);
static_assert(kQ8_0Pack.unit == sizeof(BlockQ8_0) && kQ8_0Pack.head == 2 && kQ8_0Pack.chunk == 4 &&
              offsetof(BlockQ8_0, qs) == 2);
template <class Type>
constexpr size_t kSlotBytes = kTile * Type::kPack.unit;
template <class Type>
constexpr size_t kHeadBytes = kTile * Type::kPack.head;

// Tile registers: B (a block's weights) in 0 and 1, one per block parity; A (two token tiles' activations) in 2 and
// 3; C (the sums) in 4 and 5 for the even blocks' two token tiles, 6 and 7 for the odd ones'. The first token tile
// has `first` tokens (rows), the second `second`. Wide (Q4_K): K = 64 a product, B 16 rows; B 0 and 1 are a chunk's
// lo and hi operands, C 4 and 5 the two token tiles' lo sums, 6 and 7 their hi sums.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
TileConfig config_for(int first, int second, bool wide) {
  TileConfig c;
  for (int t : {0, 1}) c.rows[t] = wide ? 16 : 8, c.colsb[t] = 64;
  for (int t : {2, 3}) c.colsb[t] = wide ? 64 : 32;
  for (int t : {4, 5, 6, 7}) c.colsb[t] = kTile * sizeof(int32_t);
  for (int t : {2, 4, 6}) c.rows[t] = static_cast<uint8_t>(first);
  for (int t : {3, 5, 7}) c.rows[t] = static_cast<uint8_t>(second);
  return c;
}

// Everything from here to pop_options runs only where cpu_has_amx_int8() said yes (every such CPU has AVX512-VNNI).
#pragma GCC push_options
#pragma GCC target("amx-tile,amx-int8,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,f16c,fma")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's own _mm512_undefined_* (`__m512 __Y = __Y`)
#pragma GCC diagnostic ignored "-Wuninitialized"

#define LOWBIT_AMX_INLINE inline __attribute__((always_inline))

// The shape the calling thread's tiles are configured for (0: none yet).
thread_local int configured_shape = 0;

void configure(int first, int second, bool wide = false) {
  const int shape = first * 32 + second + (wide ? 1024 : 0);
  if (configured_shape == shape) return;
  const TileConfig c = config_for(first, second, wide);
  // GCC 12's _tile_loadconfig tells the compiler it reads 8 bytes of the config, which then dropped the stores of
  // the rest (tiles of 0 rows: SIGILL on the first load); the barrier keeps them.
  asm volatile("" : : "r"(&c) : "memory");
  _tile_loadconfig(&c);
  configured_shape = shape;
}

// Back to the tiles' initial state at the end of a call: the kernel then saves and restores none of their 8 KiB on
// a context switch, and the core can enter its deeper idle states.
void release_tiles() {
  _tile_release();
  configured_shape = 0;
}

// Four chunks of 16 rows' nibbles, `step` bytes apart, as a block's B operand: chunk c's low nibbles are values
// 4c.. (row c), its high nibbles 16 + 4c.. (row 4 + c), each through a table of 16 bytes in each 128-bit lane.
void SplitNibbles(const uint8_t* chunks, size_t step, uint8_t* b, __m512i table) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int c = 0; c < 4; ++c) {
    const __m512i bytes = _mm512_loadu_si512(chunks + step * c);
    __m512i lo = _mm512_and_si512(bytes, low), hi = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low);
    lo = _mm512_shuffle_epi8(table, lo);
    hi = _mm512_shuffle_epi8(table, hi);
    _mm512_storeu_si512(b + 64 * c, lo);
    _mm512_storeu_si512(b + 64 * (4 + c), hi);
  }
}
__m512i Table16(const int8_t* values) {
  return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(values)));
}
// An IQ4_XS super-block's slot (kIQ4XSPack: heads d | scales_h, then scales_l, then for c = 0..3 the eight groups'
// qs bytes 16j + 4c.., group j's at position 1 + 8c + j): each group's nibbles through the IQ4_NL table as its B
// operand, and each group's 6-bit scale - 32 for the 16 rows.
void DecodeIQ4XS(const uint8_t* slot, uint8_t* out) {
  const __m512i table = Table16(kIq4nlValues);
  const uint8_t* qs = slot + kTile * kIQ4XSPack.head;  // position 0: scales_l; group j's chunk c at 1 + 8c + j
  for (int j = 0; j < 8; ++j) SplitNibbles(qs + 64 * (1 + j), 64 * 8, out + kBBytes * j, table);
  // A row per 32-bit lane: group g's scale is bits 4g..4g+3 of its scales_l word under bits 2g, 2g + 1 of scales_h
  // (the top half of its head word).
  const __m512i low = _mm512_loadu_si512(qs), high = _mm512_srli_epi32(_mm512_loadu_si512(slot), 16);
  for (int g = 0; g < 8; ++g) {
    const __m512i l = _mm512_and_si512(_mm512_srli_epi32(low, 4 * g), _mm512_set1_epi32(15));
    const __m512i h = _mm512_and_si512(_mm512_srli_epi32(high, 2 * g), _mm512_set1_epi32(3));
    const __m512i scale = _mm512_sub_epi32(_mm512_or_si512(l, _mm512_slli_epi32(h, 4)), _mm512_set1_epi32(32));
    _mm512_store_si512(out + IQ4XSTiles::kScalesOffset + 64 * g, scale);
  }
}

// A Q4_K super-block's slot (kQ4KPack: heads d | dmin, then the twelve scale bytes as three chunks, then qs: chunk
// 3 + 8q + l holds bytes 32q + 4l.. of every row, whose low nibbles are group 2q's values 4l.. and high nibbles group
// 2q + 1's) as Q4KTiles' operands.
LOWBIT_AMX_INLINE __m512i byte(__m512i words, int k) { return _mm512_srli_epi32(words, 8 * k); }
LOWBIT_AMX_INLINE __m512i both_halves(__m512i x) { return _mm512_or_si512(x, _mm512_slli_epi32(x, 16)); }

void DecodeQ4K(const uint8_t* slot, uint8_t* out) {
  const uint8_t* rest = slot + kTile * kQ4KPack.head;
  // The 16 rows' scale bytes 0-3, 4-7 and 8-11, a row per 32-bit lane; group j's scale and min 6 bits each
  // (kquant::unpack_scale_min_k4): j < 4 from byte j's and j + 4's low 6 bits, j >= 4 from byte j + 4's nibbles under
  // the top 2 bits of bytes j - 4 and j.
  const __m512i w0 = _mm512_loadu_si512(rest), w1 = _mm512_loadu_si512(rest + 64), w2 = _mm512_loadu_si512(rest + 128);
  const __m512i six = _mm512_set1_epi32(63), nibble = _mm512_set1_epi32(15), two = _mm512_set1_epi32(3);
  __m512i lo[8], hi[8];  // a row's scale & 7 and scale >> 3 in both halves of its word
  for (int j = 0; j < 8; ++j) {
    __m512i sc, m;
    if (j < 4) {
      sc = _mm512_and_si512(byte(w0, j), six);
      m = _mm512_and_si512(byte(w1, j), six);
    } else {
      const __m512i b = byte(w2, j - 4);
      sc = _mm512_or_si512(_mm512_and_si512(b, nibble),
                           _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(byte(w0, j - 4), 6), two), 4));
      m = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(b, 4), nibble),
                          _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(byte(w1, j - 4), 6), two), 4));
    }
    lo[j] = both_halves(_mm512_and_si512(sc, _mm512_set1_epi32(7)));
    hi[j] = both_halves(_mm512_srli_epi32(sc, 3));
    _mm512_store_si512(out + Q4KTiles::kMinsOffset + 64 * j, both_halves(m));
  }
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int q = 0; q < 4; ++q)
    for (int l = 0; l < 8; ++l) {
      const __m512i bytes = _mm512_loadu_si512(rest + 64 * (3 + 8 * q + l));
      const __m512i levels[2] = {_mm512_and_si512(bytes, low), _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low)};
      for (int h = 0; h < 2; ++h) {  // group 2q + h: rows 8h + l of the chunk's operands
        // A row's four levels times its factor, a word (two levels) at a time: each product fits its byte.
        uint8_t* at = out + Q4KTiles::kWideB * 2 * q + 64 * (8 * h + l);
        _mm512_storeu_si512(at, _mm512_mullo_epi16(levels[h], lo[2 * q + h]));
        _mm512_storeu_si512(at + Q4KTiles::kWideB, _mm512_mullo_epi16(levels[h], hi[2 * q + h]));
      }
    }
}

// A block's slot as Type's decoded bytes.
template <class Type>
void Decode(const uint8_t* slot, uint8_t* out) {
  if constexpr (std::is_same_v<Type, Q4KTiles>) DecodeQ4K(slot, out);
  else if constexpr (std::is_same_v<Type, IQ4XSTiles>) DecodeIQ4XS(slot, out);
  else SplitNibbles(slot + kHeadBytes<Type>, 64, out, Table16(Type::kTable));
}

// A call's up to 32 tokens as the two token tiles' C rows: 16 (or all) in the first tile, the rest in the second;
// with 16 or fewer the second is one row repeating the last token, cheaper than a second tile of them.
struct TokenTiles {
  int tokens, first, second;
  size_t second_at;  // the second tile's first activation row, in bytes from the first's
  TokenTiles(int n, size_t act_stride)
      : tokens(n), first(std::min(n, kTile)), second(n > kTile ? n - kTile : 1),
        second_at((n > kTile ? kTile : n - 1) * act_stride) {}
  int token(int row) const {
    return row < kTile ? std::min(row, first - 1) : std::min(first + row - kTile, tokens - 1);
  }
  int row(int token) const { return token < first ? token : kTile + token - first; }  // where a token's sums are
};

// Products of n blocks, each into C as the tiles' rows (tokens) by 16 columns (weight rows), for two token tiles
// (the second's A at a_at(k) + second_at) sharing each block's B, two sets of C tiles alternating: block k's B operand
// at b_at(k), its A at a_at(k) (rows act_stride apart); finish(k) reads block k's sums from `sums` (the first token
// tile's 256, then the second's) while the tiles compute block k + 1.
template <class BAt, class AAt, class Finish>
LOWBIT_AMX_INLINE void TileProducts(int64_t n, BAt b_at, AAt a_at, size_t act_stride, size_t second_at, int32_t* sums,
                                 Finish finish) {
  // Tile numbers are immediates, so each set's are spelled out: the B tile and the two C tiles of block k.
#define LOWBIT_AMX_PRODUCTS(bt, c0, c1, k)                     \
  _tile_loadd(bt, b_at(k), 64);                                \
  _tile_loadd(2, a_at(k), act_stride);                         \
  _tile_loadd(3, a_at(k) + second_at, act_stride);             \
  _tile_zero(c0);                                              \
  _tile_zero(c1);                                              \
  _tile_dpbssd(c0, 2, bt);                                     \
  _tile_dpbssd(c1, 3, bt)
#define LOWBIT_AMX_STORE(c0, c1)                               \
  _tile_stored(c0, sums, kTile * sizeof(int32_t));             \
  _tile_stored(c1, sums + kTile * kTile, kTile * sizeof(int32_t))
  LOWBIT_AMX_PRODUCTS(0, 4, 5, 0);
  for (int64_t k = 0; k < n; k += 2) {
    if (k + 1 < n) {
      LOWBIT_AMX_PRODUCTS(1, 6, 7, k + 1);
    }
    LOWBIT_AMX_STORE(4, 5);
    finish(k);
    if (k + 1 == n) break;
    if (k + 2 < n) {
      LOWBIT_AMX_PRODUCTS(0, 4, 5, k + 2);
    }
    LOWBIT_AMX_STORE(6, 7);
    finish(k + 1);
  }
#undef LOWBIT_AMX_PRODUCTS
#undef LOWBIT_AMX_STORE
}

// One tile of 16 weight rows (block b's heads at slots + b * kSlotBytes, its B operand at bs + b * b_step, the
// decoded bytes if it has them) times `tokens` <= 32 tokens in two token tiles (with 16 or fewer, the second is one
// row repeating the last token), whose block b has its values at act + b * sizeof(Act) + offsetof(Act, qs), token
// after token `act_stride` bytes apart; y[t * ldy + r] for r < rows.
template <class Type>
void Tile(const uint8_t* slots, const uint8_t* bs, size_t b_step, const ActRow* acts, size_t act_stride,
          int64_t n_blocks, int tokens, float* y, size_t ldy, int rows) {
  using Act = typename Type::Act;
  constexpr int kRows = 2 * kTile;  // the two C tiles' rows
  const TokenTiles tiles(tokens, act_stride);
  configure(tiles.first, tiles.second);
  const uint8_t* act = acts[0].blocks + offsetof(Act, qs);
  const size_t second_at = tiles.second_at;
  const ActRow* token[kRows];  // each C row's token; rows past the last repeat it, and are not stored
  for (int t = 0; t < kRows; ++t) token[t] = &acts[tiles.token(t)];
  __m512 acc[kRows];
  for (__m512& a : acc) a = _mm512_setzero_ps();
  alignas(64) int32_t sums[kRows * kTile];
  if constexpr (std::is_same_v<Type, IQ4XSTiles>) {
    // Eight products a super-block, each added times its group's scales to the rows' exact sums; one FMA at its end.
    __m512i whole[kRows];
    for (__m512i& w : whole) w = _mm512_setzero_si512();
    const auto finish = [&](int64_t k) {
      const int64_t b = k / 8;
      const int g = static_cast<int>(k % 8);
      const __m512i scale = _mm512_load_si512(bs + b * b_step + IQ4XSTiles::kScalesOffset + 64 * g);
      for (int t = 0; t < kRows; ++t)
        whole[t] = _mm512_add_epi32(whole[t], _mm512_mullo_epi32(_mm512_load_si512(sums + kTile * t), scale));
      if (g < 7) return;
      const __m512i heads = _mm512_loadu_si512(slots + b * kSlotBytes<Type>);  // d | scales_h << 16
      const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(heads));
      for (int t = 0; t < kRows; ++t) {
        const float da = reinterpret_cast<const Act*>(token[t]->blocks)[b].d;
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(whole[t]), _mm512_mul_ps(dw, _mm512_set1_ps(da)), acc[t]);
        whole[t] = _mm512_setzero_si512();
      }
    };
    TileProducts(
        8 * n_blocks, [&](int64_t k) { return bs + k / 8 * b_step + kBBytes * (k % 8); },
        [&](int64_t k) { return act + k / 8 * sizeof(Act) + 32 * (k % 8); }, act_stride, second_at, sums, finish);
  } else {
    const auto finish = [&](int64_t b) {
      const auto* heads = reinterpret_cast<const __m256i*>(slots + b * kSlotBytes<Type>);
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(heads));
      for (int t = 0; t < kRows; ++t) {
        const __m512 sum = _mm512_cvtepi32_ps(_mm512_load_si512(sums + kTile * t));
        acc[t] = _mm512_fmadd_ps(sum, _mm512_mul_ps(dw, _mm512_set1_ps(token[t]->scales[b])), acc[t]);
      }
    };
    TileProducts(
        n_blocks, [&](int64_t b) { return bs + b * b_step; }, [&](int64_t b) { return act + b * sizeof(Act); },
        act_stride, second_at, sums, finish);
  }
  const __mmask16 valid = static_cast<__mmask16>((1u << rows) - 1);
  for (int t = 0; t < tokens; ++t) _mm512_mask_storeu_ps(y + t * ldy, valid, acc[tiles.row(t)]);
}

// Q4_K: one tile of 16 weight rows (its decoded super-blocks at decoded + b * kDecodedBytes) times `tokens` <= 32
// tokens as Tile, each super-block's products summed whole in the tiles (Q4KTiles), the next super-block's computed
// while the vector units finish this one's.
void TileQ4K(const uint8_t* slots, const uint8_t* decoded, const ActRow* acts, size_t act_stride, int64_t n_blocks,
             int tokens, float* y, size_t ldy, int rows) {
  using Act = BlockQ8K;
  constexpr int kRows = 2 * kTile;
  const TokenTiles tiles(tokens, act_stride);
  configure(tiles.first, tiles.second, true);
  const uint8_t* act = acts[0].blocks + offsetof(Act, qs);
  const size_t second_at = tiles.second_at;
  const Act* token[kRows];  // each C row's token's blocks; rows past the last repeat it, and are not stored
  for (int t = 0; t < kRows; ++t) token[t] = reinterpret_cast<const Act*>(acts[tiles.token(t)].blocks);
  __m512 values[kRows], mins[kRows];
  for (int t = 0; t < kRows; ++t) values[t] = mins[t] = _mm512_setzero_ps();
  alignas(64) int32_t lo[kRows * kTile], hi[kRows * kTile];
  const auto products = [&](int64_t b) {
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
    const uint8_t* ops = decoded + b * Q4KTiles::kDecodedBytes;
    const uint8_t* a = act + b * sizeof(Act);
    for (int q = 0; q < 4; ++q) {
      _tile_loadd(0, ops + Q4KTiles::kWideB * 2 * q, 64);
      _tile_loadd(1, ops + Q4KTiles::kWideB * (2 * q + 1), 64);
      _tile_loadd(2, a + 64 * q, act_stride);
      _tile_loadd(3, a + 64 * q + second_at, act_stride);
      _tile_dpbsud(4, 2, 0);
      _tile_dpbsud(5, 3, 0);
      _tile_dpbsud(6, 2, 1);
      _tile_dpbsud(7, 3, 1);
    }
  };
  const auto finish = [&](int64_t b) {
    const __m512i heads = _mm512_loadu_si512(slots + b * kSlotBytes<Q4KTiles>);  // d | dmin << 16
    const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(heads));
    const __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(heads, 16)));
    const uint8_t* min_pairs = decoded + b * Q4KTiles::kDecodedBytes + Q4KTiles::kMinsOffset;
    for (int t = 0; t < kRows; ++t) {
      const Act& a = token[t][b];
      const __m512i whole = _mm512_add_epi32(_mm512_load_si512(lo + kTile * t),
                                             _mm512_slli_epi32(_mm512_load_si512(hi + kTile * t), 3));
      values[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(whole), _mm512_mul_ps(dw, _mm512_set1_ps(a.d)), values[t]);
      __m512i m = _mm512_setzero_si512();
      for (int j = 0; j < 8; ++j) {  // m_j * (bsums[2j] + bsums[2j + 1]), the pair of words as one
        int32_t pair;
        std::memcpy(&pair, a.bsums + 2 * j, 4);
        m = _mm512_dpwssd_epi32(m, _mm512_load_si512(min_pairs + 64 * j), _mm512_set1_epi32(pair));
      }
      mins[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmin, _mm512_set1_ps(a.d)), mins[t]);
    }
  };
  products(0);
  for (int64_t b = 0; b < n_blocks; ++b) {
    _tile_stored(4, lo, kTile * sizeof(int32_t));
    _tile_stored(5, lo + kTile * kTile, kTile * sizeof(int32_t));
    _tile_stored(6, hi, kTile * sizeof(int32_t));
    _tile_stored(7, hi + kTile * kTile, kTile * sizeof(int32_t));
    if (b + 1 < n_blocks) products(b + 1);
    finish(b);
  }
  const __mmask16 valid = static_cast<__mmask16>((1u << rows) - 1);
  for (int t = 0; t < tokens; ++t) {
    const int i = tiles.row(t);
    _mm512_mask_storeu_ps(y + t * ldy, valid, _mm512_sub_ps(values[i], mins[i]));
  }
}

#undef LOWBIT_AMX_INLINE
#pragma GCC diagnostic pop
#pragma GCC pop_options

// Every row tile of [r0, r1) times every pair of token tiles.
template <class Type>
void RunRows(const uint8_t* data, const WeightLayout& w, const ActRow* acts, int64_t nt, int64_t r0, int64_t r1,
             int64_t n_out, float* y) {
  static_assert(Type::kPack.head_offset == 0 && Type::kPack.encode == nullptr);
  const auto n_blocks = static_cast<int64_t>(w.row_bytes / Type::kPack.unit);
  const size_t act_stride = nt > 1 ? static_cast<size_t>(acts[1].blocks - acts[0].blocks) : 0;
  thread_local std::vector<uint8_t> packed, decoded;  // kept from call to call: a call is 32 rows
  for (int64_t r = r0; r < r1; r += kTile) {
    const int rows = static_cast<int>(std::min<int64_t>(kTile, r1 - r));
    const uint8_t* slots = data + static_cast<size_t>(r) * w.row_bytes;
    if (!(w.tile_rows == kTile && r % kTile == 0 && r + kTile <= w.packed_rows)) {
      packed.resize(static_cast<size_t>(n_blocks) * kSlotBytes<Type>);
      pack_tile(data, w, r, rows, kTile, packed.data());
      slots = packed.data();
    }
    const uint8_t* bs = slots + kHeadBytes<Type>;
    size_t b_step = kSlotBytes<Type>;
    if constexpr (Type::kDecodedBytes != 0) {
      decoded.resize(static_cast<size_t>(n_blocks) * Type::kDecodedBytes + 64);
      uint8_t* out = decoded.data() + (64 - reinterpret_cast<uintptr_t>(decoded.data()) % 64) % 64;  // scales aligned
      for (int64_t b = 0; b < n_blocks; ++b) {
        const uint8_t* slot = slots + b * kSlotBytes<Type>;
        Decode<Type>(slot, out + b * Type::kDecodedBytes);
      }
      bs = out;
      b_step = Type::kDecodedBytes;
    }
    for (int64_t t = 0; t < nt; t += 2 * kTile) {
      const int tokens = static_cast<int>(std::min<int64_t>(2 * kTile, nt - t));
      if constexpr (std::is_same_v<Type, Q4KTiles>)
        TileQ4K(slots, bs, acts + t, act_stride, n_blocks, tokens, y + t * n_out + r, static_cast<size_t>(n_out), rows);
      else
        Tile<Type>(slots, bs, b_step, acts + t, act_stride, n_blocks, tokens, y + t * n_out + r,
                   static_cast<size_t>(n_out), rows);
    }
  }
}

}  // namespace
#endif  // LOWBIT_AMX_TILES

bool amx_matmul_takes(DType type, int64_t n_tokens) {
  if (n_tokens < kAmxMinTokens || !cpu_has_amx_int8()) return false;
  switch (type) {
    case DType::Q4_0:
    case DType::IQ4_NL:
    case DType::Q4_K: return true;
    case DType::Q8_0:
    case DType::IQ4_XS: return amx_sum_order();
    default: return false;
  }
}

void amx_matmul_rows(DType type, const uint8_t* data, const WeightLayout& w, const ActRow* acts, int64_t nt, int64_t r0,
                     int64_t r1, int64_t n_out, float* y) {
#if LOWBIT_AMX_TILES
  switch (type) {
    case DType::Q8_0: RunRows<Q8_0Tiles>(data, w, acts, nt, r0, r1, n_out, y); break;
    case DType::Q4_0: RunRows<Q4_0Tiles>(data, w, acts, nt, r0, r1, n_out, y); break;
    case DType::IQ4_NL: RunRows<IQ4NLTiles>(data, w, acts, nt, r0, r1, n_out, y); break;
    case DType::Q4_K: RunRows<Q4KTiles>(data, w, acts, nt, r0, r1, n_out, y); break;
    default: RunRows<IQ4XSTiles>(data, w, acts, nt, r0, r1, n_out, y); break;
  }
  release_tiles();
#endif
}

}  // namespace lowbit
