// Every layer's attention keys and values, written position by position and read by ops/attention.h, each KV
// head's in one run: K in blocks of kKeyBlock positions, each transposed ([layer][head][block][head_dim]
// [kKeyBlock], so one vector holds several keys), V by position ([layer][head][position][head_dim]). A head's
// attention so reads two forward streams. In F16 when the engine rounds as ggml does (llama.cpp's default cache
// type: half the memory, and half the bytes each generated token reads from it at long contexts), else in F32.
// Either way attention sees the same floats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ops/attention.h"

namespace lowbit {

class KvCache {
 public:
  KvCache() = default;
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim, bool f16);
  // Position `pos` of `layer`: n_head_kv * head_dim values of k and of v (heads side by side, as the K and V
  // projections give them), rounded to F16 in an F16 cache. Positions are independent, so different threads may
  // store different positions at once.
  void store(int64_t layer, int64_t pos, const float* k, const float* v);
  // Attention of n_tokens queries at positions n_past.. (n_head heads of head_dim each, tokens side by side) over
  // `layer`'s positions up to n_past + n_tokens (ops/attention.h), into `out` shaped like q. An F32 cache rounds Q
  // and the weights to F16 if round_f16, an F16 cache always, as ggml does.
  void attend(int64_t layer, const float* q, int64_t n_tokens, int64_t n_past, int64_t n_head, bool round_f16,
              float* out, int threads) const;
  // The bytes it holds (both K and V, every layer), and those of one position (what attention reads per key).
  size_t bytes() const { return f16_ ? 2 * k16_.size() * sizeof(uint16_t) : 2 * k32_.size() * sizeof(float); }
  size_t bytes_per_position() const { return positions_ > 0 ? bytes() / static_cast<size_t>(positions_) : 0; }

 private:
  size_t layer_offset(int64_t layer) const { return static_cast<size_t>(layer * n_head_kv_ * head_values_); }
  int64_t n_head_kv_ = 0, head_dim_ = 0;
  int64_t positions_ = 0;    // n_ctx rounded up to whole key blocks
  int64_t head_values_ = 0;  // one head's K (and V) values in a layer: positions_ * head_dim
  bool f16_ = false;
  std::vector<float> k32_, v32_;      // the F32 cache
  std::vector<uint16_t> k16_, v16_;   // the F16 cache, as bits
};

}  // namespace lowbit
