#include "support/simd_targets.h"

#include <stdexcept>
#include <vector>

namespace lowbit {
namespace {

// Each target this CPU supports is pinned in turn (hwy::SupportedTargets() is then that target alone), and the
// whole set comes back after the loop.
TEST(SimdTargets, EachTargetIsPinnedInTurnThenAllComeBack) {
  hwy::SetSupportedTargetsForTest(0);  // whatever a test before left pinned
  const int64_t all = hwy::SupportedTargets();
  std::vector<int64_t> seen;
  const int ran = for_each_simd_target([&](int64_t target) {
    EXPECT_EQ(hwy::SupportedTargets(), target);
    seen.push_back(target);
  });
  EXPECT_EQ(ran, static_cast<int>(seen.size()));
  EXPECT_EQ(seen, hwy::SupportedAndGeneratedTargets());
  int64_t together = 0;
  for (int64_t t : seen) together |= t;
  EXPECT_EQ(together & all, together);
  EXPECT_EQ(hwy::SupportedTargets(), all);
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
