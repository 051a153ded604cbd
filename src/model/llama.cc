#include "model/llama.h"

#include <cmath>

#include "model/tensor_layout.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/packed_weight.h"
#include "ops/rope.h"
#include "util/error.h"
#include "util/parallel.h"

namespace lowbit {

struct LlamaModel::Layer {
  std::vector<float> attn_norm, ffn_norm, q_norm, k_norm, bq, bk, bv;
  Tensor wq, wk, wv, wo, w_gate, w_up, w_down;
};

namespace {

std::vector<float> load_vector(const ModelSource& src, const std::string& name) {
  return tensor_to_f32(src.tensor(name));
}

// fn(t) for every token t < n, over the threads when there are several tokens (a prompt batch): the per-token
// work between the matmuls (norms, rotary, SwiGLU, residuals) is otherwise a serial share of prompt time that one
// thread does while the others wait. Each token's arithmetic is the same on any thread.
template <typename Fn>
void for_each_token(int64_t n, int threads, const Fn& fn) {
  parallel_for(n, threads, fn);
}

}  // namespace

LlamaModel::LlamaModel(std::shared_ptr<const ModelSource> source, const EngineOptions& options)
    : source_(std::move(source)), config_(source_->config()), threads_(std::max(1, options.threads)),
      round_(options.ggml_rounding) {
  const ModelSource& src = *source_;
  const std::string& where = src.path();
  config_.validate(where);
  check(config_.n_embd_head() % 2 == 0, where, "head size {} is odd; rotary embedding needs pairs", config_.n_embd_head());
  // Every expected tensor must be there with the expected shape, in a type that converts to float.
  for (const auto& want : llama_tensor_layout(config_)) {
    check(src.has_tensor(want.name), where, "missing tensor '{}'", want.name);
    const TensorInfo& got = src.tensor_info(want.name);
    bool same = true;
    for (int d = 0; d < kMaxDims; ++d) same &= got.ne[d] == want.ne[d];
    check(same, where, "tensor '{}' has shape {}, the config needs {}", want.name, got.shape_string(), want.shape_string());
    const TypeTraits& tt = type_traits(got.type);
    check((tt.is_float || tt.is_quantized) && tt.to_float, where, "tensor '{}' has type {}, not a float or quant type",
          want.name, tt.name);
  }
  // The cache is allocated from n_ctx: refuse sizes no machine could hold rather than die in the allocator.
  constexpr int64_t kMaxCtx = int64_t{1} << 22;
  check(options.n_ctx >= 0 && options.n_ctx <= kMaxCtx, "n_ctx", "{} is outside 0..{}", options.n_ctx, kMaxCtx);
  n_ctx_ = options.n_ctx > 0 ? options.n_ctx : std::min<int64_t>(config_.n_ctx_train > 0 ? config_.n_ctx_train : 2048, 4096);
  token_embd_ = src.tensor("token_embd.weight");
  // Matmul weights in the kernels' interleaved layout (ops/packed_weight.h); a tied head gets its own copy, the
  // embedding rows are still looked up in the source.
  output_ = pack_for_matmul(config_.tied_embeddings ? token_embd_ : src.matmul_tensor("output.weight"));
  output_norm_ = load_vector(src, "output_norm.weight");

  const int64_t hd = config_.n_embd_head();
  std::vector<float> freq_factors;
  if (src.has_tensor("rope_freqs.weight")) {
    const TensorInfo& info = src.tensor_info("rope_freqs.weight");
    check(info.n_elements() == hd / 2, where, "tensor 'rope_freqs.weight' has shape {}, the config needs [{}]",
          info.shape_string(), hd / 2);
    freq_factors = load_vector(src, "rope_freqs.weight");
  }
  else if (config_.rope.scaling == RopeScaling::Llama3) freq_factors = llama3_rope_factors(config_);
  rope_inv_freq_ = rope_inv_freq(hd, config_.rope, freq_factors);

  layers_.resize(static_cast<size_t>(config_.n_layer));
  for (int64_t i = 0; i < config_.n_layer; ++i) load_layer(i);
  kv_cache_ = KvCache(config_.n_layer, n_ctx_, config_.n_head_kv, hd, round_);  // F16 with ggml rounding
}

void LlamaModel::load_layer(int64_t i) {
  const ModelSource& src = *source_;
  Layer& l = layers_[static_cast<size_t>(i)];
  const std::string p = "blk." + std::to_string(i) + ".";
  l.attn_norm = load_vector(src, p + "attn_norm.weight");
  l.ffn_norm = load_vector(src, p + "ffn_norm.weight");
  l.wq = pack_for_matmul(src.matmul_tensor(p + "attn_q.weight"));
  l.wk = pack_for_matmul(src.matmul_tensor(p + "attn_k.weight"));
  l.wv = pack_for_matmul(src.matmul_tensor(p + "attn_v.weight"));
  l.wo = pack_for_matmul(src.matmul_tensor(p + "attn_output.weight"));
  l.w_gate = pack_for_matmul(src.matmul_tensor(p + "ffn_gate.weight"));
  l.w_up = pack_for_matmul(src.matmul_tensor(p + "ffn_up.weight"));
  l.w_down = pack_for_matmul(src.matmul_tensor(p + "ffn_down.weight"));
  if (config_.attn_qkv_bias) {
    l.bq = load_vector(src, p + "attn_q.bias");
    l.bk = load_vector(src, p + "attn_k.bias");
    l.bv = load_vector(src, p + "attn_v.bias");
  }
  if (config_.attn_qk_norm) {
    l.q_norm = load_vector(src, p + "attn_q_norm.weight");
    l.k_norm = load_vector(src, p + "attn_k_norm.weight");
  }
}

LlamaModel::~LlamaModel() = default;

double LlamaModel::weight_bytes_per_token() const {
  double b = static_cast<double>(output_.info.n_bytes()) + static_cast<double>(row_bytes(token_embd_.type(), config_.n_embd));
  for (const auto& l : layers_)
    for (const Tensor* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      b += static_cast<double>(t->info.n_bytes());
  return b;
}

void LlamaModel::mm(const Tensor& w, const float* x, int64_t n_tokens, float* y) { mm({{&w, y}}, x, n_tokens); }

void LlamaModel::mm(std::initializer_list<MatmulTarget> targets, const float* x, int64_t n_tokens) {
  if (observer_)
    for (const MatmulTarget& t : targets) observer_(*t.w, x, n_tokens);
  matmul_shared_input(std::span<const MatmulTarget>(targets.begin(), targets.size()), x, n_tokens, threads_, round_);
}

void LlamaModel::attention(const Layer&, int64_t layer, const float* q, int64_t n_tokens, int64_t n_past, float* out) {
  kv_cache_.attend(layer, q, n_tokens, n_past, config_.n_head, round_, out, threads_);
}

void LlamaModel::embed(std::span<const int32_t> tokens, float* x) const {
  const int64_t dim = config_.n_embd;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const int32_t id = tokens[t];
    check(id >= 0 && id < config_.n_vocab, "eval", "token id {} is outside the vocabulary of {}", id, config_.n_vocab);
    dequantize_row(token_embd_, id, x + static_cast<int64_t>(t) * dim);
  }
}

void LlamaModel::reload_layer(int64_t il) { load_layer(il); }

void LlamaModel::forward_layer(int64_t il, float* x_io, int64_t n, int64_t n_past) {
  check(n > 0 && n_past >= 0 && n_past + n <= n_ctx_, "eval", "positions {}..{} exceed the context of {} tokens",
        n_past, n_past + n - 1, n_ctx_);
  const ModelConfig& c = config_;
  const int64_t dim = c.n_embd, q_dim = c.n_embd_q(), kv_dim = c.n_embd_kv(), hd = c.n_embd_head(), ff = c.n_ff;
  const size_t nx = static_cast<size_t>(n * dim);
  LayerBuffers& buf = buffers_;
  const auto at_least = [](std::vector<float>& v, int64_t size) -> std::vector<float>& {
    if (v.size() < static_cast<size_t>(size)) v.resize(static_cast<size_t>(size));
    return v;
  };
  std::vector<float> &xb = at_least(buf.xb, n * dim), &q = at_least(buf.q, n * q_dim), &k = at_least(buf.k, n * kv_dim),
                     &v = at_least(buf.v, n * kv_dim), &att = at_least(buf.att, n * q_dim), &proj = at_least(buf.proj, n * dim),
                     &gate = at_least(buf.gate, n * ff), &up = at_least(buf.up, n * ff);
  float* x = x_io;
  const Layer& l = layers_[static_cast<size_t>(il)];
  // attention block
  for_each_token(n, threads_, [&](int64_t t) { rms_norm(x + t * dim, l.attn_norm.data(), dim, c.norm_eps, xb.data() + t * dim); });
  mm({{&l.wq, q.data()}, {&l.wk, k.data()}, {&l.wv, v.data()}}, xb.data(), n);
  for_each_token(n, threads_, [&](int64_t t) {
    float* qt = q.data() + t * q_dim;
    float* kt = k.data() + t * kv_dim;
    float* vt = v.data() + t * kv_dim;
    if (c.attn_qkv_bias) {
      for (int64_t i = 0; i < q_dim; ++i) qt[i] += l.bq[static_cast<size_t>(i)];
      for (int64_t i = 0; i < kv_dim; ++i) kt[i] += l.bk[static_cast<size_t>(i)], vt[i] += l.bv[static_cast<size_t>(i)];
    }
    const int64_t pos = n_past + t;
    thread_local std::vector<float> cos_sin;
    cos_sin.resize(static_cast<size_t>(hd));
    rope_angles(hd, pos, rope_inv_freq_.data(), cos_sin.data());  // once for the token's heads
    if (c.attn_qk_norm) {
      for (int64_t h = 0; h < c.n_head; ++h) rms_norm(qt + h * hd, l.q_norm.data(), hd, c.norm_eps, qt + h * hd);
      for (int64_t h = 0; h < c.n_head_kv; ++h) rms_norm(kt + h * hd, l.k_norm.data(), hd, c.norm_eps, kt + h * hd);
    }
    rope_rotate_heads(qt, c.n_head, hd, cos_sin.data(), c.rope.neox);
    rope_rotate_heads(kt, c.n_head_kv, hd, cos_sin.data(), c.rope.neox);
    kv_cache_.store(il, pos, kt, vt);  // in F16 with ggml rounding, as llama.cpp's default KV cache
  });
  attention(l, il, q.data(), n, n_past, att.data());
  mm(l.wo, att.data(), n, proj.data());
  // residual, then the feed-forward block (SwiGLU)
  for_each_token(n, threads_, [&](int64_t t) {
    for (int64_t i = t * dim; i < (t + 1) * dim; ++i) x[i] += proj[static_cast<size_t>(i)];
    rms_norm(x + t * dim, l.ffn_norm.data(), dim, c.norm_eps, xb.data() + t * dim);
  });
  mm({{&l.w_gate, gate.data()}, {&l.w_up, up.data()}}, xb.data(), n);
  for_each_token(n, threads_, [&](int64_t t) { swiglu(gate.data() + t * ff, up.data() + t * ff, ff); });
  mm(l.w_down, gate.data(), n, proj.data());
  for (size_t i = 0; i < nx; ++i) x[i] += proj[i];
}

void LlamaModel::eval(std::span<const int32_t> tokens, int64_t n_past, float* logits, bool all_logits) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  check(n > 0, "eval", "no tokens");
  check(n_past >= 0 && n_past + n <= n_ctx_, "eval", "positions {}..{} exceed the context of {} tokens", n_past,
        n_past + n - 1, n_ctx_);
  const int64_t dim = config_.n_embd;
  std::vector<float> x(static_cast<size_t>(n * dim));
  embed(tokens, x.data());
  for (int64_t il = 0; il < config_.n_layer; ++il) forward_layer(il, x.data(), n, n_past);
  const int64_t first = all_logits ? 0 : n - 1;
  head(x.data() + first * dim, n - first, logits);
}

void LlamaModel::head(const float* x, int64_t n, float* logits) {
  const int64_t dim = config_.n_embd;
  std::vector<float> xb(static_cast<size_t>(n * dim));
  for (int64_t t = 0; t < n; ++t) rms_norm(x + t * dim, output_norm_.data(), dim, config_.norm_eps, xb.data() + t * dim);
  mm(output_, xb.data(), n, logits);
}

}  // namespace lowbit
