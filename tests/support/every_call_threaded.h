// For tests of the multi-thread paths on small shapes: while one of these lives, every step runs on all the
// threads it is given, however few bytes it reads (util/parallel.h's threads_for_bytes would keep a small one on
// fewer); the minimum in force before comes back when it goes.
#pragma once

#include "util/parallel.h"

namespace lowbit {

class EveryCallThreaded {
 public:
  EveryCallThreaded() : previous_(set_min_bytes_per_thread(0)) {}
  ~EveryCallThreaded() { set_min_bytes_per_thread(previous_); }
  EveryCallThreaded(const EveryCallThreaded&) = delete;
  EveryCallThreaded& operator=(const EveryCallThreaded&) = delete;

 private:
  size_t previous_;
};

}  // namespace lowbit
