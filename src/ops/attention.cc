#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/float_rows.h"
#include "ops/attention.h"
#include "util/parallel.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// scores[p] = sum over i of q[i] * k[i][p] for p < n (k rows k_stride apart), each summed in order of i: the
// lanes hold keys.
HWY_INLINE void Scores(const float* q, const float* k, int64_t k_stride, int64_t dim, int64_t n, float scale,
                       float* scores) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t p = 0;
  for (; p + N <= n; p += N) {
    auto acc = hn::Zero(d);
    for (int64_t i = 0; i < dim; ++i) acc = hn::Add(acc, hn::Mul(hn::Set(d, q[i]), hn::LoadU(d, k + i * k_stride + p)));
    hn::StoreU(hn::Mul(acc, hn::Set(d, scale)), d, scores + p);
  }
  for (; p < n; ++p) {
    float s = 0;
    for (int64_t i = 0; i < dim; ++i) s += q[i] * k[i * k_stride + p];
    scores[p] = s * scale;
  }
}

// out += w * v over n floats (a multiply, then an add: the plain loop's rounding).
HWY_INLINE void AddScaled(float w, const float* v, float* out, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto vw = hn::Set(d, w);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Add(hn::LoadU(d, out + i), hn::Mul(vw, hn::LoadU(d, v + i))), d, out + i);
  for (; i < n; ++i) out[i] += w * v[i];
}

// v[0..n) rounded to F16 and back, through the SIMD row conversions (the same bits as f32_to_f16 / f16_to_f32).
inline void RoundToF16(float* v, int64_t n, std::vector<uint16_t>& halves) {
  halves.resize(static_cast<size_t>(n));
  f32_to_f16_row(v, halves.data(), n);
  f16_to_f32_row(halves.data(), v, n);
}

void AttentionTasks(const float* q, int64_t n_tokens, int64_t n_past, const float* k_cache, const float* v_cache,
                    const AttentionShape& s, bool round_f16, float* out, int threads) {
  const int64_t hd = s.head_dim, group = s.n_head / s.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // One task per (token, head), split statically: each task's arithmetic is the same on any thread.
  const int64_t n_tasks = n_tokens * s.n_head;
  parallel_region(static_cast<int>(std::min<int64_t>(threads, n_tasks)), [&](int me, int n_threads) {
    std::vector<float> scores(static_cast<size_t>(n_past + n_tokens)), qh(static_cast<size_t>(hd));
    std::vector<uint16_t> halves;
    const Share share = static_share(n_tasks, me, n_threads);
    for (int64_t task = share.begin; task < share.end; ++task) {
      const int64_t t = task / s.n_head, h = task % s.n_head;
      const int64_t n_keys = n_past + t + 1;  // causal: keys up to and including this position
      const float* qt = q + t * s.q_stride + h * hd;
      std::copy(qt, qt + hd, qh.begin());
      if (round_f16) RoundToF16(qh.data(), hd, halves);
      const int64_t kv_off = (h / group) * hd;
      Scores(qh.data(), k_cache + kv_off * s.k_stride, s.k_stride, hd, n_keys, scale, scores.data());
      float mx = -INFINITY;
      for (int64_t p = 0; p < n_keys; ++p) mx = std::max(mx, scores[static_cast<size_t>(p)]);
      float sum = 0;
      for (int64_t p = 0; p < n_keys; ++p) sum += (scores[static_cast<size_t>(p)] = std::exp(scores[static_cast<size_t>(p)] - mx));
      float* o = out + t * s.q_stride + h * hd;
      for (int64_t i = 0; i < hd; ++i) o[i] = 0;
      for (int64_t p = 0; p < n_keys; ++p) scores[static_cast<size_t>(p)] /= sum;  // the weights
      if (round_f16) RoundToF16(scores.data(), n_keys, halves);
      for (int64_t p = 0; p < n_keys; ++p) AddScaled(scores[static_cast<size_t>(p)], v_cache + p * s.v_stride + kv_off, o, hd);
    }
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {

HWY_EXPORT(AttentionTasks);

void attention(const float* q, int64_t n_tokens, int64_t n_past, const float* k_cache, const float* v_cache,
               const AttentionShape& shape, bool round_f16, float* out, int threads) {
  HWY_DYNAMIC_DISPATCH(AttentionTasks)(q, n_tokens, n_past, k_cache, v_cache, shape, round_f16, out, threads);
}

}  // namespace lowbit
#endif  // HWY_ONCE
