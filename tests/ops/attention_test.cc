// Attention against the plain loops its header describes, bit for bit, on every SIMD target: grouped-query heads
// (groups of 1, 2, 3, 4, 6 and 8, so whole and partial blocks of four heads), head sizes with and without a vector
// tail, key counts below one vector and past four, with and without the F16 rounding, one and two threads.
#include "ops/attention.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/float_formats.h"
#include "support/every_call_threaded.h"
#include "support/plain_softmax.h"

namespace lowbit {
namespace {

float f16_rounded(float v) { return f16_to_f32(f32_to_f16(v)); }

// The header's order, loop by loop (this file is built without FMA, so every a * b + c rounds twice).
std::vector<float> plain_attention(const std::vector<float>& q, int64_t n_tokens, int64_t n_past, const std::vector<float>& k,
                                   const std::vector<float>& v, const AttentionShape& s, bool round_f16) {
  std::vector<float> out(static_cast<size_t>(n_tokens * s.q_stride), -1.0f);
  const int64_t hd = s.head_dim, group = s.n_head / s.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t h = 0; h < s.n_head; ++h) {
      const int64_t n_keys = n_past + t + 1, kv = (h / group) * hd;
      std::vector<float> qh(q.begin() + t * s.q_stride + h * hd, q.begin() + t * s.q_stride + (h + 1) * hd), w(static_cast<size_t>(n_keys));
      if (round_f16) std::transform(qh.begin(), qh.end(), qh.begin(), f16_rounded);
      for (int64_t p = 0; p < n_keys; ++p) {
        float acc = 0;
        for (int64_t i = 0; i < hd; ++i) acc += qh[i] * k[(kv + i) * s.k_stride + p];
        w[p] = acc * scale;
      }
      plain_softmax(w.data(), n_keys);
      if (round_f16) std::transform(w.begin(), w.end(), w.begin(), f16_rounded);
      for (int64_t i = 0; i < hd; ++i) {
        float o = 0;
        for (int64_t p = 0; p < n_keys; ++p) o += w[p] * v[p * s.v_stride + kv + i];
        out[t * s.q_stride + h * hd + i] = o;
      }
    }
  return out;
}

TEST(Attention, EqualsThePlainLoopsOnEveryTarget) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  struct Case {
    int64_t n_head, n_head_kv, head_dim, n_past, n_tokens;
  };
  for (const Case& c : {Case{4, 2, 64, 0, 7}, Case{4, 4, 40, 70, 3}, Case{6, 2, 24, 3, 1}, Case{2, 1, 128, 200, 2},
                      Case{8, 2, 64, 37, 5}, Case{32, 4, 64, 90, 3}, Case{12, 2, 40, 20, 2}}) {
    const int64_t n_ctx = c.n_past + c.n_tokens + 5;
    const AttentionShape s{c.n_head, c.n_head_kv, c.head_dim, c.n_head * c.head_dim, c.n_head_kv * c.head_dim, n_ctx};
    std::vector<float> q(static_cast<size_t>(c.n_tokens * s.q_stride)), k(static_cast<size_t>(s.v_stride * n_ctx)),
        v(static_cast<size_t>(n_ctx * s.v_stride));
    for (float& x : q) x = 2.0f * normal(rng);
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    for (bool round_f16 : {false, true}) {
      const std::vector<float> want = plain_attention(q, c.n_tokens, c.n_past, k, v, s, round_f16);
      for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
        hwy::SetSupportedTargetsForTest(target);
        for (int threads : {1, 2}) {
          const EveryCallThreaded every_call_threaded;  // these shapes read a few KiB
          std::vector<float> got(want.size(), -2.0f);
          attention(q.data(), c.n_tokens, c.n_past, k.data(), v.data(), s, round_f16, got.data(), threads);
          for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
                << "head_dim " << c.head_dim << ", " << c.n_past << " past, rounding " << round_f16 << ", output " << i
                << " on " << hwy::TargetName(target) << " with " << threads << " threads: " << got[i] << " vs " << want[i];
        }
      }
      hwy::SetSupportedTargetsForTest(0);
    }
  }
}

}  // namespace
}  // namespace lowbit
