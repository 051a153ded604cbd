#include "support/simd_targets.h"

#include <stdexcept>
#include <vector>

namespace lowbit {
namespace {

// Each target this CPU supports is pinned in turn (hwy::SupportedTargets() is then that target alone), AVX2 a
// second time with the AVX-VNNI kernels where the CPU has them, and the whole set comes back after the loop.
TEST(SimdTargets, EachTargetIsPinnedInTurnThenAllComeBack) {
  hwy::SetSupportedTargetsForTest(0);  // whatever a test before left pinned
  const int64_t all = hwy::SupportedTargets();
  std::vector<int64_t> seen;
  std::vector<bool> vnni_seen;
  const int ran = for_each_simd_target([&](int64_t target) {
    EXPECT_EQ(hwy::SupportedTargets(), target);
    seen.push_back(target);
    vnni_seen.push_back(avx_vnni_in_use());
  });
  EXPECT_EQ(ran, static_cast<int>(seen.size()));
  std::vector<int64_t> expected;
  std::vector<bool> expected_vnni;
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) {
    expected.push_back(t);
    expected_vnni.push_back(false);
    if (t == HWY_AVX2 && cpu_runs_avx_vnni_kernels()) {
      expected.push_back(t);
      expected_vnni.push_back(true);
    }
  }
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(vnni_seen, expected_vnni);
  int64_t together = 0;
  for (int64_t t : seen) together |= t;
  EXPECT_EQ(together & all, together);
  EXPECT_EQ(hwy::SupportedTargets(), all);
  EXPECT_EQ(set_avx_vnni(true), true);  // the kernels' default came back too
}

// An early way out of fn (here an exception; an ASSERT's return is another) still gives every target back: the
// loops this helper replaced left the failing target pinned for the tests after.
TEST(SimdTargets, TheTargetsComeBackWhenFnLeavesEarly) {
  hwy::SetSupportedTargetsForTest(0);  // whatever a test before left pinned
  const int64_t all = hwy::SupportedTargets();
  int calls = 0;
  EXPECT_THROW(for_each_simd_target([&](int64_t) {
                 ++calls;
                 throw std::runtime_error("out");
               }),
               std::runtime_error);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(hwy::SupportedTargets(), all);
}

}  // namespace
}  // namespace lowbit
