#include "util/thread_team.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace lowbit {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until done() or kSpinFor has passed; the clock is read every 64 turns. After kPauseFor of pure spinning,
// and from the start when the job has more threads than cores (`crowded`), each turn yields the core instead: the
// thread being waited for may be off its core, behind this one or another process (ctest -j2 beside a -t 2 job).
// 20 000 jobs of two to four threads on two cores took 41 s spinning, 0.13 s yielding. Generation's waits (a few
// us) stay pure spins.
constexpr std::chrono::microseconds kPauseFor{50};
template <typename Done>
bool spin_until(const Done& done, bool crowded) {
  const auto start = std::chrono::steady_clock::now();
  bool yielding = crowded;
  for (int turn = 1;; ++turn) {
    if (done()) return true;
    if (yielding) std::this_thread::yield();
    else cpu_relax();
    if (turn % 64 == 0) {
      const auto waited = std::chrono::steady_clock::now() - start;
      if (waited > ThreadTeam::kSpinFor) return false;
      yielding |= waited > kPauseFor;
    }
  }
}

}  // namespace

bool ThreadTeam::crowded() const {
  static const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return team_size_.load(std::memory_order_relaxed) > cores;
}

ThreadTeam& ThreadTeam::global() {
  // Never destroyed: at exit its workers are asleep or spinning and simply end with the process, and a static
  // destructor that still ran parallel code (or an exit() during a job, with run_mutex_ held) cannot meet a team
  // that is gone or a join that never returns.
  static ThreadTeam* const team = new ThreadTeam;
  return *team;
}

ThreadTeam::~ThreadTeam() {
  const std::lock_guard lock(run_mutex_);
  stop_ = true;
  for (auto& w : workers_) wake(*w);
  for (auto& w : workers_) w->thread.join();
}

void ThreadTeam::wake(Worker& w) {
  // seq_cst on both sides (here: bump, then read `sleeping`; the worker: set `sleeping`, then wait, which
  // re-reads the counter): either the worker sees the bump or this sees it asleep and notifies.
  w.jobs.fetch_add(1, std::memory_order_seq_cst);
  if (w.sleeping.load(std::memory_order_seq_cst)) w.jobs.notify_one();
}

void ThreadTeam::work(Worker& me, int index) {
  uint32_t seen = 0;
  for (;;) {
    const auto given = [&] { return me.jobs.load(std::memory_order_acquire) != seen; };
    while (!spin_until(given, crowded())) {
      me.sleeping.store(true, std::memory_order_seq_cst);
      me.jobs.wait(seen, std::memory_order_seq_cst);
      me.sleeping.store(false, std::memory_order_relaxed);
    }
    seen = me.jobs.load(std::memory_order_acquire);
    if (stop_) return;
    call_(fn_, index, n_);
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

void ThreadTeam::wait_for_workers() {
  const auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  while (!spin_until(done, crowded())) std::this_thread::yield();  // a long job: give the core away while waiting
}

void ThreadTeam::run_erased(int threads, const void* fn, Call call) {
  const int n = std::max(1, threads);
  std::unique_lock lock(run_mutex_, std::try_to_lock);
  if (n == 1 || !lock.owns_lock()) {
    for (int i = 0; i < n; ++i) call(fn, i, n);
    return;
  }
  while (static_cast<int>(workers_.size()) < n - 1) {
    workers_.push_back(std::make_unique<Worker>());
    Worker& w = *workers_.back();
    const int index = static_cast<int>(workers_.size());
    w.thread = std::thread([this, &w, index] { work(w, index); });
  }
  team_size_.store(n, std::memory_order_relaxed);
  fn_ = fn, call_ = call, n_ = n;
  pending_.store(n - 1, std::memory_order_relaxed);
  for (int k = 0; k < n - 1; ++k) wake(*workers_[static_cast<size_t>(k)]);
  try {
    call(fn, 0, n);
  } catch (...) {
    wait_for_workers();  // they still read fn's captures
    throw;
  }
  wait_for_workers();
}

}  // namespace lowbit
