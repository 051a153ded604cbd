#include "algo/int_quant.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "support/synthetic_layer.h"

namespace lowbit {
namespace {

// X W^T over token chunks (the last one partial): each output is the dot product to float rounding, and the
// thread count changes no bit.
TEST(LinearForward, MatchesDotProductsAndIgnoresThreadCount) {
  const int64_t n_tokens = 150, n_in = 96, n_out = 40;
  const std::vector<float> x = testing::gaussian(n_tokens * n_in, 1.f, 11);
  const std::vector<float> w = testing::gaussian(n_out * n_in, 0.1f, 12);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<float> one = linear_forward(x.data(), n_tokens, w.data(), n_out, n_in);
  omp_set_num_threads(3);
  const std::vector<float> three = linear_forward(x.data(), n_tokens, w.data(), n_out, n_in);
  omp_set_num_threads(saved);
  EXPECT_EQ(one, three);
  ASSERT_EQ(one.size(), static_cast<size_t>(n_tokens * n_out));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t o = 0; o < n_out; ++o) {
      double dot = 0, mag = 0;
      for (int64_t i = 0; i < n_in; ++i) {
        dot += static_cast<double>(x[t * n_in + i]) * w[o * n_in + i];
        mag += std::fabs(static_cast<double>(x[t * n_in + i]) * w[o * n_in + i]);
      }
      ASSERT_NEAR(one[t * n_out + o], dot, 1e-6 * mag + 1e-12) << t << " " << o;
    }
}

}  // namespace
}  // namespace lowbit
