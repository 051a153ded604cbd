// The spinning thread team and the parallel helpers on it: every index runs exactly once, on the thread it was
// given; jobs after the workers fell asleep still run; nested and failing jobs; stolen work is never run twice.
#include "util/thread_team.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/every_call_threaded.h"
#include "util/parallel.h"

namespace lowbit {
namespace {

TEST(ThreadTeam, EveryThreadIndexRunsOnceOnItsOwnThread) {
  for (int n : {1, 2, 3, 5}) {
    std::vector<std::atomic<int>> calls(static_cast<size_t>(n));
    std::vector<std::thread::id> ids(static_cast<size_t>(n));
    ThreadTeam::global().run(n, [&](int i, int of) {
      ASSERT_EQ(of, n);
      calls[static_cast<size_t>(i)].fetch_add(1);
      ids[static_cast<size_t>(i)] = std::this_thread::get_id();
    });
    for (int i = 0; i < n; ++i) EXPECT_EQ(calls[static_cast<size_t>(i)].load(), 1) << n << " threads, index " << i;
    EXPECT_EQ(ids[0], std::this_thread::get_id());  // the caller is thread 0
    EXPECT_EQ(std::set<std::thread::id>(ids.begin(), ids.end()).size(), static_cast<size_t>(n));
  }
}

TEST(ThreadTeam, ManyShortJobsAllComplete) {
  // Lost wake-ups or a worker running a job twice would show as a wrong total (or a hang, which ctest times out).
  std::atomic<int64_t> total{0};
  for (int job = 0; job < 5000; ++job)
    ThreadTeam::global().run(2 + job % 3, [&](int i, int) { total.fetch_add(i + 1, std::memory_order_relaxed); });
  int64_t want = 0;
  for (int job = 0; job < 5000; ++job) want += (2 + job % 3) * (3 + job % 3) / 2;
  EXPECT_EQ(total.load(), want);
}

TEST(ThreadTeam, WorkersThatFellAsleepWakeForTheNextJob) {
  std::atomic<int> calls{0};
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(ThreadTeam::kSpinFor * 3);  // past the spin: the workers now wait on a futex
    ThreadTeam::global().run(3, [&](int, int) { calls.fetch_add(1); });
  }
  EXPECT_EQ(calls.load(), 9);
}

TEST(ThreadTeam, NestedJobsRunOnTheCallingThread) {
  std::atomic<int> inner{0};
  ThreadTeam::global().run(2, [&](int, int) {
    const auto me = std::this_thread::get_id();
    ThreadTeam::global().run(3, [&](int, int n) {
      EXPECT_EQ(std::this_thread::get_id(), me);
      EXPECT_EQ(n, 3);
      inner.fetch_add(1);
    });
  });
  EXPECT_EQ(inner.load(), 6);
}

TEST(ThreadTeam, AnExceptionReachesTheCallerAfterTheWorkersFinish) {
  std::atomic<int> finished{0};
  EXPECT_THROW(ThreadTeam::global().run(2, [&](int i, int) {
                 if (i == 0) throw std::runtime_error("thread 0 failed");
                 std::this_thread::sleep_for(std::chrono::milliseconds(20));
                 finished.fetch_add(1);
               }),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 1);  // run() waited for worker 1 before rethrowing
  std::atomic<int> after{0};
  ThreadTeam::global().run(2, [&](int, int) { after.fetch_add(1); });  // the team still works
  EXPECT_EQ(after.load(), 2);
}

TEST(ThreadTeam, AnOwnTeamJoinsItsWorkersWhenDestroyed) {
  std::atomic<int> calls{0};
  {
    ThreadTeam team;
    team.run(3, [&](int, int) { calls.fetch_add(1); });
    std::this_thread::sleep_for(ThreadTeam::kSpinFor * 2);  // one worker asleep, one spinning: both must stop
    team.run(2, [&](int, int) { calls.fetch_add(1); });
  }
  EXPECT_EQ(calls.load(), 5);
}

TEST(Parallel, ForAndDynamicForVisitEveryIndexOnce) {
  for (int threads : {1, 2, 4})
    for (int64_t n : {0, 1, 7, 1000}) {
      std::vector<std::atomic<int>> seen(static_cast<size_t>(n)), seen_dynamic(static_cast<size_t>(n));
      parallel_for(n, threads, [&](int64_t i) { seen[static_cast<size_t>(i)].fetch_add(1); });
      parallel_for_dynamic(n, threads, [&](int64_t i) { seen_dynamic[static_cast<size_t>(i)].fetch_add(1); });
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(seen[static_cast<size_t>(i)].load(), 1) << threads << " threads, n " << n << ", index " << i;
        ASSERT_EQ(seen_dynamic[static_cast<size_t>(i)].load(), 1) << threads << " threads, n " << n << ", index " << i;
      }
    }
}

