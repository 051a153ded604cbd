#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/float_formats.h"
#include "core/float_rows.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "util/parallel.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The cache's values as floats: F32 as they are, F16 (llama.cpp's default cache type) converted exactly, so the
// sums below see the same floats from either cache.
template <class D>
HWY_INLINE hn::Vec<D> LoadCache(D d, const float* p) {
  return hn::LoadU(d, p);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadCache(D d, const uint16_t* p) {
  return hn::PromoteTo(d, hn::LoadU(hn::Rebind<hwy::float16_t, D>(), reinterpret_cast<const hwy::float16_t*>(p)));
}
inline float CacheValue(float v) { return v; }
inline float CacheValue(uint16_t v) { return f16_to_f32(v); }
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// The first n < Lanes(d) values at p (the last keys so far in a block, for ScoreTail), zeros after, reading nothing
// past them; on AVX2 from an F16 cache, whatever the block holds after them (below).
template <class D, class C>
HWY_INLINE hn::Vec<D> LoadCacheFirst(D d, const C* p, size_t n) {
  // AVX2's and AVX-512's masked loads (Highway's SSE4 MaskedLoad loads the whole vector, which may fault).
  if constexpr (std::is_same_v<C, float>) {
    return hn::MaskedLoad(hn::FirstN(d, n), d, p);
  } else if constexpr (HWY_TARGET <= HWY_AVX3) {
    // AVX-512 masks 16-bit lanes too. A copy that stored the halves one by one and loaded them as a vector waited
    // for the stores: with it and ScoreTail inlined, a generated token's attention averaged 9.8 us a layer over 1-32
    // keys, 5.2-5.5 with neither (TinyLlama's heads, F16 cache, -t 1).
    const hn::Rebind<uint16_t, D> d16;
    return hn::PromoteTo(d, hn::BitCast(hn::Rebind<hwy::float16_t, D>(), hn::MaskedLoad(hn::FirstN(d16, n), d16, p)));
  } else {
    // AVX2 has no 16-bit masked load, but the vector lies in one key block, which the cache holds whole
    // (ops/attention.h): the lanes past n are read and their sums never stored (ScoreTail). Through such a copy
    // instead, it had been the one loop in the tiles that stores vectors (attention_tiles_in_registers.sh).
    return LoadCache(d, p);
  }
}
#endif

// Query heads that share a KV head are computed kH at a time (a block of up to kHeadBlock), so each key and value
// vector loaded serves all of them. Within a head nothing changes: every lane's sum runs in the same order.
constexpr int kHeadBlock = 8;
// Vectors of keys (resp. of a head's dimensions) a tile of kH heads takes at once: kH x kV sums, kV loaded
// vectors and a broadcast in registers (AVX-512 32, AVX2 16), and at least eight sums where that fits, as a
// multiply-add waits four cycles for the one before in its chain and two issue per cycle.
template <int kH>
constexpr int ScoreVectorsAtOnce() {
  if (HWY_TARGET <= HWY_AVX3) return kH == 1 ? 8 : kH <= 3 ? 4 : 2;
  return kH <= 2 ? 4 : kH <= 4 ? 2 : 1;
}
template <int kH>
constexpr int ValueVectorsAtOnce() {
  if (HWY_TARGET <= HWY_AVX3) return kH == 1 ? 8 : kH <= 5 ? 4 : 2;  // (a head of 64 dimensions is four vectors)
  return kH <= 2 ? 4 : kH <= 4 ? 2 : 1;
}
// The tiles multiply-add in one rounding (as the plain loops' std::fma), so they need the instruction: the targets
// without it (SSE4 and older) take the plain loops.
constexpr bool kFusedLanes = HWY_NATIVE_FMA;

// How far ahead of its reads attention asks for the cache's lines. A head's keys and values are forward runs
// (model/kv_cache.h), each read once per token from memory at long contexts; against none, alternated token by
// token in one process (r1b-Q4_K_M, 1024 keys, -t 1): 0.5 KiB 1.015x, 1 KiB 1.020x, 4 KiB 1.030-1.034x, 8 KiB
// 1.041x, 16 KiB 1.038x. Past a head's run the lines are the next head's.
constexpr size_t kCacheAheadBytes = 8 * 1024;

// acc[h][j] += sum over r < n of a[h][r] * b[r][j] (a rows a_stride apart; vector j of b's row r at
// b[j] + r * b_stride), each added in order of r by one fused multiply-add (the plain loop's std::fma): kH rows of
// scalars against kV vectors, each vector loaded once for all kH rows, every sum its own chain (so the latencies
// overlap). Against a multiply and an add, whose rounding the plain loops had before (2026-12-07), a tile of 8 heads
// x 2 vectors ran 8.1 instead of 11.2 cycles a key on Zen 5: the adds shared two pipes with the F16 loads'
// conversions and the broadcasts.
// `load(d, p)` reads each vector (LoadCache, or LoadCacheFirst for a row's last keys).
template <int kH, int kV, class D, class C, class Load>
HWY_INLINE void RowsTimesVectors(D d, const float* a, int64_t a_stride, const C* const (&b)[kV], int64_t b_stride,
                                 int64_t n, hn::Vec<D> (&acc)[kH][kV], Load load) {
  for (int64_t r = 0; r < n; ++r) {
    hn::Vec<D> column[kV];
#pragma GCC unroll 8  // the accumulators stay in registers only unrolled (-O2 kept them in memory)
    for (int j = 0; j < kV; ++j) {
      __builtin_prefetch(reinterpret_cast<const char*>(b[j] + r * b_stride) + kCacheAheadBytes);
      column[j] = load(d, b[j] + r * b_stride);
    }
#pragma GCC unroll 8
    for (int h = 0; h < kH; ++h) {
      const auto ahr = hn::Set(d, a[h * a_stride + r]);
#pragma GCC unroll 8
      for (int j = 0; j < kV; ++j) acc[h][j] = hn::MulAdd(ahr, column[j], acc[h][j]);
    }
  }
}

// Key p's value in dimension i of a K cache in key blocks (ops/attention.h): block p / kKeyBlock, row i, lane
// p % kKeyBlock. A vector's keys lie in one block: its lanes divide kKeyBlock.
static_assert(kKeyBlock % HWY_LANES(float) == 0);
template <class C>
HWY_INLINE const C* KeyAt(const C* k, int64_t k_stride, int64_t i, int64_t p) {
  return k + p / kKeyBlock * k_stride + i * kKeyBlock + p % kKeyBlock;
}

// The tiles below are functions of their own (HWY_NOINLINE): inlined into AttentionTasks, GCC kept their sums on
// the stack in that large function (44 adds from memory in the F16 body on AVX-512, 20 in the F32 one, each waiting
// on the store before it), alone it keeps them in registers. Separate processes alternated, r1b-Q4_K_M -t 1:
// 1024 keys 1.07x (rounds 1.01-1.24), 2000 keys 1.12x (1.04-1.14), 0 keys 1.00x; -t 2 at 1024 keys 0.98x (0.97-1.03)
// where two threads read 52 t/s, 1.04x (1.03-1.06) where they read 76-83.

// scores[h][p] = sum over i of q[h][i] * k[i][p] for the kV vectors of keys from p0 (q rows `dim` apart, score
// rows s_stride apart), then times the scale: the lanes hold keys, kV vectors of them for kH heads.
template <int kH, int kV, class C>
HWY_NOINLINE void ScoreVectors(const float* q, const C* k, int64_t k_stride, int64_t p0, int64_t dim, float scale,
                               float* scores, int64_t s_stride) {
  const hn::ScalableTag<float> d;
  const auto N = static_cast<int64_t>(hn::Lanes(d));
  const C* keys[kV];
  for (int j = 0; j < kV; ++j) keys[j] = KeyAt(k, k_stride, 0, p0 + j * N);
  hn::Vec<decltype(d)> acc[kH][kV];
  for (auto& row : acc)
    for (auto& x : row) x = hn::Zero(d);
  RowsTimesVectors(d, q, dim, keys, kKeyBlock, dim, acc, [](auto dd, const C* p) { return LoadCache(dd, p); });
  for (int h = 0; h < kH; ++h)
    for (int j = 0; j < kV; ++j) hn::StoreU(hn::Mul(acc[h][j], hn::Set(d, scale)), d, scores + h * s_stride + p0 + j * N);
}
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// The same for the last `rest` keys from p0, fewer than a vector (a function of its own for the same reason).
template <int kH, class C>
HWY_NOINLINE void ScoreTail(const float* q, const C* k, int64_t k_stride, int64_t p0, size_t rest, int64_t dim,
                            float scale, float* scores, int64_t s_stride) {
  const hn::ScalableTag<float> d;
  const C* keys[1] = {KeyAt(k, k_stride, 0, p0)};
  hn::Vec<decltype(d)> acc[kH][1];
#pragma GCC unroll 8  // else AVX2's float tile kept its sums on the stack (attention_tiles_in_registers.sh)
  for (auto& row : acc) row[0] = hn::Zero(d);
  RowsTimesVectors(d, q, dim, keys, kKeyBlock, dim, acc, [&](auto dd, const C* at) { return LoadCacheFirst(dd, at, rest); });
#pragma GCC unroll 8
  for (int h = 0; h < kH; ++h) hn::BlendedStore(hn::Mul(acc[h][0], hn::Set(d, scale)), hn::FirstN(d, rest), d, scores + h * s_stride + p0);
}
#endif
template <int kH, class C>
HWY_INLINE void Scores(const float* q, const C* k, int64_t k_stride, int64_t dim, int64_t n, float scale,
                       float* scores, int64_t s_stride) {
  int64_t p = 0;
  if constexpr (kFusedLanes) {
    constexpr int kV = ScoreVectorsAtOnce<kH>();
    const int64_t N = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>()));
    for (; p + kV * N <= n; p += kV * N) ScoreVectors<kH, kV>(q, k, k_stride, p, dim, scale, scores, s_stride);
    if constexpr (kV > 2)
      for (; p + 2 * N <= n; p += 2 * N) ScoreVectors<kH, 2>(q, k, k_stride, p, dim, scale, scores, s_stride);
    if constexpr (kV > 1)
      for (; p + N <= n; p += N) ScoreVectors<kH, 1>(q, k, k_stride, p, dim, scale, scores, s_stride);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    if (p < n) return ScoreTail<kH>(q, k, k_stride, p, static_cast<size_t>(n - p), dim, scale, scores, s_stride);
#endif
  }
  for (; p < n; ++p)
    for (int h = 0; h < kH; ++h) {
      float s = 0;
      for (int64_t i = 0; i < dim; ++i) s = std::fma(q[h * dim + i], CacheValue(*KeyAt(k, k_stride, i, p)), s);
      scores[h * s_stride + p] = s * scale;
    }
}

