// Q8_0 and Q4_1 batches on AMX tiles. A weight tile is 16 rows, packed as the AVX-512 kernels read them
// (ops/packed_weight.h): a block's slot holds the 16 rows' heads (fp16 d; Q4_1's d and m), then 4-byte chunks of
// every row. Q8_0's chunks (bytes 4l..4l+3 of each row, l = 0..7) are the layout AMX wants for its B operand (K/4
// rows of 16 columns times 4 bytes), so its slot's last 512 bytes are one tile load in place; Q4_1's four chunks
// hold two such rows each, in their low and high nibbles, and are split into that layout once per row tile for
// all the tokens. A is 16 tokens' 32 values of the block, at the activation rows' stride. One TDPBSSD (Q8_0, signed
// times signed) or TDPBSUD (Q4_1's levels 0..15 unsigned) gives the 16 x 16 exact block sums; the vector units then
// add each, times d_w * d_a, to its output's float with one FMA (Q4_1: and m_w * s_a with a second), while the
// tiles already compute the next block (two sets of tiles, alternating).
#include "ops/amx_matmul.h"

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "ops/dot_reference.h"
#include "quant/legacy_quants.h"
#include "util/cpu_features.h"

namespace lowbit {
namespace {

constexpr int kTile = 16;      // weight rows (the tile's columns) and tokens (its rows)
constexpr size_t kBBytes = 512;  // a block's B operand: 8 rows of 16 columns times 4 bytes

// What the tiles need of each type: its packed slot, its activations' blocks, and whether its levels are signed.
struct Q8_0Tiles {
  static constexpr const PackFormat& kPack = kQ8_0Pack;
  using Act = BlockQ8_0;
  static constexpr bool kSigned = true, kAffine = false;
};
struct Q4_1Tiles {
  static constexpr const PackFormat& kPack = kQ4_1Pack;
  using Act = BlockQ8_1;
  static constexpr bool kSigned = false, kAffine = true;
};
static_assert(kQ8_0Pack.unit == sizeof(BlockQ8_0) && kQ8_0Pack.head == 2 && kQ8_0Pack.chunk == 4 &&
              offsetof(BlockQ8_0, qs) == 2);
static_assert(kQ4_1Pack.unit == sizeof(BlockQ4_1) && kQ4_1Pack.head == 4 && kQ4_1Pack.chunk == 4 &&
              offsetof(BlockQ4_1, qs) == 4);
static_assert(offsetof(BlockQ8_1, s) == 2 && offsetof(BlockQ8_1, qs) == 4);
template <class Type>
constexpr size_t kSlotBytes = kTile * Type::kPack.unit;
template <class Type>
constexpr size_t kHeadBytes = kTile * Type::kPack.head;

// Tile registers: B (a block's weights) in 0 and 1, A (its activations) in 2 and 3, C (the sums) in 4 and 5, one set
// per block parity.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
TileConfig config_for(int tokens) {
  TileConfig c;
  for (int t : {0, 1}) c.rows[t] = 8, c.colsb[t] = 64;
  for (int t : {2, 3}) c.rows[t] = static_cast<uint8_t>(tokens), c.colsb[t] = 32;
  for (int t : {4, 5}) c.rows[t] = static_cast<uint8_t>(tokens), c.colsb[t] = kTile * sizeof(int32_t);
  return c;
}

// Everything from here to pop_options runs only where cpu_has_amx_int8() said yes.
#pragma GCC push_options
#pragma GCC target("amx-tile,amx-int8,avx512f,avx512bw,avx512dq,avx512vl,f16c,fma")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's own _mm512_undefined_ps (`__m512 __Y = __Y`)

// The token count the calling thread's tiles are configured for (0: none yet).
thread_local int configured_tokens = 0;

void configure(int tokens) {
  if (configured_tokens == tokens) return;
  const TileConfig c = config_for(tokens);
  // GCC 12's _tile_loadconfig tells the compiler it reads 8 bytes of the config, which then dropped the stores of
  // the rest (tiles of 0 rows: SIGILL on the first load); the barrier keeps them.
  asm volatile("" : : "r"(&c) : "memory");
  _tile_loadconfig(&c);
  configured_tokens = tokens;
}

// Q4_1's four chunks of a block as its B operand: chunk c's low nibbles are values 4c.. (row c), its high nibbles
// 16 + 4c.. (row 4 + c).
void SplitNibbles(const uint8_t* chunks, uint8_t* b) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int c = 0; c < 4; ++c) {
    const __m512i bytes = _mm512_loadu_si512(chunks + 64 * c);
    _mm512_storeu_si512(b + 64 * c, _mm512_and_si512(bytes, low));
    _mm512_storeu_si512(b + 64 * (4 + c), _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low));
  }
}

