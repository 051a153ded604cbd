// ops/elementwise.h's softmax as its header defines it, in plain loops: the reference its SIMD lanes and
// attention's weights are checked against bit for bit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ops/elementwise.h"

namespace lowbit {

inline void plain_softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  float part[16] = {};
  for (int64_t i = 0; i < n; ++i) part[i < n / 16 * 16 ? i % 16 : 0] += (x[i] = fixed_exp(x[i] - mx));
  for (int half = 8; half > 0; half /= 2)
    for (int k = 0; k < half; ++k) part[k] += part[k + half];
  const float inverse = 1.0f / part[0];
  for (int64_t i = 0; i < n; ++i) x[i] *= inverse;
}

}  // namespace lowbit
