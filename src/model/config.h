// The one canonical description of a decoder model, whatever file it came from (GGUF keys, HF config.json,
// llama2.c header). The engine, converters and quantizers read only this.
#pragma once

#include <cstdint>
#include <string>

namespace lowbit {

enum class RopeScaling { None, Linear, Llama3, Yarn };

struct RopeConfig {
  float theta = 10000.0f;
  RopeScaling scaling = RopeScaling::None;
  float factor = 1.0f;              // linear / llama3 / yarn factor
  float low_freq_factor = 1.0f;     // llama3
  float high_freq_factor = 4.0f;    // llama3
  int64_t original_context = 0;     // llama3 / yarn original_max_position_embeddings
  bool neox = false;                // rotate halves (NeoX, Qwen) instead of adjacent pairs (GGUF llama)
};

struct ModelConfig {
  std::string arch = "llama";        // GGUF general.architecture: "llama", "qwen2", "qwen3"
  std::string hf_architecture;       // e.g. "LlamaForCausalLM" (empty when unknown)
  std::string name;                  // general.name
  int64_t n_vocab = 0;
  int64_t n_embd = 0;                // hidden size
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;              // usually n_embd / n_head (Qwen3 sets it explicitly)
  int64_t n_ff = 0;                  // FFN intermediate size
  int64_t n_ctx_train = 0;
  float norm_eps = 1e-5f;
  RopeConfig rope;
  bool tied_embeddings = false;      // output head = token embedding
  bool attn_qkv_bias = false;        // Qwen2
  bool attn_qk_norm = false;         // Qwen3
  int64_t sliding_window = 0;        // Mistral (0 = none); carried, not used by the engine

  int64_t n_embd_head() const { return head_dim > 0 ? head_dim : n_embd / n_head; }
  int64_t n_embd_q() const { return n_embd_head() * n_head; }
  int64_t n_embd_kv() const { return n_embd_head() * n_head_kv; }
  // Throws Error naming `where` if the numbers are inconsistent (zero heads, heads not dividing, ...).
  void validate(const std::string& where) const;
};

}  // namespace lowbit