// One tile of 16 weight rows (block b's heads at slots + b * kSlotBytes, its B operand at bs + b * b_step) times
// `tokens` <= 16 tokens, whose block b has its values at act + b * sizeof(Act) + offsetof(Act, qs), token after
// token `act_stride` bytes apart; y[t * ldy + r] for r < rows.
template <class Type>
void Tile(const uint8_t* slots, const uint8_t* bs, size_t b_step, const ActRow* acts, size_t act_stride,
          int64_t n_blocks, int tokens, float* y, size_t ldy, int rows) {
  using Act = typename Type::Act;
  configure(tokens);
  const uint8_t* act = acts[0].blocks + offsetof(Act, qs);
  const ActRow* token[kTile];  // tokens past the last repeat it; their outputs are not stored
  for (int t = 0; t < kTile; ++t) token[t] = &acts[std::min(t, tokens - 1)];
  __m512 acc[kTile];
  for (__m512& a : acc) a = _mm512_setzero_ps();
  alignas(64) int32_t sums[kTile * kTile];
  const auto finish = [&](int64_t b) {
    const uint8_t* heads = slots + b * kSlotBytes<Type>;
    __m512 dw, mw = _mm512_setzero_ps();
    if constexpr (Type::kAffine) {  // d, m pairs: the low and high halves of 16 words
      const __m512i pairs = _mm512_loadu_si512(heads);
      dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(pairs));
      mw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(pairs, 16)));
    } else {
      dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(heads)));
    }
    for (int t = 0; t < kTile; ++t) {
      const __m512 sum = _mm512_cvtepi32_ps(_mm512_load_si512(sums + kTile * t));
      acc[t] = _mm512_fmadd_ps(sum, _mm512_mul_ps(dw, _mm512_set1_ps(token[t]->scales[b])), acc[t]);
      if constexpr (Type::kAffine) {
        const float s = _cvtsh_ss(reinterpret_cast<const Act*>(token[t]->blocks)[b].s);
        acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(s), acc[t]);
      }
    }
  };
  const auto a_at = [&](int64_t b) { return act + b * sizeof(Act); };
  const auto b_at = [&](int64_t b) { return bs + b * b_step; };
  // Tile numbers are immediates, so the two sets are written out.
#define LOWBIT_AMX_DOT(c, a, b)                   \
  if constexpr (Type::kSigned) _tile_dpbssd(c, a, b); \
  else _tile_dpbsud(c, a, b)
  _tile_loadd(0, b_at(0), 64);
  _tile_loadd(2, a_at(0), act_stride);
  _tile_zero(4);
  LOWBIT_AMX_DOT(4, 2, 0);
  for (int64_t b = 0; b < n_blocks; b += 2) {
    if (b + 1 < n_blocks) {
      _tile_loadd(1, b_at(b + 1), 64);
      _tile_loadd(3, a_at(b + 1), act_stride);
      _tile_zero(5);
      LOWBIT_AMX_DOT(5, 3, 1);
    }
    _tile_stored(4, sums, kTile * sizeof(int32_t));
    finish(b);
    if (b + 1 == n_blocks) break;
    if (b + 2 < n_blocks) {
      _tile_loadd(0, b_at(b + 2), 64);
      _tile_loadd(2, a_at(b + 2), act_stride);
      _tile_zero(4);
      LOWBIT_AMX_DOT(4, 2, 0);
    }
    _tile_stored(5, sums, kTile * sizeof(int32_t));
    finish(b + 1);
  }
