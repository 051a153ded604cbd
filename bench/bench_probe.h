// The bandwidth probe the benchmarks measure against (eval/roofline.h), one per thread count (1 or 2), each over
// 1 GiB: made on first use and shared by every benchmark in the binary, so the probes' buffers exist once.
#pragma once

#include <cstddef>

#include "eval/roofline.h"

namespace lowbit {

inline const BandwidthProbe& bench_probe(int threads) {
  static const BandwidthProbe one(size_t{1} << 30, 1), two(size_t{1} << 30, 2);
  return threads == 1 ? one : two;
}

}  // namespace lowbit
