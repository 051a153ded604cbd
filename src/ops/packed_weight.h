// The engine's layout for matmul weights: rows in tiles of kPackRows whose blocks are interleaved (block 0 of the
// tile's eight rows, then block 1 of each, ...), so a kernel tile reads its weights as one sequential stream. On
// the machines here one stream reads at ~28 GB/s while eight rows read side by side, each from its own place,
// reach ~11 GB/s: for generation, which reads every weight once per token, the layout decides the speed. The
// arithmetic is the same, so are the results. Rows after the last full tile keep their row-major place.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace lowbit {

inline constexpr int kPackRows = 8;

// Bytes that stay together in a row: one block, or eight values (16 bytes) of F16/BF16.
size_t pack_unit_bytes(DType type);

// Whether `w` can take the layout: a 2-D weight of a type with a SIMD kernel whose rows split into whole units.
bool packable(const Tensor& w);

// An owned copy of `w` in the interleaved layout (or `w` itself when it is not packable). The source's pages are
// handed back to the kernel afterwards (MADV_PAGEOUT, non-destructive), so a mapped model is not held twice.
Tensor pack_for_matmul(const Tensor& w);

// Rows in interleaved tiles: all but those after the last full tile (none for a row-major tensor).
inline int64_t packed_rows(const Tensor& w) {
  return w.interleaved_rows ? (w.info.n_rows() / kPackRows) * kPackRows : 0;
}

// Where unit u of row r starts, for rows of `row_bytes` in units of `unit`, the first `packed` rows interleaved.
inline size_t unit_offset(int64_t r, int64_t u, size_t row_bytes, size_t unit, int64_t packed) {
  if (r >= packed) return static_cast<size_t>(r) * row_bytes + static_cast<size_t>(u) * unit;
  return static_cast<size_t>(r / kPackRows) * kPackRows * row_bytes + static_cast<size_t>(u) * kPackRows * unit +
         static_cast<size_t>(r % kPackRows) * unit;
}

// Row r's bytes in row-major form, whatever the layout (row_bytes(type, ne[0]) of them).
void copy_row(const Tensor& w, int64_t r, uint8_t* out);

}  // namespace lowbit
