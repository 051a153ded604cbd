// The engine's layout for matmul weights: rows in tiles whose blocks are interleaved (block 0 of the tile's rows,
// then block 1 of each, ...), so a kernel tile reads its weights as one sequential stream. On the machines here
// one stream reads at ~28 GB/s while eight rows read side by side, each from its own place, reach ~11 GB/s: for
// generation, which reads every weight once per token, the layout decides the speed. A tile has as many rows as
// the running CPU's generation kernel for the type takes at once (simd_pack_rows: 16 with AVX-512, 8 with AVX2 and 4
// with SSE4, one row per vector lane; 1, no tiles, on the passes that run the reference; a kernel tile that covered
// half a packed tile would read it with gaps, measured 3x slower). The arithmetic is the same, so are the results.
// Rows after the last full tile keep their row-major place.
//
// Within a tile's slot for block b, each row's head (the fields a kernel reads before the values: the fp16 scale of
// the 32-value types, with Q4_1's and Q5_1's m or I4G's zero; Q2_K's, Q4_K's and Q5_K's d and dmin; Q3_K's and
// Q6_K's d, which end their blocks; IQ4_XS's d and scales_h) comes first, the tile's rows side by side, so a
// tile's heads are one or two loads; then the rest of the rows' blocks in chunks of 4 bytes (16 for F16, 32 for
// BF16): chunk 0 of every row, then chunk 1 of every row, ... The kernels put one row in each lane, so a chunk of
// every row is one load (F16/BF16: a row's unit in eight lanes, one or two rows a load). Chunks are stored in the
// order the kernel reads them, so it reads its slot strictly forward: the hardware prefetcher follows one forward
// stream, not a kernel that jumps back (Q6_K's 32-byte chunks in block order, read ql, ql, qh, ...: 0.75x).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>

#include "core/tensor.h"

