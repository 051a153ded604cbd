// OpenBLAS / LAPACKE for the calibrated quantizers' dense algebra (GPTQ's Hessians and their Cholesky inverses).
// Results must not depend on the thread count, and OpenBLAS's own threading may split sums differently for
// different counts: callers hold a SingleThreadedBlas while they call BLAS, and parallelise over fixed pieces
// of work themselves.
#pragma once

#include <cblas.h>

namespace lowbit {

// Sets OpenBLAS to one thread for its lifetime and restores the previous count afterwards.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas() : previous_(openblas_get_num_threads()) { openblas_set_num_threads(1); }
  ~SingleThreadedBlas() { openblas_set_num_threads(previous_); }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int previous_;
};

}  // namespace lowbit
