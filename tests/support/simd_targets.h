// For tests of the SIMD code on every Highway target this CPU runs and this build compiled (AVX2, AVX-512, ...):
// fn(target) with each pinned in turn, so every dispatched call inside runs that target's code. On a CPU with
// AVX-VNNI, AVX2 runs twice: with its plain kernels, then with those built with AVX-VNNI (ops/simd_matmul.h). The
// default choice comes back afterwards, also when an ASSERT in fn ends the test early; a fatal failure stops the
// loop. Returns the number of runs, for tests that want at least two.
#pragma once

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cstdint>

#include "ops/simd_matmul.h"

namespace lowbit {

template <class Fn>
int for_each_simd_target(const Fn& fn) {
  struct Restore {
    bool avx_vnni = set_avx_vnni(false);
    ~Restore() {
      hwy::SetSupportedTargetsForTest(0);
      set_avx_vnni(avx_vnni);
    }
  } restore;
  int ran = 0;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (const bool avx_vnni : {false, true}) {
      if (avx_vnni && !(target == HWY_AVX2 && cpu_runs_avx_vnni_kernels())) break;
      set_avx_vnni(avx_vnni);
      SCOPED_TRACE(avx_vnni ? "AVX2 with AVX-VNNI" : hwy::TargetName(target));
      fn(target);
      ++ran;
      if (::testing::Test::HasFatalFailure()) return ran;
    }
  }
  return ran;
}

}  // namespace lowbit