TEST(StealingRanges, EachItemOnceOwnersInOrderAndASlowThreadsTailTaken) {
  constexpr size_t kItems = 400;
  for (int threads : {2, 3}) {
    StealingRanges ranges;
    std::vector<size_t> starts;
    for (int i = 0; i <= threads; ++i) starts.push_back(kItems * static_cast<size_t>(i) / static_cast<size_t>(threads));
    ranges.reset(starts);
    std::vector<std::atomic<int>> runs(kItems);
    std::vector<std::vector<size_t>> by_thread(static_cast<size_t>(threads));
    // The others start once thread 0 has its first items: on a crowded machine (ctest -j2) thread 0 could lose its
    // core before its first take, and the others rightly take its whole range (seen once in CI).
    std::atomic<bool> slow_started{false};
    ThreadTeam::global().run(threads, [&](int me, int) {
      if (me != 0)
        while (!slow_started.load()) std::this_thread::yield();
      for (StealingRanges::Items items; !(items = ranges.next(me)).empty();) {
        slow_started.store(true);
        for (size_t c = items.begin; c < items.end; ++c) {
          runs[c].fetch_add(1);
          by_thread[static_cast<size_t>(me)].push_back(c);
          if (me == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));  // thread 0 is slow
        }
      }
    });
    for (size_t c = 0; c < kItems; ++c) ASSERT_EQ(runs[c].load(), 1) << threads << " threads, item " << c;
    // Thread 0 took its own items front to back and never finished them all: the others took its tail.
    const std::vector<size_t>& slow = by_thread[0];
    ASSERT_FALSE(slow.empty());
    for (size_t k = 1; k < slow.size(); ++k) EXPECT_EQ(slow[k], slow[k - 1] + 1);
    EXPECT_EQ(slow.front(), 0u);
    EXPECT_LT(slow.back() + 1, starts[1]);
  }
}

// A step takes as many threads as have kMinBytesPerThread each, at least one, at most those asked for; with the
// test seam every step has all of them, and the default is back after it.
TEST(Parallel, ThreadsGoByBytes) {
  constexpr size_t kMin = kMinBytesPerThread;
  EXPECT_EQ(threads_for_bytes(0, 2), 1);
  EXPECT_EQ(threads_for_bytes(kMin, 2), 1);
  EXPECT_EQ(threads_for_bytes(2 * kMin - 1, 2), 1);
  EXPECT_EQ(threads_for_bytes(2 * kMin, 2), 2);
  EXPECT_EQ(threads_for_bytes(100 * kMin, 2), 2);
  EXPECT_EQ(threads_for_bytes(3 * kMin, 8), 3);
  EXPECT_EQ(threads_for_bytes(100 * kMin, 1), 1);
  EXPECT_EQ(threads_for_bytes(100 * kMin, 0), 1);
  {
    const EveryCallThreaded every_call_threaded;
    EXPECT_EQ(threads_for_bytes(1, 2), 2);
    EXPECT_EQ(threads_for_bytes(0, 8), 8);
  }
  EXPECT_EQ(threads_for_bytes(kMin, 2), 1);
}

}  // namespace
}  // namespace lowbit