namespace lowbit {

inline constexpr int kMaxPackRows = 16;

// How a type's rows are cut for the layout: units of `unit` bytes (one block, or eight values of F16, sixteen of
// BF16), each a head [head_offset, head_offset + head) and the rest (the unit's other bytes, in order) in chunks of
// `chunk` bytes, which divide the rest and never straddle the head; rest chunk c is stored at position[c] in the
// slot.
inline constexpr int kMaxChunks = 52;
using ChunkPositions = std::array<uint8_t, kMaxChunks>;
// The first chunks' positions as given, the others in order.
constexpr ChunkPositions chunk_positions(std::initializer_list<uint8_t> first = {}) {
  ChunkPositions p{};
  for (int c = 0; c < kMaxChunks; ++c) p[c] = static_cast<uint8_t>(c);
  int c = 0;
  for (uint8_t position : first) p[c++] = position;
  return p;
}
inline constexpr ChunkPositions kChunksInOrder = chunk_positions();
// A unit's bytes rewritten in place for a cheaper decode, and back (packed tensors hold every unit encoded).
using UnitCode = void (*)(uint8_t* unit);
struct PackFormat {
  size_t unit, head_offset, head, chunk;
  ChunkPositions position = kChunksInOrder;
  UnitCode encode = nullptr, decode = nullptr;
  // The unit offset of the rest's first byte.
  constexpr size_t rest_offset() const { return head_offset == 0 ? head : 0; }
};
PackFormat pack_format(DType type);

// The chunked forms, here once for pack_format and for their kernels' constant addressing (ops/simd_kquants-inl.h
// and simd_legacy-inl.h, which check each against its block's fields).
inline constexpr PackFormat kQ4_0Pack = {18, 0, 2, 4};  // d | qs, four bytes (values 4c..4c+3 and 16+4c..) a chunk
inline constexpr PackFormat kQ8_0Pack = {34, 0, 2, 4};  // d | qs, four bytes (values 4l..4l+3) a chunk
inline constexpr PackFormat kF16Pack = {16, 0, 0, 16};   // eight values a unit, all eight a chunk
inline constexpr PackFormat kBf16Pack = {32, 0, 0, 32};  // sixteen values a unit (vdpbf16ps's eight pairs), one chunk
inline constexpr PackFormat kQ4_1Pack = {20, 0, 4, 4};  // d, m | qs as kQ4_0Pack
// Q5_0's and Q5_1's 5-bit levels L_i (value i: nibble i % 16 of qs, low for i < 16, under bit i of qh) rewritten
// as Q5_K's (below), so that levels 0..15 are one mask and 16..31 two to four instructions (ops/simd_legacy-inl.h
// NibbleLevels), against four or five for qh's bit on the nibble: qh and qs become w (4 bytes) and v (16) with
//   v[i] = L_i | (L_16+i >> 2) << 5,  w[k] = (L_16+k & 3) | (L_20+k & 3) << 2 | (L_24+k & 3) << 4 | (L_28+k & 3) << 6.
// The heads (d; Q5_1's d and m) stay as they are.
void q5_0_encode_fields(uint8_t* block);
void q5_0_decode_fields(uint8_t* block);
void q5_1_encode_fields(uint8_t* block);
void q5_1_decode_fields(uint8_t* block);
// d | w (one chunk), then v as kQ4_0Pack's qs: chunk c holds v 4c.., whose levels are values 4c.. and 16+4c..
inline constexpr PackFormat kQ5_0Pack = {22, 0, 2, 4, kChunksInOrder, q5_0_encode_fields, q5_0_decode_fields};
inline constexpr PackFormat kQ5_1Pack = {24, 0, 4, 4, kChunksInOrder, q5_1_encode_fields, q5_1_decode_fields};  // d, m | w, v
inline constexpr PackFormat kI4GPack = {19, 0, 3, 4};   // d, zero | qs as kQ4_0Pack
// d, dmin | the twelve bytes of scales and mins as three words, then qs: four bytes a chunk.
inline constexpr PackFormat kQ4KPack = {144, 0, 4, 4};
// scales, qs | d, dmin: four bytes a chunk (the scale bytes as four words, then qs).
inline constexpr PackFormat kQ2KPack = {84, 80, 4, 4};
// The Q3_K and Q6_K tiles add two 32-value groups' products before one multiply by the pair's scales
// (ops/simd_kquants-inl.h SubBlock16Lanes), so a lane's four bytes at position l hold two values of each group of
// a pair: "group" 2w + s of a paired super-block holds at 4l + 2a + b the value 4l + 2s + b of group 2w + a. s and a
// trade places, so pairing twice gives back the original. Groups of whole bytes, the 64 of one pair (Q6_K's ql
// runs, whose bytes hold a group's low nibbles and another's; Q8_K's activations):
void pair_group_bytes(const uint8_t* in, uint8_t* out);
// The same in a 32-byte run whose bytes hold fields of `width` bits side by side, pair p's group a at field 2p + a
// (4: Q5_K's qs; 2: Q6_K's qh, Q3_K's qs; 1: Q5_K's qh, Q3_K's hmask).
void pair_group_fields(uint8_t* run, int width);

// Q3_K's 3-bit levels L_g[i] (value i of 32-value group g: bits 2g/2g+1 of qs[32(g/4) + i] under bit g of hmask[i])
// rewritten so that each level is one GFNI affine map or mask of one byte, two for L6 and L7 (ops/simd_kquants-inl.h
// Q3KLevels): the block's first 96 bytes become x[32], y[32], z[32] with
//   x[i] = L6 & 3 | L0 << 2 | L1 << 5,  y[i] = L7 & 3 | L2 << 2 | L3 << 5,  z[i] = L4 | (L6 >> 2) << 3 | (L7 >> 2) << 4 | L5 << 5,
// which shift and mask in two to four instructions on targets without GFNI, after the groups are paired
// (pair_group_fields): L_g is then paired group g's. The scales and d stay as they are.
void q3k_encode_fields(uint8_t* block);
void q3k_decode_fields(uint8_t* block);
// hmask (x), qs (y, z), scales | d: four bytes a chunk, stored in the order the kernel reads them: the scales' three
// words, then for each lane position l (values 4l..4l+3 of every 32-value group) bytes 4l.. of x, y and z.
constexpr ChunkPositions q3k_chunk_positions() {
  ChunkPositions p = chunk_positions();
  for (int w = 0; w < 3; ++w) p[24 + w] = static_cast<uint8_t>(w);  // scale bytes 96 + 4w..
  for (int l = 0; l < 8; ++l) {
    p[l] = static_cast<uint8_t>(3 + 3 * l);  // hmask
    for (int h = 0; h < 2; ++h) p[8 + 8 * h + l] = static_cast<uint8_t>(3 + 3 * l + 1 + h);
  }
  return p;
}
inline constexpr PackFormat kQ3KPack = {110, 108, 2, 4, q3k_chunk_positions(), q3k_encode_fields, q3k_decode_fields};
// Q5_K's 5-bit levels L_j[i] (sub-block j, value i: the low (j even) or high nibble of qs[32(j/2) + i] under bit j of
// qh[i]) rewritten so that the even sub-blocks' levels are one mask and the odd ones' two or three instructions
// (ops/simd_kquants-inl.h Q5KLanes), against four or five for qh and qs: qh[32] and qs[128] become w[32] and
// v_0..v_3[32] with
//   v_p[i] = L_2p | (L_2p+1 >> 2) << 5,  w[i] = (L_1 & 3) | (L_3 & 3) << 2 | (L_5 & 3) << 4 | (L_7 & 3) << 6,
// after the sub-blocks are paired as Q6_K's groups (pair_group_fields on qs and qh): L_j is then paired sub-block
// j's, and one multiply-add meets a position's two products with the pair's two scales. d, dmin and the scales stay
// as they are.
void q5k_encode_fields(uint8_t* block);
void q5k_decode_fields(uint8_t* block);
// d, dmin | scales, qh (w), qs (v): four bytes a chunk, stored in the order the kernel reads them: the scales' three
// words, then for each lane position l (values 4l..4l+3 of every 32-value sub-block) w bytes 4l.. and v_p bytes
// 4l.. for p = 0..3.
constexpr ChunkPositions q5k_chunk_positions() {
  ChunkPositions p = chunk_positions();
  for (int l = 0; l < 8; ++l) {
    p[3 + l] = static_cast<uint8_t>(3 + 5 * l);  // qh
    for (int q = 0; q < 4; ++q) p[11 + 8 * q + l] = static_cast<uint8_t>(3 + 5 * l + 1 + q);
  }
  return p;
}
inline constexpr PackFormat kQ5KPack = {176, 0, 4, 4, q5k_chunk_positions(), q5k_encode_fields, q5k_decode_fields};
// Q6_K's 6-bit levels L_k (group 4h + k, value i: a nibble of a = ql[64h + i] (k = 0, 2) or b = ql[64h + 32 + i]
// (k = 1, 3) under bits 2k, 2k+1 of c = qh[32h + i]) rewritten in place of a, b, c so that L0 and L1 are one mask,
// L2 two instructions and L3 three (ops/simd_kquants-inl.h Q6KLevels):
//   x = L0 | (L2 >> 4) << 6,  y = L1 | (L3 >> 4) << 6,  z = (L2 & 15) | (L3 & 15) << 4,
// after the groups are paired (pair_group_bytes, pair_group_fields): L_k is then paired group 4h + k's.
void q6k_encode_fields(uint8_t* block);
void q6k_decode_fields(uint8_t* block);
// ql (x, y), qh (z), scales | d: four bytes a chunk, stored in the order the kernel reads them: the scales' four
// words, then for each lane position l (values 4l..4l+3 of every 32-value group) and half h the three chunks that
// hold its four groups: bytes 4l.. of x (ql 64h..), y (ql 64h+32..) and z (qh 32h..).
constexpr ChunkPositions q6k_chunk_positions() {
  ChunkPositions p = chunk_positions();
  for (int w = 0; w < 4; ++w) p[48 + w] = static_cast<uint8_t>(w);  // scale bytes 192 + 4w..
  for (int l = 0; l < 8; ++l)
    for (int h = 0; h < 2; ++h) {
      const int at = 4 + 3 * (2 * l + h);
      p[16 * h + l] = static_cast<uint8_t>(at);
      p[16 * h + 8 + l] = static_cast<uint8_t>(at + 1);
      p[32 + 8 * h + l] = static_cast<uint8_t>(at + 2);
    }
  return p;
}
inline constexpr PackFormat kQ6KPack = {210, 208, 2, 4, q6k_chunk_positions(), q6k_encode_fields, q6k_decode_fields};
// d, scales_h | scales_l (one chunk), then qs: four bytes a chunk, stored in the order the kernel reads them:
// scales_l, then for c = 0..3 the eight sub-blocks' qs bytes 16j+4c.. (positions c and c+4 of sub-block j).
constexpr ChunkPositions iq4xs_chunk_positions() {
  ChunkPositions p = chunk_positions();
  for (int j = 0; j < 8; ++j)
    for (int c = 0; c < 4; ++c) p[1 + 4 * j + c] = static_cast<uint8_t>(1 + 8 * c + j);
  return p;
}
inline constexpr PackFormat kIQ4XSPack = {136, 0, 4, 4, iq4xs_chunk_positions()};
constexpr bool positions_fit(const PackFormat& f) { return (f.unit - f.head) / f.chunk <= kMaxChunks; }
static_assert(positions_fit(kF16Pack) && positions_fit(kBf16Pack) && positions_fit(kQ4_0Pack) && positions_fit(kI4GPack) && positions_fit(kQ8_0Pack) && positions_fit(kQ4_1Pack) && positions_fit(kQ5_0Pack) &&
              positions_fit(kQ5_1Pack) && positions_fit(kQ4KPack) && positions_fit(kQ2KPack) &&
              positions_fit(kQ3KPack) && positions_fit(kQ5KPack) && positions_fit(kQ6KPack) && positions_fit(kIQ4XSPack));

// Where a weight's bytes are: rows of row_bytes in units, the first packed_rows in interleaved tiles of tile_rows
// rows.
struct WeightLayout : PackFormat {
  size_t row_bytes;
  int64_t packed_rows, tile_rows;
  bool units_encoded = false;  // every unit, packed or not, went through encode (a packed tensor of such a type)
  // Byte `offset` of unit u of row r.
  size_t byte_offset(int64_t r, int64_t u, size_t offset) const {
    if (r >= packed_rows) return static_cast<size_t>(r) * row_bytes + static_cast<size_t>(u) * unit + offset;
    const auto tile = static_cast<size_t>(tile_rows), i = static_cast<size_t>(r % tile_rows);
    const size_t slot = slot_offset(r, u);
    if (offset >= head_offset && offset < head_offset + head) return slot + i * head + (offset - head_offset);
    const size_t rest = offset < head_offset ? offset : offset - head;
    return slot + tile * head + position[rest / chunk] * tile * chunk + i * chunk + rest % chunk;
  }
  // Where packed row r's chunk in the first stored position of unit u is (whichever rest chunk is stored there).
  size_t first_position_offset(int64_t r, int64_t u) const {
    const auto tile = static_cast<size_t>(tile_rows), i = static_cast<size_t>(r % tile_rows);
    return slot_offset(r, u) + tile * head + i * chunk;
  }

