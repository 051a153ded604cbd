// Attention of one generated token over an F16 KV cache (model/kv_cache.h, llama.cpp's default cache type), one
// thread: the part of a token that grows with the context.
// - BM_Attention_1B/keys: TinyLlama-1.1B's heads (32 query heads sharing 4 KV heads, 64 dimensions), every one
//   of 22 layers in turn as a token reads them, so the cache (22 x 4 MiB at 4096 keys) comes from memory as in
//   generation, not from the caches (2.6 MiB at 1024 keys, a layer's 128 KiB);
// - BM_Attention_8B/keys: Llama-3-8B's (32 sharing 8, 128 dimensions), 8 layers in turn.
// Bytes processed = the cache bytes read (keys and values of every KV head), so GB/s compares with the memory
// bandwidth; items = keys x query heads, the dot products of the scores.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "model/kv_cache.h"

namespace lowbit {
namespace {

struct HeadShape {
  int64_t n_layer, n_head, n_head_kv, head_dim;
};

void run_attention(benchmark::State& state, const HeadShape& s) {
  const int64_t n_keys = state.range(0), kv_dim = s.n_head_kv * s.head_dim, q_dim = s.n_head * s.head_dim;
  KvCache cache(s.n_layer, n_keys, s.n_head_kv, s.head_dim, /*f16=*/true);
  std::vector<float> k(static_cast<size_t>(kv_dim)), v(k.size());
  for (int64_t layer = 0; layer < s.n_layer; ++layer)
    for (int64_t p = 0; p < n_keys; ++p) {
      for (int64_t i = 0; i < kv_dim; ++i) {
        k[static_cast<size_t>(i)] = std::sin(0.37f * static_cast<float>(i + p + layer));
        v[static_cast<size_t>(i)] = std::cos(0.11f * static_cast<float>(i * p + layer));
      }
      cache.store(layer, p, k.data(), v.data());
    }
  std::vector<float> q(static_cast<size_t>(q_dim)), out(q.size());
  for (int64_t i = 0; i < q_dim; ++i) q[static_cast<size_t>(i)] = std::sin(0.013f * static_cast<float>(i));
  int64_t layer = 0;
  for (auto _ : state) {
    cache.attend(layer, q.data(), 1, n_keys - 1, s.n_head, true, out.data(), 1);
    benchmark::DoNotOptimize(out.data());
    layer = (layer + 1) % s.n_layer;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * n_keys *
                          static_cast<int64_t>(cache.bytes_per_position()) / s.n_layer);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * n_keys * s.n_head);
}

void BM_Attention_1B(benchmark::State& state) { run_attention(state, {22, 32, 4, 64}); }
void BM_Attention_8B(benchmark::State& state) { run_attention(state, {8, 32, 8, 128}); }
BENCHMARK(BM_Attention_1B)->Arg(256)->Arg(1024)->Arg(4096);
BENCHMARK(BM_Attention_8B)->Arg(1024)->Arg(4096);

}  // namespace
}  // namespace lowbit
