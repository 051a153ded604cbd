// A progress bar on stderr for anything that can take more than a second. Silent when stderr is not a
// terminal or when quiet mode is on (`--quiet`), so logs and tests stay clean.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lowbit {

void set_quiet(bool quiet);
bool is_quiet();

class Progress {
 public:
  Progress(std::string label, int64_t total);
  ~Progress();
  void advance(int64_t n = 1);
  void set(int64_t done);
  void finish();

 private:
  void draw(bool force);
  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace lowbit
