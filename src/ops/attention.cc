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
#include "ops/elementwise.h"
#include "util/parallel.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Query heads that share a KV head are computed kH at a time (a block of up to kHeadBlock), so each key and value
// vector loaded serves all of them. Within a head nothing changes: every lane's sum runs in the same order.
constexpr int kHeadBlock = 4;

// acc[h][j] = sum over r < n of a[h][r] * b[r][j] (a rows a_stride apart, b rows b_stride apart, column j the
// j-th vector of a b row), each summed in order of r from zero (a multiply, then an add: the plain loop's
// rounding): kH rows of scalars against kV vectors, each vector loaded once for all kH rows, every sum its own
// add chain (so the adds' latency overlaps).
// `load(d, p)` reads each vector (LoadU, or a masked load for a row's last keys).
template <int kH, int kV, class D, class Load>
HWY_INLINE void RowsTimesVectors(D d, const float* a, int64_t a_stride, const float* b, int64_t b_stride, int64_t n,
                                 hn::Vec<D> (&acc)[kH][kV], Load load) {
  const size_t N = hn::Lanes(d);
  for (auto& row : acc)
    for (auto& x : row) x = hn::Zero(d);
  for (int64_t r = 0; r < n; ++r) {
    hn::Vec<D> column[kV];
#pragma GCC unroll 4  // the accumulators stay in registers only unrolled (-O2 kept them in memory)
    for (int j = 0; j < kV; ++j) column[j] = load(d, b + r * b_stride + j * N);
#pragma GCC unroll 4
    for (int h = 0; h < kH; ++h) {
      const auto ahr = hn::Set(d, a[h * a_stride + r]);
#pragma GCC unroll 4
      for (int j = 0; j < kV; ++j) acc[h][j] = hn::Add(acc[h][j], hn::Mul(ahr, column[j]));
    }
  }
}

// scores[h][p] = sum over i of q[h][i] * k[i][p] for p < n (q rows `dim` apart, k rows k_stride apart, score rows
// s_stride apart), then times the scale: the lanes hold keys, kV vectors of them for kH heads.
template <int kH, int kV>
HWY_INLINE void ScoreVectors(const float* q, const float* k, int64_t k_stride, int64_t dim, float scale, float* scores,
                             int64_t s_stride) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  hn::Vec<decltype(d)> acc[kH][kV];
  RowsTimesVectors(d, q, dim, k, k_stride, dim, acc, [](auto dd, const float* p) { return hn::LoadU(dd, p); });
  for (int h = 0; h < kH; ++h)
    for (int j = 0; j < kV; ++j) hn::StoreU(hn::Mul(acc[h][j], hn::Set(d, scale)), d, scores + h * s_stride + j * N);
}
template <int kH>
HWY_INLINE void Scores(const float* q, const float* k, int64_t k_stride, int64_t dim, int64_t n, float scale,
                       float* scores, int64_t s_stride) {
  constexpr int kV = kH == 1 ? 4 : 2;
  const int64_t N = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>()));
  int64_t p = 0;
  for (; p + kV * N <= n; p += kV * N) ScoreVectors<kH, kV>(q, k + p, k_stride, dim, scale, scores + p, s_stride);
  for (; p + N <= n; p += N) ScoreVectors<kH, 1>(q, k + p, k_stride, dim, scale, scores + p, s_stride);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  // The last keys in part of a vector: AVX2's and AVX-512's masked loads read nothing past them (Highway's SSE4
  // MaskedLoad loads the whole vector, which may fault).
  if (p < n) {
    const hn::ScalableTag<float> d;
    const auto valid = hn::FirstN(d, static_cast<size_t>(n - p));
    hn::Vec<decltype(d)> acc[kH][1];
    RowsTimesVectors(d, q, dim, k + p, k_stride, dim, acc, [&](auto dd, const float* at) { return hn::MaskedLoad(valid, dd, at); });
    for (int h = 0; h < kH; ++h) hn::BlendedStore(hn::Mul(acc[h][0], hn::Set(d, scale)), valid, d, scores + h * s_stride + p);
    return;
  }
#endif
  for (; p < n; ++p)
    for (int h = 0; h < kH; ++h) {
      float s = 0;
      for (int64_t i = 0; i < dim; ++i) s += q[h * dim + i] * k[i * k_stride + p];
      scores[h * s_stride + p] = s * scale;
    }
}

