// Attention against the plain loops its header describes, bit for bit, on every SIMD target: grouped-query heads
// (groups of 1 to 8, 10 and 16, so blocks of every size from one to eight heads, and one KV head's heads split
// between two threads), head sizes with and without a vector tail, key counts below one vector, past four and past several chunks of values, with and without the F16 rounding,
// one and two threads; and over an F16 cache, against the loops over its values.
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
#include "support/simd_targets.h"

namespace lowbit {
namespace {

float f16_rounded(float v) { return f16_to_f32(f32_to_f16(v)); }

// The header's order, loop by loop, each term added by std::fma.
std::vector<float> plain_attention(const std::vector<float>& q, int64_t n_tokens, int64_t n_past, const std::vector<float>& k,
                                   const std::vector<float>& v, const AttentionShape& s, bool round_f16) {
  std::vector<float> out(static_cast<size_t>(n_tokens * s.q_stride), -1.0f);
  const int64_t hd = s.head_dim, group = s.n_head / s.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t h = 0; h < s.n_head; ++h) {
      const int64_t n_keys = n_past + t + 1, g = h / group;
      std::vector<float> qh(q.begin() + t * s.q_stride + h * hd, q.begin() + t * s.q_stride + (h + 1) * hd), w(static_cast<size_t>(n_keys));
      if (round_f16) std::transform(qh.begin(), qh.end(), qh.begin(), f16_rounded);
      for (int64_t p = 0; p < n_keys; ++p) {
        float acc = 0;
        for (int64_t i = 0; i < hd; ++i)
          acc = std::fma(qh[i], k[g * s.k_head_stride + p / kKeyBlock * s.k_stride + i * kKeyBlock + p % kKeyBlock], acc);
        w[p] = acc * scale;
      }
      plain_softmax(w.data(), n_keys);
      if (round_f16) std::transform(w.begin(), w.end(), w.begin(), f16_rounded);
      for (int64_t i = 0; i < hd; ++i) {
        float o = 0;
        for (int64_t p = 0; p < n_keys; ++p) o = std::fma(w[p], v[g * s.v_head_stride + p * s.v_stride + i], o);
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
  int cases = 0;
  for (const Case& c : {Case{4, 2, 64, 0, 7}, Case{4, 4, 40, 70, 3}, Case{6, 2, 24, 3, 1}, Case{2, 1, 128, 200, 2},
                      Case{8, 2, 64, 37, 5}, Case{32, 4, 64, 90, 3}, Case{12, 2, 40, 20, 2}, Case{4, 2, 64, 33, 4},
                      Case{16, 1, 64, 300, 2}, Case{16, 2, 72, 250, 1}, Case{10, 2, 48, 40, 2}, Case{14, 2, 64, 60, 1},
                      Case{7, 1, 64, 50, 1}, Case{2, 2, 128, 150, 2}}) {
    // The cache's last key block ends the buffer, so a read past a block's keys would show under a sanitizer.
    const int64_t n_ctx = c.n_past + c.n_tokens + 5, hd = c.head_dim, kv_dim = c.n_head_kv * hd;
    const int64_t blocks = (n_ctx + kKeyBlock - 1) / kKeyBlock;
    // Every other case keeps each head's keys and values in one run (model/kv_cache.h), the others the heads side
    // by side in each key block and position.
    const bool runs = cases++ % 2;
    const AttentionShape s{c.n_head, c.n_head_kv, hd, c.n_head * hd,
                           runs ? hd * kKeyBlock : kv_dim * kKeyBlock, runs ? blocks * hd * kKeyBlock : hd * kKeyBlock,
                           runs ? hd : kv_dim, runs ? n_ctx * hd : hd};
    std::vector<float> q(static_cast<size_t>(c.n_tokens * s.q_stride)), k(static_cast<size_t>(blocks * kKeyBlock * kv_dim)),
        v(static_cast<size_t>(n_ctx * kv_dim));
    for (float& x : q) x = 2.0f * normal(rng);
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    // The F16 cache: the same values as bits, against the loops over the values they hold.
    std::vector<uint16_t> k16(k.size()), v16(v.size());
    std::transform(k.begin(), k.end(), k16.begin(), f32_to_f16);
    std::transform(v.begin(), v.end(), v16.begin(), f32_to_f16);
    std::vector<float> k_held(k.size()), v_held(v.size());
    std::transform(k.begin(), k.end(), k_held.begin(), f16_rounded);
    std::transform(v.begin(), v.end(), v_held.begin(), f16_rounded);
    for (int cache : {0, 1, 2}) {  // F32 exact, F32 rounding, F16
      const bool round_f16 = cache > 0;
      const std::vector<float> want = cache == 2 ? plain_attention(q, c.n_tokens, c.n_past, k_held, v_held, s, true)
                                                 : plain_attention(q, c.n_tokens, c.n_past, k, v, s, round_f16);
      for_each_simd_target([&](int64_t target) {
        for (int threads : {1, 2}) {
          const EveryCallThreaded every_call_threaded;  // these shapes read a few KiB
          std::vector<float> got(want.size(), -2.0f);
          if (cache == 2) attention(q.data(), c.n_tokens, c.n_past, k16.data(), v16.data(), s, got.data(), threads);
          else attention(q.data(), c.n_tokens, c.n_past, k.data(), v.data(), s, round_f16, got.data(), threads);
          for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
                << "head_dim " << c.head_dim << ", " << c.n_past << " past, cache " << cache << ", output " << i
                << " on " << hwy::TargetName(target) << " with " << threads << " threads: " << got[i] << " vs " << want[i];
        }
      });
    }
  }
}

}  // namespace
}  // namespace lowbit