// out[h][i] = sum over p < n of w[h][p] * v[p][i] (w rows w_stride apart, v rows v_stride apart, out rows `dim`
// apart): kV vectors of out for kH heads, kept in registers over the keys; `first`: the sums start at zero, else
// they go on from those in out (each still added in order of p).
template <int kH, int kV, class C>
HWY_NOINLINE void WeightedVectors(const float* w, int64_t w_stride, const C* v, int64_t v_stride, int64_t n, bool first,
                                  float* out, int64_t dim) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const C* values[kV];
  for (int j = 0; j < kV; ++j) values[j] = v + j * N;
  hn::Vec<decltype(d)> acc[kH][kV];
  for (int h = 0; h < kH; ++h)
    for (int j = 0; j < kV; ++j) acc[h][j] = first ? hn::Zero(d) : hn::LoadU(d, out + h * dim + j * N);
  RowsTimesVectors(d, w, w_stride, values, v_stride, n, acc, [](auto dd, const C* p) { return LoadCache(dd, p); });
  for (int h = 0; h < kH; ++h)
    for (int j = 0; j < kV; ++j) hn::StoreU(acc[h][j], d, out + h * dim + j * N);
}
// The values' positions go in chunks of this many bytes, each passed over once per group of kV vectors of
// dimensions while it stays in L1. A head's dimensions often take several passes (on AVX-512 four heads' 64 take
// one, eight heads' two, eight heads' 128 four); over a head's whole run, before the chunks, each pass read its
// share of every position's lines from memory.
constexpr int64_t kValueChunkBytes = 16 * 1024;
template <int kH, class C>
HWY_INLINE void WeightedSum(const float* w, int64_t w_stride, const C* v, int64_t v_stride, int64_t n, float* out,
                            int64_t dim) {
  int64_t vector_dims = 0;
  if constexpr (kFusedLanes) {
    constexpr int kV = ValueVectorsAtOnce<kH>();
    const int64_t N = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>()));
    const int64_t chunk = std::max<int64_t>(1, kValueChunkBytes / static_cast<int64_t>(v_stride * sizeof(C)));
    vector_dims = dim / N * N;
    for (int64_t p0 = 0; p0 < n; p0 += chunk) {
      const int64_t m = std::min(chunk, n - p0);
      const float* wp = w + p0;
      const C* vp = v + p0 * v_stride;
      int64_t i = 0;
      const bool first = p0 == 0;
      for (; i + kV * N <= dim; i += kV * N)
        WeightedVectors<kH, kV>(wp, w_stride, vp + i, v_stride, m, first, out + i, dim);
      if constexpr (kV > 4)
        for (; i + 4 * N <= dim; i += 4 * N) WeightedVectors<kH, 4>(wp, w_stride, vp + i, v_stride, m, first, out + i, dim);
      if constexpr (kV > 2)
        for (; i + 2 * N <= dim; i += 2 * N) WeightedVectors<kH, 2>(wp, w_stride, vp + i, v_stride, m, first, out + i, dim);
      if constexpr (kV > 1)
        for (; i < vector_dims; i += N) WeightedVectors<kH, 1>(wp, w_stride, vp + i, v_stride, m, first, out + i, dim);
    }
  }
  for (int64_t i = vector_dims; i < dim; ++i)
    for (int h = 0; h < kH; ++h) {
      float o = 0;
      for (int64_t p = 0; p < n; ++p) o = std::fma(w[h * w_stride + p], CacheValue(v[p * v_stride + i]), o);
      out[h * dim + i] = o;
    }
}

