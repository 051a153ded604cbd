#include "ops/rope.h"

#include <cmath>
#include <numbers>

#include "util/error.h"

namespace lowbit {

std::vector<float> rope_inv_freq(int64_t head_dim, const RopeConfig& rope, std::span<const float> freq_factors) {
  check(freq_factors.empty() || static_cast<int64_t>(freq_factors.size()) == head_dim / 2, "rope_freqs.weight",
        "{} frequency factors for a head of {} (needs {})", freq_factors.size(), head_dim, head_dim / 2);
  std::vector<float> inv_freq;
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    float f = std::pow(rope.theta, -2.0f * static_cast<float>(i) / static_cast<float>(head_dim));
    if (rope.scaling == RopeScaling::Linear) f /= rope.factor;
    if (!freq_factors.empty()) f /= freq_factors[static_cast<size_t>(i)];
    inv_freq.push_back(f);
  }
  return inv_freq;
}

std::vector<float> llama3_rope_factors(const ModelConfig& c) {
  const int64_t dim = c.n_embd_head();
  const double factor = c.rope.factor, low = c.rope.low_freq_factor, high = c.rope.high_freq_factor;
  const double old_ctx = static_cast<double>(c.rope.original_context > 0 ? c.rope.original_context : 8192);
  const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  std::vector<float> factors;
  for (int64_t i = 0; i < dim; i += 2) {
    const double freq = 1.0 / std::pow(static_cast<double>(c.rope.theta), static_cast<double>(i) / dim);
    const double wavelen = 2 * std::numbers::pi / freq;
    if (wavelen < high_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      factors.push_back(static_cast<float>(factor));
    } else {
      const double smooth = (old_ctx / wavelen - low) / (high - low);
      factors.push_back(static_cast<float>(1.0 / ((1 - smooth) / factor + smooth)));
    }
  }
  return factors;
}

void rope_angles(int64_t head_dim, int64_t pos, const float* inv_freq, float* cos_sin) {
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const float theta = static_cast<float>(pos) * inv_freq[i];
    cos_sin[2 * i] = std::cos(theta);
    cos_sin[2 * i + 1] = std::sin(theta);
  }
}

void rope_rotate(float* x, int64_t head_dim, const float* cos_sin, bool neox) {
  const int64_t half = head_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
    float& a = neox ? x[i] : x[2 * i];
    float& b = neox ? x[i + half] : x[2 * i + 1];
    const float a0 = a, b0 = b;
    a = a0 * c - b0 * s;
    b = a0 * s + b0 * c;
  }
}

void rope_rotate(float* x, int64_t head_dim, int64_t pos, const float* inv_freq, bool neox) {
  std::vector<float> cos_sin(static_cast<size_t>(head_dim));
  rope_angles(head_dim, pos, inv_freq, cos_sin.data());
  rope_rotate(x, head_dim, cos_sin.data(), neox);
}

}  // namespace lowbit
