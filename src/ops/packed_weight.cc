#include "ops/packed_weight.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "ops/simd_matmul.h"

namespace lowbit {

size_t pack_unit_bytes(DType type) {
  const TypeTraits& t = type_traits(type);
  return t.block_size > 1 ? t.block_bytes : 16;
}

bool packable(const Tensor& w) {
  if (w.interleaved_rows || !simd_matmul_supports(w.type()) || w.info.ne[2] != 1 || w.info.ne[3] != 1) return false;
  if (!row_fits(w.type(), w.ne()[0]) || w.info.n_rows() < kPackRows) return false;
  return row_bytes(w.type(), w.ne()[0]) % pack_unit_bytes(w.type()) == 0;
}

void copy_row(const Tensor& w, int64_t r, uint8_t* out) {
  const size_t rb = row_bytes(w.type(), w.ne()[0]);
  if (!w.interleaved_rows) {
    std::memcpy(out, w.data + static_cast<size_t>(r) * rb, rb);
    return;
  }
  const size_t unit = pack_unit_bytes(w.type());
  const int64_t packed = packed_rows(w);
  for (size_t u = 0; u < rb / unit; ++u)
    std::memcpy(out + u * unit, w.data + unit_offset(r, static_cast<int64_t>(u), rb, unit, packed), unit);
}

Tensor pack_for_matmul(const Tensor& w) {
  if (!packable(w)) return w;
  const size_t rb = row_bytes(w.type(), w.ne()[0]), unit = pack_unit_bytes(w.type());
  const int64_t n_rows = w.info.n_rows(), packed = (n_rows / kPackRows) * kPackRows;
  std::vector<uint8_t> bytes(w.info.n_bytes());
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* src = w.data + static_cast<size_t>(r) * rb;
    for (size_t u = 0; u < rb / unit; ++u)
      std::memcpy(bytes.data() + unit_offset(r, static_cast<int64_t>(u), rb, unit, packed), src + u * unit, unit);
  }
  // Give the source's whole pages back (a mapped file's clean pages are dropped, memory pages may be swapped).
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<uintptr_t>(w.data) + page - 1) & ~(page - 1);
  const auto end = (reinterpret_cast<uintptr_t>(w.data) + w.info.n_bytes()) & ~(page - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_PAGEOUT);
  Tensor t = make_owned_tensor(w.info, std::move(bytes));
  t.interleaved_rows = kPackRows;
  t.input_order = w.input_order;
  return t;
}

}  // namespace lowbit
