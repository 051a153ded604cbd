// Causal multi-head attention over a KV cache, for n_tokens queries at positions n_past.. (grouped-query heads
// share their KV head). One task per (token, block of up to eight heads sharing a KV head, so each key and value
// vector loaded serves them all); each keeps a row of n_keys scores per head and nothing larger, so memory does not
// grow with the batch. Dot products and the weighted sum of values use the widest SIMD the CPU has (Highway); each
// head's sums run in a fixed order, so results do not depend on the thread count or the blocking.
#pragma once

#include <cstdint>

namespace lowbit {

// The K cache holds each KV head's keys in blocks of kKeyBlock positions, each block transposed ([head_dim]
// [kKeyBlock]), so a vector holds several keys of one dimension and a block of keys is one run of values; the last
// block is held whole, whatever the count of keys in it (AVX2 reads an F16 cache's last keys a vector at a time). Fully
// transposed ([dimension][position]) each dimension was a stream of its own, 64 a head, and at 1024 keys
// attention waited on memory (the loads' next instructions held most of its samples, perf).
inline constexpr int64_t kKeyBlock = 16;

// Where things are, in values (floats, or the F16 cache's halves). The strides let a cache keep its heads side by
// side in each block and position, or each head's in one run (model/kv_cache.h).
struct AttentionShape {
  int64_t n_head, n_head_kv, head_dim;
  int64_t q_stride;       // floats between tokens in q and out (n_head * head_dim)
  int64_t k_stride;       // between key blocks of a head in the K cache (at least head_dim * kKeyBlock)
  int64_t k_head_stride;  // between KV heads in the K cache
  int64_t v_stride;       // between positions of a head in the V cache (at least head_dim)
  int64_t v_head_stride;  // between KV heads in the V cache
};

// q: [n_tokens][q_stride]; KV head g's key p, dimension i at
// k_cache[g * k_head_stride + (p / kKeyBlock) * k_stride + i * kKeyBlock + p % kKeyBlock], its value at
// v_cache[g * v_head_stride + p * v_stride + i]; positions up to n_past + n_tokens; out like q. Every score and
// every output value is summed in sequence (a score over the head's dimensions, an output over the keys), each term
// added by one fused multiply-add (std::fma), with the vectors across keys resp. dimensions, so the result is the
// same as the plain loops' on every target.
// round_f16: round Q and the softmax weights to F16 before their products, as ggml's F16 KV-cache path does.
void attention(const float* q, int64_t n_tokens, int64_t n_past, const float* k_cache, const float* v_cache,
               const AttentionShape& shape, bool round_f16, float* out, int threads);
// The same over a cache of F16 bits (llama.cpp's default KV cache type: half the memory, and half the bytes a
// token reads at long contexts), rounding as round_f16: the same result as the F32 cache holding those values.
void attention(const float* q, int64_t n_tokens, int64_t n_past, const uint16_t* k_cache, const uint16_t* v_cache,
               const AttentionShape& shape, float* out, int threads);

}  // namespace lowbit
