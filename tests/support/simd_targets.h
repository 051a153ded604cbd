// For tests of the SIMD code on every Highway target this CPU runs and this build compiled (AVX2, AVX-512, ...):
// fn(target) with each pinned in turn, so every dispatched call inside runs that target's code. The default choice
// comes back afterwards, also when an ASSERT in fn ends the test early; a fatal failure stops the loop. Returns the
// number of targets that ran, for tests that want at least two.
#pragma once

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cstdint>

namespace lowbit {

template <class Fn>
int for_each_simd_target(const Fn& fn) {
  struct Restore {
    ~Restore() { hwy::SetSupportedTargetsForTest(0); }
  } restore;
  int ran = 0;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    fn(target);
    ++ran;
    if (::testing::Test::HasFatalFailure()) break;
  }
  return ran;
}

}  // namespace lowbit