 private:
  // The start of the slot of unit u in packed row r's tile.
  size_t slot_offset(int64_t r, int64_t u) const {
    const auto tile = static_cast<size_t>(tile_rows);
    return static_cast<size_t>(r / tile_rows) * tile * row_bytes + static_cast<size_t>(u) * tile * unit;
  }
};
WeightLayout weight_layout(const Tensor& w);

// Whether `w` can take the layout: a 2-D weight of a type with a SIMD kernel whose rows split into whole units.
bool packable(const Tensor& w);

// An owned copy of `w` in the interleaved layout, tiles of `tile_rows` (default: simd_pack_rows(type); a power of two
// up to kMaxPackRows), or `w` itself when it is not packable or tile_rows is 1 (a pass without tiles). The source's
// pages are handed back to the kernel afterwards (MADV_PAGEOUT, non-destructive), so a mapped model is not held
// twice.
Tensor pack_for_matmul(const Tensor& w, int tile_rows = 0);

// Rows [r, r + rows) of `data` in `layout` (any; rows <= tile_rows) as the bytes of one tile of tile_rows rows
// that pack_for_matmul would write, rows past the last repeating it: for kernels that read whole tiles only.
void pack_tile(const uint8_t* data, const WeightLayout& layout, int64_t r, int rows, int tile_rows, uint8_t* out);

// Row r's bytes in row-major form, whatever the layout (row_bytes of them).
void copy_row(const uint8_t* data, const WeightLayout& layout, int64_t r, uint8_t* out);
inline void copy_row(const Tensor& w, int64_t r, uint8_t* out) { copy_row(w.data, weight_layout(w), r, out); }

}  // namespace lowbit
