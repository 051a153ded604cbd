// Q8_0 batches on AMX tiles. A weight tile is 16 rows, packed as the AVX-512 kernels read them (ops/packed_weight.h
// kQ8_0Pack): a block's slot holds the 16 rows' fp16 scales, then for l = 0..7 bytes 4l..4l+3 of every row, which is
// the layout AMX wants for its B operand (K/4 rows of 16 columns times 4 bytes), so the slot's last 512 bytes are
// one tile load in place. A is 16 tokens' 32 values of the block, at the activation rows' stride. One TDPBSSD gives
// the 16 x 16 exact block sums (signed times signed); the vector units then add each, times d_w * d_a, to its
// output's float with one FMA, while the tiles already compute the next block (two sets of tiles, alternating).
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

constexpr int kTile = 16;  // weight rows (the tile's columns) and tokens (its rows)
constexpr size_t kHeadBytes = kTile * sizeof(uint16_t);
constexpr size_t kSlotBytes = kTile * sizeof(BlockQ8_0);
static_assert(kSlotBytes == kHeadBytes + 8 * 64 && offsetof(BlockQ8_0, qs) == 2);
static_assert(kQ8_0Pack.unit == sizeof(BlockQ8_0) && kQ8_0Pack.head == 2 && kQ8_0Pack.chunk == 4);

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
  _tile_loadconfig(&c);
  configured_tokens = tokens;
}

// One tile of 16 weight rows (block b's slot at slots + b * kSlotBytes) times `tokens` <= 16 tokens, whose block b
// has its values at act + b * 34 + 2, token after token `act_stride` bytes apart; y[t * ldy + r] for r < rows.
void TileQ8_0(const uint8_t* slots, const ActRow* acts, size_t act_stride, int64_t n_blocks, int tokens, float* y,
              size_t ldy, int rows) {
  configure(tokens);
  const uint8_t* act = acts[0].blocks + offsetof(BlockQ8_0, qs);
  const float* scales[kTile];  // tokens past the last repeat it; their outputs are not stored
  for (int t = 0; t < kTile; ++t) scales[t] = acts[std::min(t, tokens - 1)].scales;
  __m512 acc[kTile];
  for (__m512& a : acc) a = _mm512_setzero_ps();
  alignas(64) int32_t sums[kTile * kTile];
  const auto finish = [&](int64_t b) {
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(slots + b * kSlotBytes)));
    for (int t = 0; t < kTile; ++t) {
      const __m512 sum = _mm512_cvtepi32_ps(_mm512_load_si512(sums + kTile * t));
      acc[t] = _mm512_fmadd_ps(sum, _mm512_mul_ps(dw, _mm512_set1_ps(scales[t][b])), acc[t]);
    }
  };
  const auto a_at = [&](int64_t b) { return act + b * sizeof(BlockQ8_0); };
  const auto b_at = [&](int64_t b) { return slots + b * kSlotBytes + kHeadBytes; };
  // Tile numbers are immediates, so the two sets are written out.
  _tile_loadd(0, b_at(0), 64);
  _tile_loadd(2, a_at(0), act_stride);
  _tile_zero(4);
  _tile_dpbssd(4, 2, 0);
  for (int64_t b = 0; b < n_blocks; b += 2) {
    if (b + 1 < n_blocks) {
      _tile_loadd(1, b_at(b + 1), 64);
      _tile_loadd(3, a_at(b + 1), act_stride);
      _tile_zero(5);
      _tile_dpbssd(5, 3, 1);
    }
    _tile_stored(4, sums, kTile * sizeof(int32_t));
    finish(b);
    if (b + 1 == n_blocks) break;
    if (b + 2 < n_blocks) {
      _tile_loadd(0, b_at(b + 2), 64);
      _tile_loadd(2, a_at(b + 2), act_stride);
      _tile_zero(4);
      _tile_dpbssd(4, 2, 0);
    }
    _tile_stored(5, sums, kTile * sizeof(int32_t));
    finish(b + 1);
  }
  const __mmask16 valid = static_cast<__mmask16>((1u << rows) - 1);
  for (int t = 0; t < tokens; ++t) _mm512_mask_storeu_ps(y + t * ldy, valid, acc[t]);
}

#pragma GCC diagnostic pop
#pragma GCC pop_options

// Rows [r, r + rows) of any layout as packed slots of 16 (rows past the last repeat it).
void pack_slots(const uint8_t* data, const WeightLayout& w, int64_t r, int rows, int64_t n_blocks, uint8_t* slots) {
  std::vector<uint8_t> row(w.row_bytes);
  for (int i = 0; i < kTile; ++i) {
    copy_row(data, w, r + std::min(i, rows - 1), row.data());
    for (int64_t b = 0; b < n_blocks; ++b) {
      const auto& block = reinterpret_cast<const BlockQ8_0*>(row.data())[b];
      uint8_t* slot = slots + b * kSlotBytes;
      std::memcpy(slot + sizeof(uint16_t) * i, &block.d, sizeof(uint16_t));
      for (int l = 0; l < 8; ++l) std::memcpy(slot + kHeadBytes + 64 * l + 4 * i, block.qs + 4 * l, 4);
    }
  }
}

}  // namespace

bool amx_matmul_takes(DType type) { return type == DType::Q8_0 && cpu_has_amx_int8() && amx_sum_order(); }

void amx_matmul_rows(const uint8_t* data, const WeightLayout& w, const ActRow* acts, int64_t n, int64_t nt, int64_t r0,
                     int64_t r1, int64_t n_out, float* y) {
  const int64_t n_blocks = n / 32;
  const size_t act_stride = nt > 1 ? static_cast<size_t>(acts[1].blocks - acts[0].blocks) : 0;
  std::vector<uint8_t> scratch;
  for (int64_t r = r0; r < r1; r += kTile) {
    const int rows = static_cast<int>(std::min<int64_t>(kTile, r1 - r));
    const uint8_t* slots = data + static_cast<size_t>(r) * w.row_bytes;
    if (!(w.tile_rows == kTile && r % kTile == 0 && r + kTile <= w.packed_rows)) {
      scratch.resize(static_cast<size_t>(n_blocks) * kSlotBytes);
      pack_slots(data, w, r, rows, n_blocks, scratch.data());
      slots = scratch.data();
    }
    for (int64_t t = 0; t < nt; t += kTile) {
      const int tokens = static_cast<int>(std::min<int64_t>(kTile, nt - t));
      TileQ8_0(slots, acts + t, act_stride, n_blocks, tokens, y + t * n_out + r, static_cast<size_t>(n_out), rows);
    }
  }
}

}  // namespace lowbit