// out[h][i] = sum over p < n of w[h][p] * v[p][i] (w rows w_stride apart, v rows v_stride apart, out rows `dim`
// apart): kV vectors of out for kH heads, kept in registers over the keys.
template <int kH, int kV>
HWY_INLINE void WeightedVectors(const float* w, int64_t w_stride, const float* v, int64_t v_stride, int64_t n, float* out,
                                int64_t dim) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  hn::Vec<decltype(d)> acc[kH][kV];
  RowsTimesVectors(d, w, w_stride, v, v_stride, n, acc, [](auto dd, const float* p) { return hn::LoadU(dd, p); });
  for (int h = 0; h < kH; ++h)
    for (int j = 0; j < kV; ++j) hn::StoreU(acc[h][j], d, out + h * dim + j * N);
}
template <int kH>
HWY_INLINE void WeightedSum(const float* w, int64_t w_stride, const float* v, int64_t v_stride, int64_t n, float* out,
                            int64_t dim) {
  constexpr int kV = kH == 1 ? 4 : 2;
  const int64_t N = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>()));
  int64_t i = 0;
  for (; i + kV * N <= dim; i += kV * N) WeightedVectors<kH, kV>(w, w_stride, v + i, v_stride, n, out + i, dim);
  for (; i + N <= dim; i += N) WeightedVectors<kH, 1>(w, w_stride, v + i, v_stride, n, out + i, dim);
  for (; i < dim; ++i)
    for (int h = 0; h < kH; ++h) {
      float o = 0;
      for (int64_t p = 0; p < n; ++p) o += w[h * w_stride + p] * v[p * v_stride + i];
      out[h * dim + i] = o;
    }
}

void AttentionTasks(const float* q, int64_t n_tokens, int64_t n_past, const float* k_cache, const float* v_cache,
                    const AttentionShape& s, bool round_f16, float* out, int threads) {
  const int64_t hd = s.head_dim, group = s.n_head / s.n_head_kv, n_ctx = n_past + n_tokens;
  const int64_t blocks = (group + kHeadBlock - 1) / kHeadBlock;  // head blocks per KV head
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // One task per (token, block of heads sharing a KV head), dealt out in turn (thread i takes tasks i, i + n, ...):
  // a causal batch's later tokens have more keys, so contiguous shares left the first thread with a quarter of the
  // work. Each task's arithmetic is the same on any thread.
  const int64_t n_tasks = n_tokens * s.n_head_kv * blocks;
  // A token's heads at a short context are a few microseconds of work, less than a second thread costs: count it
  // as the keys and values every query head reads (a prompt's tokens have plenty).
  const auto bytes_read = static_cast<size_t>(s.n_head * n_ctx * hd * 2) * sizeof(float);
  const int most = n_tokens == 1 ? threads_for_bytes(bytes_read, threads) : threads;
  parallel_region(static_cast<int>(std::min<int64_t>(most, n_tasks)), [&](int me, int n_threads) {
    std::vector<float> scores(static_cast<size_t>(kHeadBlock * n_ctx)), qh(static_cast<size_t>(kHeadBlock * hd));
    for (int64_t task = me; task < n_tasks; task += n_threads) {
      const int64_t t = task / (s.n_head_kv * blocks), kv_head = task / blocks % s.n_head_kv, block = task % blocks;
      const int64_t h0 = kv_head * group + block * kHeadBlock, n_heads = std::min<int64_t>(kHeadBlock, group - block * kHeadBlock);
      const int64_t n_keys = n_past + t + 1;  // causal: keys up to and including this position
      const float* qt = q + t * s.q_stride + h0 * hd;
      std::copy(qt, qt + n_heads * hd, qh.begin());  // the block's heads are adjacent in q
      if (round_f16) round_through_f16(qh.data(), n_heads * hd);
      const float* k = k_cache + kv_head * hd * s.k_stride;
      const float* v = v_cache + kv_head * hd;
      float* o = out + t * s.q_stride + h0 * hd;
      if (n_heads == kHeadBlock) Scores<kHeadBlock>(qh.data(), k, s.k_stride, hd, n_keys, scale, scores.data(), n_ctx);
      else
        for (int64_t h = 0; h < n_heads; ++h) Scores<1>(qh.data() + h * hd, k, s.k_stride, hd, n_keys, scale, scores.data() + h * n_ctx, n_ctx);
      for (int64_t h = 0; h < n_heads; ++h) {
        float* w = scores.data() + h * n_ctx;
        softmax(w, n_keys);  // the weights
        if (round_f16) round_through_f16(w, n_keys);
      }
      if (n_heads == kHeadBlock) WeightedSum<kHeadBlock>(scores.data(), n_ctx, v, s.v_stride, n_keys, o, hd);
      else
        for (int64_t h = 0; h < n_heads; ++h) WeightedSum<1>(scores.data() + h * n_ctx, n_ctx, v, s.v_stride, n_keys, o + h * hd, hd);
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
