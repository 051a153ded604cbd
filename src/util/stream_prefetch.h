// Software help for one long forward read (generation's weights, the bandwidth probe). The hardware prefetchers of
// the machines here follow a forward stream within a 4 KiB page but do not carry it into the next one, even in
// 2 MiB pages: every page starts with demand misses. One prefetch of each page's first line, ahead of the stream
// (kStreamPrefetchAhead), starts them early. Measured on one Zen 5 core, 1 GiB read in 2 MiB pages, paired with a
// plain run: a 512-bit XOR loop 1.10-1.20x, a loop with two vpdpbusd per 64 bytes 0.87 -> 1.10-1.18x of the plain
// XOR loop (8 to 64 KiB ahead all alike); a prefetch of every line instead 0.83x (but see prefetch_lines_ahead).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowbit {

inline constexpr size_t kStreamPage = 4096;
// How far ahead: the next page. Streaming 800 MiB of 4096x4096 weights, each run paired with a probe run, 4 and
// 8 KiB ahead read alike (Q4_0 0.73-0.90 of the probe, Q6_K 0.64-0.71), 16 KiB and more less (Q4_0 0.69-0.75,
// Q6_K 0.57-0.60), 2 KiB and less slowed Q4_0 (0.55-0.82). Again on Zen 5 (2026-12-05), page starts 16-32 KiB
// ahead against 4, alternated token by token: whole r1b-Q4_0 0.93x, Q4_K_M 0.99x. The tiles that prefetch every line
// run further ahead on AVX-512 (kSlotStepAhead, ops/simd_vectors-inl.h: Q6_K 1.11-1.19x at 16 KiB).
inline constexpr size_t kStreamPrefetchAhead = 4 * 1024;

// Prefetches the first line of every 4 KiB page that starts in [begin, end). Addresses need not be mapped:
// prefetches do not fault.
inline void prefetch_page_starts(uintptr_t begin, uintptr_t end) {
  for (uintptr_t a = (begin + kStreamPage - 1) & ~uintptr_t{kStreamPage - 1}; a < end; a += kStreamPage)
    __builtin_prefetch(reinterpret_cast<const void*>(a), 0, 3);
}
// Before a stream starts at `at`: its first kStreamPrefetchAhead bytes.
inline void prefetch_stream_start(const void* at) {
  const auto a = reinterpret_cast<uintptr_t>(at);
  prefetch_page_starts(a, a + kStreamPrefetchAhead);
}
// As the stream is about to read [at, at + n_bytes): the same span kStreamPrefetchAhead further on. Kernels call it
// block by block rather than once per tile: Q4_0 weights of 4096x4096 / 5632x2048 read 0.63-0.65 / 0.51-0.55 of
// the probe with each tile's pages opened at its start (9 and 13 pages at once), 0.79-0.81 / 0.75-0.77 this way.
inline void prefetch_stream_ahead(const void* at, size_t n_bytes) {
  const auto a = reinterpret_cast<uintptr_t>(at) + kStreamPrefetchAhead;
  prefetch_page_starts(a, a + n_bytes);
}
// The same span, every line of it: for kernels whose stream the hardware prefetchers do not follow even within a
// page. Q4_K in row lanes (ops/simd_kquants-inl.h, 2304-byte slots read in one loop step) streamed 4096x4096
// weights at 18-20 GB/s with page starts only, 28-32 GB/s with every line 4 KiB ahead (0.80 of the probe; 8 KiB
// 0.73-0.76, one slot ahead 0.68-0.71, every other line 0.58); the probe itself and the other kernels read 25-45 %
// less with every line prefetched, Q2_K's row lanes (1344-byte slots) 22.0-23.5 against 25.1-25.9 GB/s. Q6_K's
// row lanes (3360-byte slots) 0.41-0.44 of the probe with page starts, 0.79-0.80 with every line. (What the
// prefetchers would not follow there was the tile's shape: Q4_K's one-token AVX-512 tile, rolled over its sub-block
// pairs and reading its slot's head after the chunks, reads fastest with page starts since; see Q4KLanes.)
// Unrolled, for spans of a size known when compiling, read one after the other (a tile's slots): one prefetch per
// 64 bytes from the span's start. A span's last line may go without, when the start is not on a line, but it is
// the next span's first. A loop over the lines cost a compare and a taken branch per line: 12 % of a Q4_K tile
// read from L2 in a harness on the AVX2 machine (15.2 -> 13.4 GB/s).
// kLocality: __builtin_prefetch's, 3 into L1 (prefetcht0), 2 into L2 (prefetcht1).
template <size_t kBytes, size_t kAhead = kStreamPrefetchAhead, int kLocality = 3>
inline void prefetch_lines_ahead(const void* at) {
  const char* a = static_cast<const char*>(at) + kAhead;
#pragma GCC unroll 64
  for (size_t k = 0; k < kBytes; k += 64) __builtin_prefetch(a + k, 0, kLocality);
}

// Intel's near stream (Sapphire Rapids-class guest, 2026-12-06): every line into L1 kNearL1Ahead on and into L2
// kNearL2Ahead on. Its hardware prefetchers fall behind a stream read between multiplies, and an L1 prefetch that
// misses L2 holds one of the core's 16 fill buffers for the whole trip to memory, so L1's lines come from not far
// ahead, where L2's have already arrived. A 1 GiB XOR loop on one core, 512-bit loads, 2 MiB pages: every line
// into L1 at 2 KiB and L2 at 3-4 KiB 18.9-19.7 GB/s; L1 alone 14.1-14.5, L2 alone at 4 KiB 16.7, page starts 16.5,
// nothing 15.7-16.0; L2 at 8 or 16 KiB 15.7-16.4; L1 at 1 KiB (L2 at 4) 18.4-18.8, at 512 B 16.8-17.5. The
// bandwidth probe reads this way too (eval/roofline.cc), and the one-token tiles' NearAhead (ops/simd_vectors-inl.h).
// Zen 5 reads this way slowest (22.8 GB/s against page starts' 44.9, 2026-12-06).
inline constexpr size_t kNearL1Ahead = 2 * 1024, kNearL2Ahead = 4 * 1024;

// Lines a batch will read next into L2 (the next row tile's, while the tokens pass over this one): the first pass
// over a tile otherwise waits on memory, every later one finds it in L2. Every 64-byte line of [at, at + n_bytes),
// with __builtin_prefetch's locality 2 (L2 and out).
inline void prefetch_next_tile(const void* at, size_t n_bytes) {
  const auto a = reinterpret_cast<uintptr_t>(at);
  for (uintptr_t line = a & ~uintptr_t{63}; line < a + n_bytes; line += 64)
    __builtin_prefetch(reinterpret_cast<const void*>(line), 0, 2);
}

}  // namespace lowbit
