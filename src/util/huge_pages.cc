#include "util/huge_pages.h"

#include <sys/mman.h>

#include <new>

namespace lowbit {

std::shared_ptr<uint8_t> huge_page_buffer(size_t n_bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  if (n_bytes < kHuge) return std::shared_ptr<uint8_t>(new uint8_t[n_bytes](), std::default_delete<uint8_t[]>());
  const size_t mapped = (n_bytes + kHuge - 1) / kHuge * kHuge + kHuge;  // room to align the start
  void* base = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) throw std::bad_alloc();
  const auto start = (reinterpret_cast<uintptr_t>(base) + kHuge - 1) & ~(kHuge - 1);
  madvise(reinterpret_cast<void*>(start), mapped - (start - reinterpret_cast<uintptr_t>(base)), MADV_HUGEPAGE);
  return std::shared_ptr<uint8_t>(reinterpret_cast<uint8_t*>(start), [base, mapped](uint8_t*) { munmap(base, mapped); });
}

}  // namespace lowbit