// kH query heads that share a KV head (q: their rows, `dim` apart) over n keys: the scores, then each head's
// softmax (rounded to F16 as ggml rounds the weights, if round_f16), then the weighted sum of the values into out.
template <int kH, class C>
HWY_INLINE void HeadBlock(const float* q, const C* k, int64_t k_stride, const C* v, int64_t v_stride, int64_t dim,
                          int64_t n, float scale, bool round_f16, float* scores, int64_t s_stride, float* out) {
  Scores<kH>(q, k, k_stride, dim, n, scale, scores, s_stride);
  for (int h = 0; h < kH; ++h) {
    float* w = scores + h * s_stride;
    softmax(w, n);  // the weights
    if (round_f16) round_through_f16(w, n);
  }
  WeightedSum<kH>(scores, s_stride, v, v_stride, n, out, dim);
}

// fn(std::integral_constant<int, n>) for n in 1..kHeadBlock: a block of n heads as one tile.
template <class Fn>
HWY_INLINE void WithHeads(int n, const Fn& fn) {
  switch (n) {
    case 1: return fn(std::integral_constant<int, 1>());
    case 2: return fn(std::integral_constant<int, 2>());
    case 3: return fn(std::integral_constant<int, 3>());
    case 4: return fn(std::integral_constant<int, 4>());
    case 5: return fn(std::integral_constant<int, 5>());
    case 6: return fn(std::integral_constant<int, 6>());
    case 7: return fn(std::integral_constant<int, 7>());
    default: return fn(std::integral_constant<int, 8>());
  }
}
static_assert(kHeadBlock == 8, "WithHeads covers 1..8 heads");

