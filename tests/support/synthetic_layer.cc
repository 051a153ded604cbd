#include "support/synthetic_layer.h"

#include <cmath>
#include <random>

namespace lowbit::testing {

std::vector<float> gaussian(int64_t n, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, sigma);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = nd(rng);
  return v;
}

std::vector<float> correlated_inputs(int64_t n_tokens, int64_t n_in, uint32_t seed) {
  const std::vector<float> z = gaussian(n_tokens * n_in, 1.f, seed);
  std::vector<float> a = gaussian(n_in * n_in, 1.f / std::sqrt(static_cast<float>(n_in)), seed + 1);
  for (int64_t i = 0; i < n_in; ++i) a[i * n_in + i] += 1.f;
  std::vector<float> x(static_cast<size_t>(n_tokens * n_in), 0.f);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t k = 0; k < n_in; ++k) {
      const float zk = z[t * n_in + k];
      for (int64_t j = 0; j < n_in; ++j) x[t * n_in + j] += zk * a[k * n_in + j];
    }
  return x;
}

void scale_column(std::vector<float>& x, int64_t n_in, int64_t j, float factor) {
  for (size_t t = static_cast<size_t>(j); t < x.size(); t += static_cast<size_t>(n_in)) x[t] *= factor;
}

}  // namespace lowbit::testing
