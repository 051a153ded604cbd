#include "util/progress.h"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

namespace lowbit {
namespace {
std::atomic<bool> g_quiet{false};
}

void set_quiet(bool quiet) { g_quiet = quiet; }
bool is_quiet() { return g_quiet; }

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 1)), enabled_(!g_quiet && ::isatty(2)) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

void Progress::advance(int64_t n) { set(done_ + n); }

void Progress::set(int64_t done) {
  done_ = std::min(done, total_);
  draw(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!enabled_) return;
  done_ = total_;
  draw(true);
  std::fputc('\n', stderr);
}

void Progress::draw(bool force) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const int width = 30;
  const int filled = static_cast<int>(width * done_ / total_);
  const double secs = std::chrono::duration<double>(now - start_).count();
  fmt::print(stderr, "\r{} [{}{}] {}/{} {:.1f}s", label_, std::string(filled, '#'), std::string(width - filled, '.'),
             done_, total_, secs);
  std::fflush(stderr);
}

}  // namespace lowbit
