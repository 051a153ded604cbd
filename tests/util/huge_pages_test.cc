// huge_page_buffer: zeroed and writable to its last byte, 2 MiB aligned from 2 MiB up, and advised for huge pages
// (the kernel marks such a mapping "hg" in /proc/self/smaps), which generation's weight stream relies on.
#include "util/huge_pages.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace lowbit {
namespace {

constexpr size_t kHuge = size_t{2} << 20;

bool all_zero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

// The VmFlags line of the /proc/self/smaps entry whose range holds `at`, or "" if none does.
std::string vm_flags_of(const void* at) {
  std::ifstream smaps("/proc/self/smaps");
  const auto a = reinterpret_cast<uintptr_t>(at);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> lo >> dash >> hi && dash == '-') {  // a mapping's first line: "lo-hi perms ..."
      inside = lo <= a && a < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

TEST(HugePages, SmallBuffersAreZeroedHeapMemory) {
  for (size_t n : {size_t{1}, size_t{4096}, kHuge - 1}) {
    const auto buf = huge_page_buffer(n);
    ASSERT_NE(buf, nullptr);
    EXPECT_TRUE(all_zero(buf.get(), n)) << n << " bytes";
    buf.get()[0] = 1, buf.get()[n - 1] = 2;
  }
}

TEST(HugePages, LargeBuffersAreAlignedZeroedWritableAndAdvised) {
  for (size_t n : {kHuge, 5 * kHuge + 123}) {
    const auto buf = huge_page_buffer(n);
    uint8_t* p = buf.get();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHuge, 0u) << n << " bytes";
    EXPECT_TRUE(all_zero(p, n)) << n << " bytes";
    std::fill(p, p + n, uint8_t{0xA5});  // every byte is ours to write
    EXPECT_EQ(p[n - 1], 0xA5);
    const std::string flags = vm_flags_of(p + n - 1);
    ASSERT_FALSE(flags.empty()) << "no mapping in /proc/self/smaps holds the buffer";
    EXPECT_NE((flags + " ").find(" hg "), std::string::npos) << flags;
  }
}

}  // namespace
}  // namespace lowbit
