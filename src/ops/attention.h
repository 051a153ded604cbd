// Causal multi-head attention over a KV cache, for n_tokens queries at positions n_past.. (grouped-query heads
// share their KV head). One task per (token, block of up to four heads sharing a KV head, so each key and value
// vector loaded serves them all); each keeps a row of n_keys scores per head and nothing larger, so memory does not
// grow with the batch. Dot products and the weighted sum of values use the widest SIMD the CPU has (Highway); each
// head's sums run in a fixed order, so results do not depend on the thread count or the blocking.
#pragma once

#include <cstdint>

namespace lowbit {

struct AttentionShape {
  int64_t n_head, n_head_kv, head_dim;
  int64_t q_stride;   // floats between tokens in q and out (n_head * head_dim)
  int64_t v_stride;   // floats between positions in the V cache (n_head_kv * head_dim)
  int64_t k_stride;   // floats between dimensions in the transposed K cache (its positions, n_ctx)
};

// q: [n_tokens][q_stride]; k_cache transposed, [n_head_kv * head_dim][k_stride] (so the keys of one dimension
// lie side by side and one vector holds several keys); v_cache [position][v_stride]; positions up to
// n_past + n_tokens; out like q. Every score and every output value is summed in sequence (a score over the
// head's dimensions, an output over the keys), with the vectors across keys resp. dimensions, so the result is
// the same as the plain loops' on every target.
// round_f16: round Q and the softmax weights to F16 before their products, as ggml's F16 KV-cache path does.
void attention(const float* q, int64_t n_tokens, int64_t n_past, const float* k_cache, const float* v_cache,
               const AttentionShape& shape, bool round_f16, float* out, int threads);

}  // namespace lowbit
