#include "ops/packed_weight.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "ops/simd_matmul.h"
#include "quant/legacy_quants.h"
#include "util/error.h"
#include "util/huge_pages.h"

namespace lowbit {
namespace {

// fn(unit, offset, bytes) for the runs of a row's bytes that stay together in the layout: each unit's head,
// then its chunks.
template <typename Fn>
void for_each_piece(const WeightLayout& l, Fn&& fn) {
  for (size_t u = 0; u < l.row_bytes / l.unit; ++u) {
    if (l.head) fn(u, l.head_offset, l.head);
    for (size_t rest = 0; rest < l.unit - l.head; rest += l.chunk) fn(u, rest < l.head_offset ? rest : rest + l.head, l.chunk);
  }
}

// `count` pieces of n bytes, `stride` apart at src, into consecutive places at dst.
[[gnu::always_inline]] inline void copy_strided(uint8_t* dst, const uint8_t* src, size_t stride, size_t count, size_t n) {
  for (size_t i = 0; i < count; ++i) std::memcpy(dst + i * n, src + i * stride, n);
}
// The usual piece sizes as constants, so each memcpy becomes a move.
void copy_pieces(uint8_t* dst, const uint8_t* src, size_t stride, size_t count, size_t n) {
  switch (n) {
    case 2: return copy_strided(dst, src, stride, count, 2);
    case 3: return copy_strided(dst, src, stride, count, 3);
    case 4: return copy_strided(dst, src, stride, count, 4);
    default: return copy_strided(dst, src, stride, count, n);
  }
}

// Every unit of n_rows rows of row_bytes at `rows` through `code`.
void code_units(uint8_t* rows, int64_t n_rows, size_t row_bytes, size_t unit, UnitCode code) {
  for (int64_t r = 0; r < n_rows; ++r)
    for (size_t u = 0; u + unit <= row_bytes; u += unit) code(rows + static_cast<size_t>(r) * row_bytes + u);
}

// Bits [from, from + width) of each of the eight bytes of v, moved to bits [to, to + width) of the same byte.
template <int kFrom, int kTo, int kWidth>
uint64_t field(uint64_t v) {
  constexpr uint64_t kMask = 0x0101010101010101ull * ((1u << kWidth) - 1);
  return (v >> kFrom & kMask) << kTo;
}
// The N 32-byte runs at block + starts[k] rewritten by fn(words) -> words, eight bytes of each at a time:
// `lowbit bench` on a 522 MiB Q3_K_M file (load, pack, one token) takes 0.7-1.2 s, 0.8-1.5 s before the encoding,
// 1.6-2.0 s when the Q3_K encoder went level by level.
template <size_t N>
using Words = std::array<uint64_t, N>;
template <size_t N, typename Fn>
void rewrite_runs(uint8_t* block, const std::array<size_t, N>& starts, Fn&& fn) {
  for (size_t i = 0; i < 32; i += 8) {
    Words<N> w;
    for (size_t k = 0; k < N; ++k) std::memcpy(&w[k], block + starts[k] + i, 8);
    w = fn(w);
    for (size_t k = 0; k < N; ++k) std::memcpy(block + starts[k] + i, &w[k], 8);
  }
}

// Q5_K, sub-block pair P: v_P from qs run P and qh, and back.
template <int P>
uint64_t q5k_v(uint64_t qh, uint64_t qs) {
  return field<0, 0, 4>(qs) | field<2 * P, 4, 1>(qh) | field<6, 5, 2>(qs) | field<2 * P + 1, 7, 1>(qh);
}
template <int P>
uint64_t q5k_qs(uint64_t w, uint64_t v) {
  return field<0, 0, 4>(v) | field<2 * P, 4, 2>(w) | field<5, 6, 2>(v);
}
template <int P>
uint64_t q5k_qh(uint64_t v) {
  return field<4, 2 * P, 1>(v) | field<7, 2 * P + 1, 1>(v);
}
// Where each type's rewritten 32-byte runs start in its block.
constexpr std::array<size_t, 3> kQ3KRuns = {0, 32, 64};              // hmask, qs 0..31, qs 32..63
constexpr std::array<size_t, 5> kQ5KRuns = {16, 48, 80, 112, 144};  // qh, then qs for pairs 0..3
constexpr std::array<size_t, 3> q6k_runs(size_t half) {  // ql 64h.., ql 64h+32.., qh 32h..
  return {64 * half, 64 * half + 32, 128 + 32 * half};
}

// Q3_K's groups paired in place, and back (its own inverse): hmask, then the two runs of qs.
void pair_q3k_groups(uint8_t* block) {
  pair_group_fields(block, 1);
  for (size_t run : {32, 64}) pair_group_fields(block + run, 2);
}
// Q5_K's: qh, whose bits 2p and 2p+1 are sub-blocks 2p and 2p+1's fifth, and the qs run of each pair (its low
// and high nibbles).
void pair_q5k_groups(uint8_t* block) {
  pair_group_fields(block + kQ5KRuns[0], 1);
  for (int p = 0; p < 4; ++p) pair_group_fields(block + kQ5KRuns[1 + p], 4);
}
// Q6_K's: each half's two runs of ql and its run of qh.
void pair_q6k_groups(uint8_t* block) {
  for (size_t half = 0; half < 2; ++half) {
    uint8_t paired[64];
    pair_group_bytes(block + 64 * half, paired);
    std::memcpy(block + 64 * half, paired, sizeof(paired));
    pair_group_fields(block + 128 + 32 * half, 2);
  }
}
}  // namespace

// A lane word l of paired group s: the low (s = 0) or high halves of word l of each group, x86 being little-endian.
void pair_group_bytes(const uint8_t* in, uint8_t* out) {
  uint32_t g0[8], g1[8], s0[8], s1[8];
  std::memcpy(g0, in, 32);
  std::memcpy(g1, in + 32, 32);
  for (int l = 0; l < 8; ++l) {
    s0[l] = (g0[l] & 0xFFFFu) | g1[l] << 16;
    s1[l] = g0[l] >> 16 | (g1[l] & 0xFFFF0000u);
  }
  std::memcpy(out, s0, 32);
  std::memcpy(out + 32, s1, 32);
}

// Byte 4l + 2a + b takes group a's fields of byte 4l + b (into its fields for s = 0) and of byte 4l + 2 + b (s = 1).
void pair_group_fields(uint8_t* run, int width) {
  // group a = 0's fields in both bytes of a half word
  const uint32_t even = width == 1 ? 0x5555u : width == 2 ? 0x3333u : 0x0F0Fu;
  uint32_t words[8];
  std::memcpy(words, run, 32);
  for (uint32_t& w : words) {
    const uint32_t lo = w & 0xFFFFu, hi = w >> 16;  // bytes 4l + b (s = 0) and 4l + 2 + b (s = 1)
    const uint32_t group0 = (lo & even) | (hi & even) << width, group1 = (lo >> width & even) | (hi & even << width);
    w = group0 | group1 << 16;
  }
  std::memcpy(run, words, 32);
}

namespace {
void q3k_fields(uint8_t* block) {
  rewrite_runs<3>(block, kQ3KRuns, [](const Words<3>& in) {
    const auto [h, q0, q1] = in;
    return Words<3>{field<4, 0, 2>(q1) | field<0, 2, 2>(q0) | field<0, 4, 1>(h) | field<2, 5, 2>(q0) | field<1, 7, 1>(h),
                    field<6, 0, 2>(q1) | field<4, 2, 2>(q0) | field<2, 4, 1>(h) | field<6, 5, 2>(q0) | field<3, 7, 1>(h),
                    field<0, 0, 2>(q1) | field<4, 2, 1>(h) | field<6, 3, 1>(h) | field<7, 4, 1>(h) | field<2, 5, 2>(q1) |
                        field<5, 7, 1>(h)};
  });
}

void q3k_unfields(uint8_t* block) {
  rewrite_runs<3>(block, kQ3KRuns, [](const Words<3>& in) {
    const auto [x, y, z] = in;
    return Words<3>{field<4, 0, 1>(x) | field<7, 1, 1>(x) | field<4, 2, 1>(y) | field<7, 3, 1>(y) | field<2, 4, 1>(z) |
                        field<7, 5, 1>(z) | field<3, 6, 1>(z) | field<4, 7, 1>(z),  // hmask
                    field<2, 0, 2>(x) | field<5, 2, 2>(x) | field<2, 4, 2>(y) | field<5, 6, 2>(y),  // qs 0..31
                    field<0, 0, 2>(z) | field<5, 2, 2>(z) | field<0, 4, 2>(x) | field<0, 6, 2>(y)};  // qs 32..63
  });
}

void q6k_fields(uint8_t* block) {
  for (size_t half = 0; half < 2; ++half)
    rewrite_runs<3>(block, q6k_runs(half), [](const Words<3>& in) {
      const auto [a, b, c] = in;
      return Words<3>{field<0, 0, 4>(a) | field<0, 4, 2>(c) | field<4, 6, 2>(c),
                      field<0, 0, 4>(b) | field<2, 4, 2>(c) | field<6, 6, 2>(c), field<4, 0, 4>(a) | field<4, 4, 4>(b)};
    });
}

void q6k_unfields(uint8_t* block) {
  for (size_t half = 0; half < 2; ++half)
    rewrite_runs<3>(block, q6k_runs(half), [](const Words<3>& in) {
      const auto [x, y, z] = in;
      return Words<3>{field<0, 0, 4>(x) | field<0, 4, 4>(z), field<0, 0, 4>(y) | field<4, 4, 4>(z),
                      field<4, 0, 2>(x) | field<4, 2, 2>(y) | field<6, 4, 2>(x) | field<6, 6, 2>(y)};
    });
}

}  // namespace

void q5k_encode_fields(uint8_t* block) {
  pair_q5k_groups(block);
  rewrite_runs<5>(block, kQ5KRuns, [](const Words<5>& in) {
    const auto [h, q0, q1, q2, q3] = in;
    return Words<5>{field<4, 0, 2>(q0) | field<4, 2, 2>(q1) | field<4, 4, 2>(q2) | field<4, 6, 2>(q3),
                    q5k_v<0>(h, q0), q5k_v<1>(h, q1), q5k_v<2>(h, q2), q5k_v<3>(h, q3)};
  });
}

void q5k_decode_fields(uint8_t* block) {
  rewrite_runs<5>(block, kQ5KRuns, [](const Words<5>& in) {
    const auto [w, v0, v1, v2, v3] = in;
    return Words<5>{q5k_qh<0>(v0) | q5k_qh<1>(v1) | q5k_qh<2>(v2) | q5k_qh<3>(v3), q5k_qs<0>(w, v0), q5k_qs<1>(w, v1),
                    q5k_qs<2>(w, v2), q5k_qs<3>(w, v3)};
  });
  pair_q5k_groups(block);
}

namespace {
// Bit j of an 8-bit b into bit 0 of byte j, and back (the multiply gathers bit 0 of each byte into the top byte).
uint64_t spread_bits(uint64_t b) {
  return ((((b * 0x0101010101010101ull) & 0x8040201008040201ull) + 0x7F7F7F7F7F7F7F7Full) >> 7) & 0x0101010101010101ull;
}
uint64_t gather_bits(uint64_t bytes) { return ((bytes & 0x0101010101010101ull) * 0x0102040810204080ull) >> 56; }

// Q5_0's and Q5_1's qh (4 bytes at `rest`) and qs (16 after it) as w and v, and back: eight bytes of qs and v at a
// time, with qh's bits i.. and 16 + i.. for them.
void q5_encode(uint8_t* rest) {
  uint32_t qh;
  std::memcpy(&qh, rest, 4);
  uint8_t* qs = rest + 4;
  uint64_t w = 0;
  for (int half = 0; half < 2; ++half) {
    uint64_t q;
    std::memcpy(&q, qs + 8 * half, 8);
    const uint64_t v = field<0, 0, 4>(q) | spread_bits(qh >> 8 * half & 0xFF) << 4 | field<6, 5, 2>(q) |
                       spread_bits(qh >> (16 + 8 * half) & 0xFF) << 7;
    // L_16+i & 3 (bits 4-5 of qs byte i) into w byte i % 4 at bits 2 (i / 4): these are bytes 8 half.. of qs.
    const uint64_t pairs = field<4, 0, 2>(q);
    w |= ((pairs & 0xFFFFFFFFull) << (4 * half)) | ((pairs >> 32) << (4 * half + 2));
    std::memcpy(qs + 8 * half, &v, 8);
  }
  const auto w32 = static_cast<uint32_t>(w);
  std::memcpy(rest, &w32, 4);
}
void q5_decode(uint8_t* rest) {
  uint32_t w;
  std::memcpy(&w, rest, 4);
  uint8_t* qs = rest + 4;
  uint32_t qh = 0;
  for (int half = 0; half < 2; ++half) {
    uint64_t v;
    std::memcpy(&v, qs + 8 * half, 8);
    const uint64_t pairs = (w >> (4 * half) & 0x03030303u) | static_cast<uint64_t>(w >> (4 * half + 2) & 0x03030303u) << 32;
    const uint64_t q = field<0, 0, 4>(v) | pairs << 4 | field<5, 6, 2>(v);
    qh |= static_cast<uint32_t>(gather_bits(v >> 4) << 8 * half | gather_bits(v >> 7) << (16 + 8 * half));
    std::memcpy(qs + 8 * half, &q, 8);
  }
  std::memcpy(rest, &qh, 4);
}
}  // namespace

void q5_0_encode_fields(uint8_t* block) { q5_encode(block + offsetof(BlockQ5_0, qh)); }
void q5_0_decode_fields(uint8_t* block) { q5_decode(block + offsetof(BlockQ5_0, qh)); }
void q5_1_encode_fields(uint8_t* block) { q5_encode(block + offsetof(BlockQ5_1, qh)); }
void q5_1_decode_fields(uint8_t* block) { q5_decode(block + offsetof(BlockQ5_1, qh)); }

void q3k_encode_fields(uint8_t* block) {
  pair_q3k_groups(block);
  q3k_fields(block);
}
void q3k_decode_fields(uint8_t* block) {
  q3k_unfields(block);
  pair_q3k_groups(block);
}
void q6k_encode_fields(uint8_t* block) {
  pair_q6k_groups(block);
  q6k_fields(block);
}
void q6k_decode_fields(uint8_t* block) {
  q6k_unfields(block);
  pair_q6k_groups(block);
}

PackFormat pack_format(DType type) {
  switch (type) {
    case DType::Q4_0:
    case DType::IQ4_NL: return kQ4_0Pack;  // the same block layout: fp16 d, then 16 bytes of nibbles
    case DType::Q8_0: return kQ8_0Pack;
    case DType::Q4_1: return kQ4_1Pack;
    case DType::Q5_0: return kQ5_0Pack;
    case DType::Q5_1: return kQ5_1Pack;
    case DType::I4G: return kI4GPack;
    case DType::Q2_K: return kQ2KPack;
    case DType::Q3_K: return kQ3KPack;
    case DType::Q4_K: return kQ4KPack;
    case DType::Q5_K: return kQ5KPack;
    case DType::Q6_K: return kQ6KPack;
    case DType::IQ4_XS: return kIQ4XSPack;
    default: break;
  }
  const TypeTraits& t = type_traits(type);
  if (type == DType::F16) return kF16Pack;
  if (type == DType::BF16) return kBf16Pack;
  const size_t head = t.block_size == 32 ? 2 : 0;  // every 32-value block starts with its fp16 scale
  return {t.block_bytes, 0, head, t.block_bytes - head};
}

WeightLayout weight_layout(const Tensor& w) {
  const PackFormat format = pack_format(w.type());
  return {format, row_bytes(w.type(), w.ne()[0]),
          w.interleaved_rows ? (w.info.n_rows() / w.interleaved_rows) * w.interleaved_rows : 0,
          std::max(w.interleaved_rows, 1), w.interleaved_rows > 0 && format.encode != nullptr};
}

bool packable(const Tensor& w) {
  if (w.interleaved_rows || !simd_matmul_supports(w.type()) || w.info.ne[2] != 1 || w.info.ne[3] != 1) return false;
  if (!row_fits(w.type(), w.ne()[0]) || w.info.n_rows() < kMaxPackRows) return false;
  return row_bytes(w.type(), w.ne()[0]) % pack_format(w.type()).unit == 0;
}

void copy_row(const uint8_t* data, const WeightLayout& l, int64_t r, uint8_t* out) {
  if (r >= l.packed_rows) {  // row-major, whole (its length need not be a multiple of the unit)
    std::memcpy(out, data + static_cast<size_t>(r) * l.row_bytes, l.row_bytes);
  } else {
    for_each_piece(l, [&](size_t u, size_t offset, size_t n) {
      std::memcpy(out + u * l.unit + offset, data + l.byte_offset(r, static_cast<int64_t>(u), offset), n);
    });
  }
  if (l.units_encoded) code_units(out, 1, l.row_bytes, l.unit, l.decode);
}

void pack_tile(const uint8_t* data, const WeightLayout& layout, int64_t r, int rows, int tile_rows, uint8_t* out) {
  WeightLayout tile = layout;  // the tile's own layout: one packed tile from row 0
  tile.tile_rows = tile.packed_rows = tile_rows;
  std::vector<uint8_t> row(layout.row_bytes);
  for (int i = 0; i < tile_rows; ++i) {
    copy_row(data, layout, r + std::min(i, rows - 1), row.data());
    if (layout.encode) code_units(row.data(), 1, layout.row_bytes, layout.unit, layout.encode);  // as packed units are
    for_each_piece(tile, [&](size_t u, size_t offset, size_t n) {
      std::memcpy(out + tile.byte_offset(i, static_cast<int64_t>(u), offset), row.data() + u * tile.unit + offset, n);
    });
  }
}

Tensor pack_for_matmul(const Tensor& w, int tile_rows) {
  if (!packable(w)) return w;
  if (tile_rows <= 0) tile_rows = simd_pack_rows(w.type());
  if (tile_rows == 1) return w;  // a tile of one row is the row-major row
  check(tile_rows <= kMaxPackRows && (tile_rows & (tile_rows - 1)) == 0, w.name(), "cannot pack in tiles of {} rows", tile_rows);
  Tensor packed = w;
  packed.interleaved_rows = tile_rows;
  const WeightLayout l = weight_layout(packed);
  const size_t n_bytes = w.info.n_bytes();
  std::shared_ptr<uint8_t> storage = huge_page_buffer(n_bytes);
  uint8_t* const bytes = storage.get();
  // Tile by tile, each piece of each unit for all the tile's rows at once: in the layout they lie n bytes apart.
  // (Piece by piece through byte_offset, F16's 2-byte chunks took 2 s of a 2 GiB model's load.)
  const auto tile = static_cast<size_t>(tile_rows);
  std::vector<uint8_t> encoded(l.units_encoded ? tile * l.row_bytes : 0);  // a tile's rows, encoded first
  for (int64_t r0 = 0; r0 < l.packed_rows; r0 += tile_rows) {
    const uint8_t* src = w.data + static_cast<size_t>(r0) * l.row_bytes;
    if (l.units_encoded) {
      std::memcpy(encoded.data(), src, encoded.size());
      code_units(encoded.data(), tile_rows, l.row_bytes, l.unit, l.encode);
      src = encoded.data();
    }
    for_each_piece(l, [&](size_t u, size_t offset, size_t n) {
      copy_pieces(bytes + l.byte_offset(r0, static_cast<int64_t>(u), offset), src + u * l.unit + offset, l.row_bytes, tile, n);
    });
  }
  const size_t packed_bytes = static_cast<size_t>(l.packed_rows) * l.row_bytes;  // the rest keep their place
  std::memcpy(bytes + packed_bytes, w.data + packed_bytes, n_bytes - packed_bytes);
  if (l.units_encoded) code_units(bytes + packed_bytes, w.info.n_rows() - l.packed_rows, l.row_bytes, l.unit, l.encode);
  // Give the source's whole pages back (a mapped file's clean pages are dropped, memory pages may be swapped).
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<uintptr_t>(w.data) + page - 1) & ~(page - 1);
  const auto end = (reinterpret_cast<uintptr_t>(w.data) + w.info.n_bytes()) & ~(page - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_PAGEOUT);
  Tensor t;
  t.info = w.info;
  t.data = bytes;
  t.owner = std::move(storage);
  t.interleaved_rows = tile_rows;
  t.input_order = w.input_order;
  return t;
}

}  // namespace lowbit