template <class C>
void AttentionTasks(const float* q, int64_t n_tokens, int64_t n_past, const C* k_cache, const C* v_cache,
                    const AttentionShape& s, bool round_f16, float* out, int threads) {
  const int64_t hd = s.head_dim, group = s.n_head / s.n_head_kv, n_ctx = n_past + n_tokens;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // A token's heads at a short context are a few microseconds of work, less than a second thread costs: count it
  // as the keys and values every query head reads (a prompt's tokens have plenty), as floats whatever the cache.
  const auto bytes_read = static_cast<size_t>(s.n_head * n_ctx * hd * 2) * sizeof(float);
  const int most = n_tokens == 1 ? threads_for_bytes(bytes_read, threads) : threads;
  // Each KV head's query heads in as few blocks as the tiles take (so its keys and values are read as few times),
  // their sizes at most one apart; more blocks only when there would be fewer tasks than threads (one KV head, one
  // token).
  int64_t blocks = (group + kHeadBlock - 1) / kHeadBlock;
  if (n_tokens * s.n_head_kv * blocks < most)
    blocks = std::min<int64_t>(group, (most + n_tokens * s.n_head_kv - 1) / (n_tokens * s.n_head_kv));
  // One task per (token, block of heads sharing a KV head), dealt out in turn (thread i takes tasks i, i + n, ...):
  // a causal batch's later tokens have more keys, so contiguous shares left the first thread with a quarter of the
  // work. Each task's arithmetic is the same on any thread.
  const int64_t n_tasks = n_tokens * s.n_head_kv * blocks;
  parallel_region(static_cast<int>(std::min<int64_t>(most, n_tasks)), [&](int me, int n_threads) {
    // Kept from call to call (each thread's own): a block's rows of scores are 8 x n_ctx floats, 128 KiB at 4096
    // keys, which a vector made per call zeroed and, past glibc's mmap threshold, mapped afresh every layer.
    thread_local std::vector<float> scores, qh;
    if (scores.size() < static_cast<size_t>(kHeadBlock * n_ctx)) scores.resize(static_cast<size_t>(kHeadBlock * n_ctx));
    if (qh.size() < static_cast<size_t>(kHeadBlock * hd)) qh.resize(static_cast<size_t>(kHeadBlock * hd));
    for (int64_t task = me; task < n_tasks; task += n_threads) {
      const int64_t t = task / (s.n_head_kv * blocks), kv_head = task / blocks % s.n_head_kv, block = task % blocks;
      const Share heads = static_share(group, static_cast<int>(block), static_cast<int>(blocks));
      const int64_t h0 = kv_head * group + heads.begin, n_heads = heads.end - heads.begin;
      const int64_t n_keys = n_past + t + 1;  // causal: keys up to and including this position
      const float* qt = q + t * s.q_stride + h0 * hd;
      std::copy(qt, qt + n_heads * hd, qh.begin());  // the block's heads are adjacent in q
      if (round_f16) round_through_f16(qh.data(), n_heads * hd);
      const C* k = k_cache + kv_head * s.k_head_stride;
      const C* v = v_cache + kv_head * s.v_head_stride;
      float* o = out + t * s.q_stride + h0 * hd;
      const auto block_of = [&](auto size) HWY_ATTR {
        HeadBlock<decltype(size)::value>(qh.data(), k, s.k_stride, v, s.v_stride, hd, n_keys, scale, round_f16,
                                         scores.data(), n_ctx, o);
      };
      WithHeads(static_cast<int>(n_heads), block_of);
    }
  });
}
void AttentionF32(const float* q, int64_t n_tokens, int64_t n_past, const float* k_cache, const float* v_cache,
                  const AttentionShape& s, bool round_f16, float* out, int threads) {
  AttentionTasks(q, n_tokens, n_past, k_cache, v_cache, s, round_f16, out, threads);
}
void AttentionF16(const float* q, int64_t n_tokens, int64_t n_past, const uint16_t* k_cache, const uint16_t* v_cache,
                  const AttentionShape& s, float* out, int threads) {
  AttentionTasks(q, n_tokens, n_past, k_cache, v_cache, s, true, out, threads);
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {

HWY_EXPORT(AttentionF32);
HWY_EXPORT(AttentionF16);

void attention(const float* q, int64_t n_tokens, int64_t n_past, const float* k_cache, const float* v_cache,
               const AttentionShape& shape, bool round_f16, float* out, int threads) {
  HWY_DYNAMIC_DISPATCH(AttentionF32)(q, n_tokens, n_past, k_cache, v_cache, shape, round_f16, out, threads);
}
void attention(const float* q, int64_t n_tokens, int64_t n_past, const uint16_t* k_cache, const uint16_t* v_cache,
               const AttentionShape& shape, float* out, int threads) {
  HWY_DYNAMIC_DISPATCH(AttentionF16)(q, n_tokens, n_past, k_cache, v_cache, shape, out, threads);
}

}  // namespace lowbit
#endif  // HWY_ONCE
