#include "model/kv_cache.h"

#include <algorithm>

#include "core/float_rows.h"

namespace lowbit {

KvCache::KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim, bool f16)
    : n_head_kv_(n_head_kv), head_dim_(head_dim), positions_((n_ctx + kKeyBlock - 1) / kKeyBlock * kKeyBlock),
      head_values_(positions_ * head_dim), f16_(f16) {
  const auto n = static_cast<size_t>(n_layer * n_head_kv * head_values_);
  if (f16) k16_.assign(n, 0), v16_.assign(n, 0);
  else k32_.assign(n, 0.0f), v32_.assign(n, 0.0f);
}

// Each head's K values go to one lane of the position's key block, a row per dimension; its V values to the
// position's row.
template <class C>
static void store_position(C* k_layer, C* v_layer, int64_t n_head_kv, int64_t head_dim, int64_t head_values, int64_t pos,
                           const C* k, const C* v) {
  for (int64_t g = 0; g < n_head_kv; ++g) {
    C* lane = k_layer + g * head_values + pos / kKeyBlock * head_dim * kKeyBlock + pos % kKeyBlock;
    for (int64_t i = 0; i < head_dim; ++i) lane[i * kKeyBlock] = k[g * head_dim + i];
    std::copy_n(v + g * head_dim, head_dim, v_layer + g * head_values + pos * head_dim);
  }
}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v) {
  const size_t at = layer_offset(layer);
  if (!f16_) return store_position(k32_.data() + at, v32_.data() + at, n_head_kv_, head_dim_, head_values_, pos, k, v);
  const int64_t n = n_head_kv_ * head_dim_;
  thread_local std::vector<uint16_t> kh, vh;
  kh.resize(static_cast<size_t>(n));
  vh.resize(static_cast<size_t>(n));
  f32_to_f16_row(k, kh.data(), n);
  f32_to_f16_row(v, vh.data(), n);
  store_position(k16_.data() + at, v16_.data() + at, n_head_kv_, head_dim_, head_values_, pos, kh.data(), vh.data());
}

void KvCache::attend(int64_t layer, const float* q, int64_t n_tokens, int64_t n_past, int64_t n_head, bool round_f16,
                     float* out, int threads) const {
  const size_t at = layer_offset(layer);
  const AttentionShape shape{n_head,     n_head_kv_, head_dim_,    n_head * head_dim_, head_dim_ * kKeyBlock,
                             head_values_, head_dim_,  head_values_};
  if (f16_) attention(q, n_tokens, n_past, k16_.data() + at, v16_.data() + at, shape, out, threads);
  else attention(q, n_tokens, n_past, k32_.data() + at, v32_.data() + at, shape, round_f16, out, threads);
}

}  // namespace lowbit
