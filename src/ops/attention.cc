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
// lanes hold keys, kV vectors of them at once (independent add chains, so the adds' latency overlaps).
template <int kV>
HWY_INLINE void ScoreVectors(const float* q, const float* k, int64_t k_stride, int64_t dim, float scale, float* scores) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  hn::Vec<decltype(d)> acc[kV];
  for (auto& a : acc) a = hn::Zero(d);
  for (int64_t i = 0; i < dim; ++i) {
    const auto qi = hn::Set(d, q[i]);
#pragma GCC unroll 4  // the accumulators stay in registers only unrolled (-O2 kept them in memory)
    for (int j = 0; j < kV; ++j) acc[j] = hn::Add(acc[j], hn::Mul(qi, hn::LoadU(d, k + i * k_stride + j * N)));
  }
  for (int j = 0; j < kV; ++j) hn::StoreU(hn::Mul(acc[j], hn::Set(d, scale)), d, scores + j * N);
}
HWY_INLINE void Scores(const float* q, const float* k, int64_t k_stride, int64_t dim, int64_t n, float scale,
                       float* scores) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>()));
  int64_t p = 0;
  for (; p + 4 * N <= n; p += 4 * N) ScoreVectors<4>(q, k + p, k_stride, dim, scale, scores + p);
  for (; p + N <= n; p += N) ScoreVectors<1>(q, k + p, k_stride, dim, scale, scores + p);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  // The last keys in part of a vector: AVX2's and AVX-512's masked loads read nothing past them (Highway's SSE4
  // MaskedLoad loads the whole vector, which may fault).
  if (p < n) {
    const hn::ScalableTag<float> d;
    const auto keys = hn::FirstN(d, static_cast<size_t>(n - p));
    auto acc = hn::Zero(d);
    for (int64_t i = 0; i < dim; ++i) acc = hn::Add(acc, hn::Mul(hn::Set(d, q[i]), hn::MaskedLoad(keys, d, k + i * k_stride + p)));
    hn::BlendedStore(hn::Mul(acc, hn::Set(d, scale)), keys, d, scores + p);
    return;
  }
#endif
  for (; p < n; ++p) {
    float s = 0;
    for (int64_t i = 0; i < dim; ++i) s += q[i] * k[i * k_stride + p];
    scores[p] = s * scale;
  }
}

// out[i] = sum over p < n of w[p] * v[p][i] (v rows v_stride apart), each summed in order of p from zero (a
// multiply, then an add: the plain loop's rounding); kV vectors of out at once, kept in registers over the keys.
template <int kV>
HWY_INLINE void WeightedVectors(const float* w, const float* v, int64_t v_stride, int64_t n, float* out) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  hn::Vec<decltype(d)> acc[kV];
  for (auto& a : acc) a = hn::Zero(d);
  for (int64_t p = 0; p < n; ++p) {
    const auto wp = hn::Set(d, w[p]);
#pragma GCC unroll 4
    for (int j = 0; j < kV; ++j) acc[j] = hn::Add(acc[j], hn::Mul(wp, hn::LoadU(d, v + p * v_stride + j * N)));
  }
  for (int j = 0; j < kV; ++j) hn::StoreU(acc[j], d, out + j * N);
}
HWY_INLINE void WeightedSum(const float* w, const float* v, int64_t v_stride, int64_t n, float* out, int64_t dim) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>()));
  int64_t i = 0;
  for (; i + 4 * N <= dim; i += 4 * N) WeightedVectors<4>(w, v + i, v_stride, n, out + i);
  for (; i + N <= dim; i += N) WeightedVectors<1>(w, v + i, v_stride, n, out + i);
  for (; i < dim; ++i) {
    float o = 0;
    for (int64_t p = 0; p < n; ++p) o += w[p] * v[p * v_stride + i];
    out[i] = o;
  }
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
  // One task per (token, head), dealt out in turn (thread i takes tasks i, i + n, ...): a causal batch's later
  // tokens have more keys, so contiguous shares left the first thread with a quarter of the work. Each task's
  // arithmetic is the same on any thread.
  const int64_t n_tasks = n_tokens * s.n_head;
  parallel_region(static_cast<int>(std::min<int64_t>(threads, n_tasks)), [&](int me, int n_threads) {
    std::vector<float> scores(static_cast<size_t>(n_past + n_tokens)), qh(static_cast<size_t>(hd));
    std::vector<uint16_t> halves;
    for (int64_t task = me; task < n_tasks; task += n_threads) {
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
      for (int64_t p = 0; p < n_keys; ++p) scores[static_cast<size_t>(p)] /= sum;  // the weights
      if (round_f16) RoundToF16(scores.data(), n_keys, halves);
      WeightedSum(scores.data(), v_cache + kv_off, s.v_stride, n_keys, out + t * s.q_stride + h * hd, hd);
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
