// The Llama-family decoder on CPU, read top to bottom in eval(): embedding, then per layer RMSNorm ->
// Q/K/V (+bias for Qwen2, per-head RMSNorm for Qwen3) -> RoPE -> grouped-query attention over the KV cache ->
// output projection -> residual -> RMSNorm -> SwiGLU FFN -> residual; final norm and output head.
// Weights stay in the source's tensors (views of the mapped file) in whatever type they are stored in; only
// norm vectors and biases are copied to float.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include "io/model_source.h"
#include "model/kv_cache.h"
#include "model/language_model.h"
#include "ops/matmul.h"
#include "ops/rope.h"  // llama3_rope_factors, once declared here

namespace lowbit {

struct EngineOptions {
  int64_t n_ctx = 0;  // KV cache positions; 0: the model's training context (at most 4096)
  int threads = 1;
  // Round as llama.cpp's CPU backend does: activations to the type ggml multiplies each weight type with, Q and
  // the softmax weights to F16, an F16 KV cache; so lowbit's figures compare like for like with llama.cpp's.
  // false: plain f32 throughout (for checking the forward pass against exact references).
  bool ggml_rounding = true;
};

class LlamaModel : public LanguageModel {
 public:
  // Checks every tensor's shape against the config; throws Error naming the file and tensor on a mismatch.
  LlamaModel(std::shared_ptr<const ModelSource> source, const EngineOptions& options = {});
  ~LlamaModel() override;
  const ModelConfig& config() const override { return config_; }
  int64_t n_ctx() const override { return n_ctx_; }
  void eval(std::span<const int32_t> tokens, int64_t n_past, float* logits, bool all_logits) override;
  void set_threads(int threads) { threads_ = std::max(1, threads); }
  // Called with every weight matrix and the float activations it is about to multiply (imatrix collection).
  using MatmulObserver = std::function<void(const Tensor& weight, const float* x, int64_t n_tokens)>;
  void set_matmul_observer(MatmulObserver observer) { observer_ = std::move(observer); }
  const ModelSource& source() const { return *source_; }

  // The pieces of eval(), for layer-by-layer calibration (algo/calibration.h): token embeddings into x
  // ([n][n_embd]); one decoder layer applied to x in place (its KV cache entries at n_past.. are written);
  // and re-reading a layer's weights and norms from the source after it changed them.
  void embed(std::span<const int32_t> tokens, float* x) const;
  void forward_layer(int64_t layer, float* x, int64_t n_tokens, int64_t n_past);
  void reload_layer(int64_t layer);
  // The final norm and output head on n hidden states x, logits [n][n_vocab].
  void head(const float* x, int64_t n, float* logits);
  // The tensor the output head multiplies with (output.weight, or token_embd.weight when tied).
  const Tensor& output_tensor() const { return output_; }
  // Bytes of weights read per generated token (every matrix once, plus one embedding row).
  double weight_bytes_per_token() const;
  // Bytes of the KV cache (F16 with ggml rounding, else F32; model/kv_cache.h), and those a token reads from it
  // when it attends to n_keys positions.
  size_t kv_cache_bytes() const { return kv_cache_.bytes(); }
  double kv_bytes_read(double n_keys) const { return static_cast<double>(kv_cache_.bytes_per_position()) * n_keys; }

 private:
  struct Layer;
  void load_layer(int64_t layer);
  void mm(const Tensor& w, const float* x, int64_t n_tokens, float* y);
  // Weights sharing one input, in one pass (ops/matmul.h).
  void mm(std::initializer_list<MatmulTarget> targets, const float* x, int64_t n_tokens);
  void attention(const Layer& l, int64_t layer, const float* q, int64_t n_tokens, int64_t n_past, float* out);
  std::shared_ptr<const ModelSource> source_;
  ModelConfig config_;
  int64_t n_ctx_ = 0;
  int threads_ = 1;
  bool round_ = true;
  Tensor token_embd_, output_;
  std::vector<float> output_norm_;
  std::vector<float> rope_inv_freq_;  // per rotated pair, scaling applied
  std::vector<Layer> layers_;
  KvCache kv_cache_;
  // forward_layer's intermediates, kept from call to call: grown to the largest batch, never zeroed again.
  struct LayerBuffers {
    std::vector<float> xb, q, k, v, att, proj, gate, up;
  } buffers_;
  MatmulObserver observer_;
};

}  // namespace lowbit
