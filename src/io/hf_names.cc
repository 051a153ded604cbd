#include "io/hf_names.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <tuple>
#include <string_view>

#include "util/error.h"

namespace lowbit {

namespace {

struct NamePair {
  const char* hf;
  const char* gguf;
};

// Whole-model tensors.
constexpr NamePair kGlobal[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

// Per-layer tensors: "model.layers.N." + hf <-> "blk.N." + gguf.
constexpr NamePair kLayer[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

// Parses a layer number ("0", "17"; no sign, no leading zero) and the rest after its dot.
bool split_layer(std::string_view rest, int64_t& layer, std::string_view& tail) {
  size_t n = 0;
  while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') ++n;
  if (n == 0 || n > 6 || (n > 1 && rest[0] == '0') || n >= rest.size() || rest[n] != '.') return false;
  layer = 0;
  for (size_t i = 0; i < n; ++i) layer = layer * 10 + (rest[i] - '0');
  tail = rest.substr(n + 1);
  return true;
}

TensorInfo info(std::string name, std::initializer_list<int64_t> ne) {
  TensorInfo t;
  t.name = std::move(name);
  t.type = DType::F32;
  t.n_dims = static_cast<int>(ne.size());
  int i = 0;
  for (int64_t d : ne) t.ne[i++] = d;
  return t;
}

}  // namespace

std::optional<std::string> hf_to_gguf_name(const std::string& hf_name, const std::string& where) {
  for (const auto& p : kGlobal)
    if (hf_name == p.hf) return std::string(p.gguf);
  std::string_view name = hf_name;
  if (name.ends_with("rotary_emb.inv_freq")) return std::nullopt;  // a cached buffer, recomputed from the config
  constexpr std::string_view kPrefix = "model.layers.";
  int64_t layer = 0;
  std::string_view tail;
  if (name.starts_with(kPrefix) && split_layer(name.substr(kPrefix.size()), layer, tail)) {
    for (const auto& p : kLayer)
      if (tail == p.hf) return "blk." + std::to_string(layer) + "." + p.gguf;
  }
  fail(where, "tensor '{}' is not a known Llama/Qwen tensor name", hf_name);
}

std::string gguf_to_hf_name(const std::string& gguf_name) {
  for (const auto& p : kGlobal)
    if (gguf_name == p.gguf) return p.hf;
  std::string_view name = gguf_name;
  int64_t layer = 0;
  std::string_view tail;
  if (name.starts_with("blk.") && split_layer(name.substr(4), layer, tail)) {
    for (const auto& p : kLayer)
      if (tail == p.gguf) return "model.layers." + std::to_string(layer) + "." + p.hf;
  }
  fail(gguf_name, "tensor has no Hugging Face name");
}

std::vector<TensorInfo> expected_tensors(const ModelConfig& c) {
  std::vector<TensorInfo> out;
  const int64_t e = c.n_embd, q = c.n_embd_q(), kv = c.n_embd_kv(), ff = c.n_ff;
  out.push_back(info("token_embd.weight", {e, c.n_vocab}));
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    out.push_back(info(b + "attn_norm.weight", {e}));
    out.push_back(info(b + "attn_q.weight", {e, q}));
    if (c.attn_qkv_bias) out.push_back(info(b + "attn_q.bias", {q}));
    out.push_back(info(b + "attn_k.weight", {e, kv}));
    if (c.attn_qkv_bias) out.push_back(info(b + "attn_k.bias", {kv}));
    out.push_back(info(b + "attn_v.weight", {e, kv}));
    if (c.attn_qkv_bias) out.push_back(info(b + "attn_v.bias", {kv}));
    if (c.attn_qk_norm) {
      out.push_back(info(b + "attn_q_norm.weight", {c.n_embd_head()}));
      out.push_back(info(b + "attn_k_norm.weight", {c.n_embd_head()}));
    }
    out.push_back(info(b + "attn_output.weight", {q, e}));
    out.push_back(info(b + "ffn_norm.weight", {e}));
    out.push_back(info(b + "ffn_gate.weight", {e, ff}));
    out.push_back(info(b + "ffn_up.weight", {e, ff}));
    out.push_back(info(b + "ffn_down.weight", {ff, e}));
  }
  out.push_back(info("output_norm.weight", {e}));
  if (!c.tied_embeddings) out.push_back(info("output.weight", {e, c.n_vocab}));
  return out;
}

void sort_hf_state_dict_order(std::vector<std::string>& hf_names) {
  // Position of each per-layer tensor in a decoder layer's state_dict (modules in definition order).
  static constexpr const char* kModuleOrder[] = {
      "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight", "self_attn.k_proj.bias",
      "self_attn.v_proj.weight", "self_attn.v_proj.bias", "self_attn.o_proj.weight", "self_attn.q_norm.weight",
      "self_attn.k_norm.weight", "mlp.gate_proj.weight",  "mlp.up_proj.weight",      "mlp.down_proj.weight",
      "input_layernorm.weight",  "post_attention_layernorm.weight",
  };
  constexpr int64_t kUnknown = std::numeric_limits<int64_t>::max();
  auto key = [&](const std::string& name) -> std::tuple<int64_t, int64_t, std::string> {
    if (name == "model.embed_tokens.weight") return {-1, 0, name};
    if (name == "model.norm.weight") return {kUnknown - 2, 0, name};
    if (name == "lm_head.weight") return {kUnknown - 1, 0, name};
    int64_t layer = 0;
    std::string_view tail;
    if (std::string_view(name).starts_with("model.layers.") &&
        split_layer(std::string_view(name).substr(13), layer, tail))
      for (size_t i = 0; i < std::size(kModuleOrder); ++i)
        if (tail == kModuleOrder[i]) return {layer, static_cast<int64_t>(i), name};
    return {kUnknown, 0, name};
  };
  std::sort(hf_names.begin(), hf_names.end(),
            [&](const std::string& a, const std::string& b) { return key(a) < key(b); });
}

int64_t rope_permute_heads(const ModelConfig& config, const std::string& gguf_name) {
  if (config.arch != "llama" || !gguf_name.starts_with("blk.")) return 0;
  if (gguf_name.ends_with(".attn_q.weight")) return config.n_head;
  if (gguf_name.ends_with(".attn_k.weight")) return config.n_head_kv;
  return 0;
}

Tensor permute_rope_rows(const Tensor& t, int64_t n_head, bool to_gguf) {
  const int64_t rows = t.info.n_rows();
  check(n_head > 0 && rows % (2 * n_head) == 0, t.name(), "{} rows do not split into {} rotary heads", rows, n_head);
  const int64_t d = rows / n_head, half = d / 2;
  const size_t rb = row_bytes(t.type(), t.info.ne[0]);
  std::vector<uint8_t> out(t.info.n_bytes());
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t s = 0; s < 2; ++s)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t hf_row = h * d + s * half + i, gguf_row = h * d + 2 * i + s;
        const int64_t src = to_gguf ? hf_row : gguf_row, dst = to_gguf ? gguf_row : hf_row;
        std::memcpy(out.data() + dst * rb, t.data + src * rb, rb);
      }
  Tensor permuted = make_owned_tensor(t.info, std::move(out));
  permuted.input_order = t.input_order;  // columns are untouched
  return permuted;
}

}  // namespace lowbit
