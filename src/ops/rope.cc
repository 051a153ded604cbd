// The rotation is compiled once per SIMD target (Highway, picked at run time); the frequencies once.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/rope.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>
#include <numbers>

#include "ops/rope.h"
#include "util/error.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Each head's pairs turned as the scalar loop below turns them: a * c - b * s and a * s + b * c, each product
// rounded, then the sum (this file is built with -ffp-contract=off). A token's 36 TinyLlama heads (Q's and K's)
// took 1.32 us a pair at a time (scalar, SSE2), 0.17 us so (AVX-512, harness): 28-35 us of a generated token before.
void RopeRotateHeads(float* x, int64_t n_heads, int64_t head_dim, const float* cos_sin, bool neox) {
  const int64_t half = head_dim / 2;
  int64_t vector_end = 0;  // pairs [0, vector_end) in vectors, the rest one at a time
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const hn::ScalableTag<float> d;
  const auto N = static_cast<int64_t>(hn::Lanes(d));
  if (!neox) {
    // Adjacent pairs: a vector holds N / 2 of them, lanes (a, b); the angles' (c, s) lie the same way.
    vector_end = head_dim / N * N / 2;
    for (int64_t h = 0; h < n_heads; ++h)
      for (int64_t i = 0; i < 2 * vector_end; i += N) {
        float* at = x + h * head_dim + i;
        const auto ab = hn::LoadU(d, at), cs = hn::LoadU(d, cos_sin + i);
        const auto with_c = hn::Mul(ab, hn::DupEven(cs)), with_s = hn::Mul(hn::Shuffle2301(ab), hn::DupOdd(cs));
        // lanes b: b * c + a * s (the loop's a * s + b * c, the same sum); lanes a: a * c - b * s
        hn::StoreU(hn::OddEven(hn::Add(with_c, with_s), hn::Sub(with_c, with_s)), d, at);
      }
  } else {
    // Halves: pairs i.. of a vector, a from the first half and b from the second; the angles taken apart.
    vector_end = half / N * N;
    for (int64_t h = 0; h < n_heads; ++h)
      for (int64_t i = 0; i < vector_end; i += N) {
        float* a_at = x + h * head_dim + i;
        const auto cs0 = hn::LoadU(d, cos_sin + 2 * i), cs1 = hn::LoadU(d, cos_sin + 2 * i + N);
        const auto c = hn::ConcatEven(d, cs1, cs0), s = hn::ConcatOdd(d, cs1, cs0);
        const auto a = hn::LoadU(d, a_at), b = hn::LoadU(d, a_at + half);
        hn::StoreU(hn::Sub(hn::Mul(a, c), hn::Mul(b, s)), d, a_at);
        hn::StoreU(hn::Add(hn::Mul(a, s), hn::Mul(b, c)), d, a_at + half);
      }
  }
#endif
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = vector_end; i < half; ++i) {
      const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
      float& a = neox ? x[h * head_dim + i] : x[h * head_dim + 2 * i];
      float& b = neox ? x[h * head_dim + i + half] : x[h * head_dim + 2 * i + 1];
      const float a0 = a, b0 = b;
      a = a0 * c - b0 * s;
      b = a0 * s + b0 * c;
    }
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {

HWY_EXPORT(RopeRotateHeads);

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

void rope_rotate_heads(float* x, int64_t n_heads, int64_t head_dim, const float* cos_sin, bool neox) {
  HWY_DYNAMIC_DISPATCH(RopeRotateHeads)(x, n_heads, head_dim, cos_sin, neox);
}

void rope_rotate(float* x, int64_t head_dim, const float* cos_sin, bool neox) {
  rope_rotate_heads(x, 1, head_dim, cos_sin, neox);
}

void rope_rotate(float* x, int64_t head_dim, int64_t pos, const float* inv_freq, bool neox) {
  std::vector<float> cos_sin(static_cast<size_t>(head_dim));
  rope_angles(head_dim, pos, inv_freq, cos_sin.data());
  rope_rotate(x, head_dim, cos_sin.data(), neox);
}

}  // namespace lowbit
#endif  // HWY_ONCE