#undef LOWBIT_AMX_DOT
  const __mmask16 valid = static_cast<__mmask16>((1u << rows) - 1);
  for (int t = 0; t < tokens; ++t) _mm512_mask_storeu_ps(y + t * ldy, valid, acc[t]);
}

#pragma GCC diagnostic pop
#pragma GCC pop_options

// Rows [r, r + rows) of any layout as packed slots of 16 (rows past the last repeat it): the heads side by side,
// then each 4-byte chunk of every row.
void pack_slots(const PackFormat& f, const uint8_t* data, const WeightLayout& w, int64_t r, int rows, int64_t n_blocks,
                uint8_t* slots) {
  std::vector<uint8_t> row(w.row_bytes);
  const size_t chunks = (f.unit - f.head) / f.chunk;
  for (int i = 0; i < kTile; ++i) {
    copy_row(data, w, r + std::min(i, rows - 1), row.data());
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* unit = row.data() + b * f.unit;
      uint8_t* slot = slots + b * kTile * f.unit;
      std::memcpy(slot + f.head * i, unit, f.head);
      for (size_t c = 0; c < chunks; ++c)
        std::memcpy(slot + kTile * f.head + kTile * f.chunk * c + f.chunk * i, unit + f.head + f.chunk * c, f.chunk);
    }
  }
}

// Every row tile of [r0, r1) times every token tile.
template <class Type>
void RunRows(const uint8_t* data, const WeightLayout& w, const ActRow* acts, int64_t n, int64_t nt, int64_t r0,
             int64_t r1, int64_t n_out, float* y) {
  static_assert(Type::kPack.head_offset == 0 && Type::kPack.position == kChunksInOrder);
  const int64_t n_blocks = n / 32;
  const size_t act_stride = nt > 1 ? static_cast<size_t>(acts[1].blocks - acts[0].blocks) : 0;
  std::vector<uint8_t> packed, split;
  for (int64_t r = r0; r < r1; r += kTile) {
    const int rows = static_cast<int>(std::min<int64_t>(kTile, r1 - r));
    const uint8_t* slots = data + static_cast<size_t>(r) * w.row_bytes;
    if (!(w.tile_rows == kTile && r % kTile == 0 && r + kTile <= w.packed_rows)) {
      packed.resize(static_cast<size_t>(n_blocks) * kSlotBytes<Type>);
      pack_slots(Type::kPack, data, w, r, rows, n_blocks, packed.data());
      slots = packed.data();
    }
    const uint8_t* bs = slots + kHeadBytes<Type>;
    size_t b_step = kSlotBytes<Type>;
    if constexpr (!Type::kSigned) {
      split.resize(static_cast<size_t>(n_blocks) * kBBytes);
      for (int64_t b = 0; b < n_blocks; ++b)
        SplitNibbles(slots + b * kSlotBytes<Type> + kHeadBytes<Type>, split.data() + b * kBBytes);
      bs = split.data();
      b_step = kBBytes;
    }
    for (int64_t t = 0; t < nt; t += kTile) {
      const int tokens = static_cast<int>(std::min<int64_t>(kTile, nt - t));
      Tile<Type>(slots, bs, b_step, acts + t, act_stride, n_blocks, tokens, y + t * n_out + r,
                 static_cast<size_t>(n_out), rows);
    }
  }
}

}  // namespace

bool amx_matmul_takes(DType type) {
  return (type == DType::Q8_0 || type == DType::Q4_1) && cpu_has_amx_int8() && amx_sum_order();
}

void amx_matmul_rows(DType type, const uint8_t* data, const WeightLayout& w, const ActRow* acts, int64_t n, int64_t nt,
                     int64_t r0, int64_t r1, int64_t n_out, float* y) {
  if (type == DType::Q8_0) RunRows<Q8_0Tiles>(data, w, acts, n, nt, r0, r1, n_out, y);
  else RunRows<Q4_1Tiles>(data, w, acts, n, nt, r0, r1, n_out, y);
}

}  // namespace lowbit
