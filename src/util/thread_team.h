// A process-wide team of worker threads that wait for work by spinning, for the many short parallel steps of a
// forward pass. Generation opens ~110 parallel regions a token, ~100 us each at two threads; libgomp's fork and
// join cost 2.2-2.6 and 1.4-1.8 us of that (measured inside matmul, Q4_0, -t 2), mostly futex system calls, which
// libgomp's barriers make at every release even when every thread is spinning, and which are slow in the VMs
// here. Here a job is published by one atomic store and its end seen by one counter, with no system call while
// the workers are awake. A wait spins for 50 us, then yields the core each turn (the thread it waits for may be
// off its core); a worker idle longer than kSpinFor sleeps (std::atomic::wait) and is woken by a notify, so an
// idle process does not burn a core.
//
// Jobs do not nest: a job that calls run() again (or two callers at once) runs the inner call on the calling
// thread alone. The caller is thread 0 of every job.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace lowbit {

class ThreadTeam {
 public:
  // How long an idle worker spins before it sleeps: longer than the gaps between a token's parallel steps (a few
  // us) and between tokens, short enough not to hold a core long after a run.
  static constexpr std::chrono::microseconds kSpinFor{2000};

  // The team every parallel helper shares (util/parallel.h).
  static ThreadTeam& global();

  ~ThreadTeam();

  // fn(i, n) for i in [0, n) with n = max(1, threads), thread i of the job on worker i (the caller is 0);
  // returns when every call has returned. Workers are started on first need and kept.
  template <typename Fn>
  void run(int threads, const Fn& fn) {
    run_erased(threads, &fn, [](const void* f, int i, int n) { (*static_cast<const Fn*>(f))(i, n); });
  }

 private:
  using Call = void (*)(const void* fn, int i, int n);
  // Each worker waits on its own line, so a job wakes only the workers it uses.
  struct alignas(64) Worker {
    std::atomic<uint32_t> jobs{0};  // bumped once per job this worker is given
    std::atomic<bool> sleeping{false};
    std::thread thread;
  };
  void run_erased(int threads, const void* fn, Call call);
  void work(Worker& me, int index);
  void wake(Worker& w);
  void wait_for_workers();
  bool crowded() const;  // the latest job has more threads than the machine has cores

  std::mutex run_mutex_;  // one job at a time; a nested or concurrent run() goes serial
  std::vector<std::unique_ptr<Worker>> workers_;  // worker k runs thread k + 1 of a job
  // The job: written before the workers' counters are bumped, read by them after; the next job is written only
  // once every worker of this one is done.
  const void* fn_ = nullptr;
  Call call_ = nullptr;
  int n_ = 0;
  bool stop_ = false;
  std::atomic<int> team_size_{1};            // the threads of the latest job
  alignas(64) std::atomic<int> pending_{0};  // workers of the current job not yet done
};

}  // namespace lowbit
