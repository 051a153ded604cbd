// The engine's layout for matmul weights: rows in tiles whose blocks are interleaved (block 0 of the tile's rows,
// then block 1 of each, ...), so a kernel tile reads its weights as one sequential stream. On the machines here
// one stream reads at ~28 GB/s while eight rows read side by side, each from its own place, reach ~11 GB/s: for
// generation, which reads every weight once per token, the layout decides the speed. A tile has as many rows as
// the running CPU's generation kernel for the type takes at once (simd_pack_rows: mostly 8 with AVX-512 and 4
// with AVX2; a kernel tile that covered half a packed tile would read it with gaps, measured 3x slower). The
// arithmetic is the same, so are the results.
// Rows after the last full tile keep their row-major place.
//
// Within a tile's slot for block b, the first `head` bytes of each row's block (the fp16 scale of the 32-value
// types, Q4_K/Q5_K's d, dmin and scales) come first, side by side, so the tile's heads are one or two loads; then
// the rest of the rows' blocks in chunks of `chunk` bytes: chunk 0 of every row, then chunk 1 of every row, ...
// Most types have one chunk, the whole rest; Q4_K/Q5_K keep 32 bytes (the values of 64 weights) together, so a
// kernel reads its slot in order and two rows' chunks are one 64-byte load.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace lowbit {

inline constexpr int kMaxPackRows = 8;

// Bytes that stay together in a row: one block, or eight values (16 bytes) of F16/BF16.
size_t pack_unit_bytes(DType type);
// Bytes of each unit gathered at the front of a tile's slot: 2 (the scale) for 32-value blocks, 16 for Q4_K/Q5_K
// (d, dmin and the scales), else 0.
size_t pack_head_bytes(DType type);
// Bytes of a unit's rest that stay together: 32 for Q4_K/Q5_K, else the whole rest.
size_t pack_chunk_bytes(DType type);

// Where a weight's bytes are: rows of row_bytes in units of `unit`, the first packed_rows in interleaved tiles of
// tile_rows rows.
struct WeightLayout {
  size_t row_bytes, unit, head, chunk;
  int64_t packed_rows, tile_rows;
  // Byte `offset` of unit u of row r.
  size_t byte_offset(int64_t r, int64_t u, size_t offset) const {
    if (r >= packed_rows) return static_cast<size_t>(r) * row_bytes + static_cast<size_t>(u) * unit + offset;
    const auto tile = static_cast<size_t>(tile_rows), i = static_cast<size_t>(r % tile_rows);
    const size_t slot = static_cast<size_t>(r / tile_rows) * tile * row_bytes + static_cast<size_t>(u) * tile * unit;
    if (offset < head) return slot + i * head + offset;
    const size_t rest = offset - head;
    return slot + tile * head + rest / chunk * tile * chunk + i * chunk + rest % chunk;
  }
};
WeightLayout weight_layout(const Tensor& w);

// Whether `w` can take the layout: a 2-D weight of a type with a SIMD kernel whose rows split into whole units.
bool packable(const Tensor& w);

// An owned copy of `w` in the interleaved layout, tiles of `tile_rows` (default: simd_pack_rows(type); a power of two
// up to kMaxPackRows), or `w` itself when it is not packable. The source's pages are handed back to the kernel
// afterwards (MADV_PAGEOUT, non-destructive), so a mapped model is not held twice.
Tensor pack_for_matmul(const Tensor& w, int tile_rows = 0);

// Row r's bytes in row-major form, whatever the layout (row_bytes of them).
void copy_row(const uint8_t* data, const WeightLayout& layout, int64_t r, uint8_t* out);
inline void copy_row(const Tensor& w, int64_t r, uint8_t* out) { copy_row(w.data, weight_layout(w), r, out); }

}  // namespace lowbit
