// Zeroed memory in 2 MiB pages where the kernel gives them (THP "madvise" mode). Code that streams a large buffer
// (generation reads every weight once per token; the bandwidth probe) wants them: with 4 KiB pages a TLB miss
// every 4 KiB stalls the stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace lowbit {

// n_bytes of zeroed memory, 2 MiB aligned when n_bytes is at least that (plain heap memory below).
std::shared_ptr<uint8_t> huge_page_buffer(size_t n_bytes);

}  // namespace lowbit
