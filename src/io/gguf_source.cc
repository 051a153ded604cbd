#include "io/gguf_source.h"

#include <fmt/format.h>

#include <cmath>

#include "util/error.h"

namespace lowbit {
namespace {

bool is_supported_arch(const std::string& arch) { return arch == "llama" || arch == "qwen2" || arch == "qwen3"; }

class GgufModelSource : public ModelSource {
 public:
  explicit GgufModelSource(GgufFile file) : file_(std::move(file)) {
    config_ = gguf_model_config(file_);
    vocab_ = gguf_vocab(file_.metadata, file_.path);
    for (const auto& t : file_.tensors) infos_.push_back(t.info);
  }
  const std::string& path() const override { return file_.path; }
  std::string format() const override { return "gguf"; }
  const ModelConfig& config() const override { return config_; }
  const Vocab& vocab() const override { return vocab_; }
  const std::vector<TensorInfo>& tensor_infos() const override { return infos_; }
  Tensor tensor(const std::string& name) const override { return file_.tensor(name); }
  std::vector<std::pair<std::string, std::string>> metadata_strings() const override {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [k, v] : file_.metadata.items()) out.emplace_back(k, v.to_display_string());
    return out;
  }
  const GgufFile& file() const { return file_; }

 private:
  GgufFile file_;
  ModelConfig config_;
  Vocab vocab_;
  std::vector<TensorInfo> infos_;
};

}  // namespace

ModelConfig gguf_model_config(const GgufFile& g) {
  const auto& m = g.metadata;
  const std::string& where = g.path;
  ModelConfig c;
  c.arch = m.find_string("general.architecture", where).value_or("");
  check(!c.arch.empty(), where, "missing general.architecture");
  c.name = m.find_string("general.name", where).value_or("");
  const bool vocab_only = g.tensors.empty();
  if (!vocab_only)
    check(is_supported_arch(c.arch), where, "architecture '{}' is not supported (supported: llama, qwen2, qwen3)",
          c.arch);
  const std::string a = c.arch + ".";
  auto u = [&](const std::string& key, int64_t fallback) {
    const auto v = m.find_uint(a + key, where);
    return v ? static_cast<int64_t>(*v) : fallback;
  };
  c.n_ctx_train = u("context_length", 0);
  c.n_embd = u("embedding_length", 0);
  c.n_layer = u("block_count", 0);
  c.n_ff = u("feed_forward_length", 0);
  c.n_head = u("attention.head_count", 0);
  c.n_head_kv = u("attention.head_count_kv", c.n_head);
  c.head_dim = u("attention.key_length", 0);
  c.norm_eps = m.find_f32(a + "attention.layer_norm_rms_epsilon", where).value_or(1e-5f);
  c.rope.theta = m.find_f32(a + "rope.freq_base", where).value_or(10000.0f);
  c.rope.neox = c.arch == "qwen2" || c.arch == "qwen3";
  if (auto type = m.find_string(a + "rope.scaling.type", where)) {
    if (*type == "linear") c.rope.scaling = RopeScaling::Linear;
    else if (*type == "yarn") c.rope.scaling = RopeScaling::Yarn;
    else check(*type == "none", where, "rope scaling type '{}' is not supported", *type);
    c.rope.factor = m.find_f32(a + "rope.scaling.factor", where).value_or(1.0f);
    c.rope.original_context = static_cast<int64_t>(m.find_uint(a + "rope.scaling.original_context_length", where).value_or(0));
  }
  if (g.find_tensor("rope_freqs.weight")) c.rope.scaling = RopeScaling::Llama3;  // factors stored as a tensor
  const auto* embd = g.find_tensor("token_embd.weight");
  c.n_vocab = u("vocab_size", 0);
  if (c.n_vocab == 0 && m.contains("tokenizer.ggml.tokens")) c.n_vocab = static_cast<int64_t>(m.find("tokenizer.ggml.tokens")->array.size());
  if (c.n_vocab == 0 && embd) c.n_vocab = embd->info.ne[1];
  c.tied_embeddings = g.find_tensor("output.weight") == nullptr;
  c.attn_qkv_bias = g.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.attn_qk_norm = g.find_tensor("blk.0.attn_q_norm.weight") != nullptr;
  if (!vocab_only) c.validate(where);
  return c;
}

Vocab gguf_vocab(const GgufMetadata& m, const std::string& where) {
  Vocab v;
  if (!m.contains("tokenizer.ggml.model")) return v;
  v.model = m.get_string("tokenizer.ggml.model", where);
  v.pre = m.find_string("tokenizer.ggml.pre", where).value_or("");
  if (!m.contains("tokenizer.ggml.tokens")) return v;
  v.tokens = m.get_strings("tokenizer.ggml.tokens", where);
  const size_t n = v.tokens.size();
  if (m.contains("tokenizer.ggml.scores")) {
    v.scores = m.get_f32s("tokenizer.ggml.scores", where);
    check(v.scores.size() == n, where, "tokenizer.ggml.scores has {} entries for {} tokens", v.scores.size(), n);
  }
  if (m.contains("tokenizer.ggml.token_type")) {
    v.types = m.get_i32s("tokenizer.ggml.token_type", where);
    check(v.types.size() == n, where, "tokenizer.ggml.token_type has {} entries for {} tokens", v.types.size(), n);
  }
  if (m.contains("tokenizer.ggml.merges")) v.merges = m.get_strings("tokenizer.ggml.merges", where);
  auto id = [&](const char* key) -> int32_t {
    const auto x = m.find_uint(key, where);
    if (!x) return -1;
    check(*x < n, where, "{} = {} is not a token id (vocabulary of {})", key, *x, n);
    return static_cast<int32_t>(*x);
  };
  v.bos_id = id("tokenizer.ggml.bos_token_id");
  v.eos_id = id("tokenizer.ggml.eos_token_id");
  v.unk_id = id("tokenizer.ggml.unknown_token_id");
  v.pad_id = id("tokenizer.ggml.padding_token_id");
  v.add_bos = m.find_bool("tokenizer.ggml.add_bos_token", where).value_or(v.model == "llama");
  v.add_eos = m.find_bool("tokenizer.ggml.add_eos_token", where).value_or(false);
  v.add_space_prefix = m.find_bool("tokenizer.ggml.add_space_prefix", where).value_or(v.model == "llama");
  return v;
}

std::unique_ptr<ModelSource> open_gguf_model(const std::string& path) {
  return std::make_unique<GgufModelSource>(open_gguf(path));
}

std::string gguf_size_label(double n) {
  double scaled;
  const char* suffix;
  if (n > 1e12) scaled = n * 1e-12, suffix = "T";
  else if (n > 1e9) scaled = n * 1e-9, suffix = "B";
  else if (n > 1e6) scaled = n * 1e-6, suffix = "M";
  else scaled = n * 1e-3, suffix = "K";
  // At least two significant digits, as gguf-py's model_weight_count_rounded_notation.
  const int digits = static_cast<int>(std::to_string(static_cast<long long>(std::llround(scaled))).size());
  const int fix = std::max(2 - digits, 0);
  return fmt::format("{:.{}f}{}", scaled, fix, suffix);
}

GgufMetadata gguf_metadata_for_model(const ModelConfig& c, const Vocab& v, const GgufModelInfo& info) {
  GgufMetadata m;
  const std::string a = c.arch + ".";
  auto u32 = [](int64_t x) { return GgufValue::of_u32(static_cast<uint32_t>(x)); };
  m.set("general.architecture", GgufValue::of_string(c.arch));
  m.set("general.type", GgufValue::of_string("model"));
  m.set("general.name", GgufValue::of_string(info.name));
  if (info.n_params > 0) m.set("general.size_label", GgufValue::of_string(gguf_size_label(info.n_params)));
  m.set(a + "block_count", u32(c.n_layer));
  m.set(a + "context_length", u32(c.n_ctx_train));
  m.set(a + "embedding_length", u32(c.n_embd));
  m.set(a + "feed_forward_length", u32(c.n_ff));
  m.set(a + "attention.head_count", u32(c.n_head));
  m.set(a + "attention.head_count_kv", u32(c.n_head_kv));
  m.set(a + "rope.freq_base", GgufValue::of_f32(c.rope.theta));
  m.set(a + "attention.layer_norm_rms_epsilon", GgufValue::of_f32(c.norm_eps));
  if (c.head_dim > 0 && c.head_dim != c.n_embd / c.n_head) {
    m.set(a + "attention.key_length", u32(c.head_dim));
    m.set(a + "attention.value_length", u32(c.head_dim));
  }
  if (c.rope.scaling == RopeScaling::Linear || c.rope.scaling == RopeScaling::Yarn) {
    m.set(a + "rope.scaling.type", GgufValue::of_string(c.rope.scaling == RopeScaling::Linear ? "linear" : "yarn"));
    m.set(a + "rope.scaling.factor", GgufValue::of_f32(c.rope.factor));
    if (c.rope.original_context > 0)
      m.set(a + "rope.scaling.original_context_length", u32(c.rope.original_context));
  }
  m.set("general.file_type", GgufValue::of_u32(info.file_type));
  m.set(a + "vocab_size", u32(c.n_vocab));
  m.set(a + "rope.dimension_count", u32(c.n_embd_head()));
  if (!v.empty()) {
    m.set("tokenizer.ggml.model", GgufValue::of_string(v.model));
    m.set("tokenizer.ggml.pre", GgufValue::of_string(v.pre.empty() ? "default" : v.pre));
    m.set("tokenizer.ggml.tokens", GgufValue::of_strings(v.tokens));
    if (!v.scores.empty()) m.set("tokenizer.ggml.scores", GgufValue::of_f32s(v.scores));
    if (!v.types.empty()) m.set("tokenizer.ggml.token_type", GgufValue::of_i32s(v.types));
    if (!v.merges.empty()) m.set("tokenizer.ggml.merges", GgufValue::of_strings(v.merges));
    if (v.bos_id >= 0) m.set("tokenizer.ggml.bos_token_id", u32(v.bos_id));
    if (v.eos_id >= 0) m.set("tokenizer.ggml.eos_token_id", u32(v.eos_id));
    if (v.unk_id >= 0 && v.model != "llama") m.set("tokenizer.ggml.unknown_token_id", u32(v.unk_id));
    if (v.pad_id >= 0) m.set("tokenizer.ggml.padding_token_id", u32(v.pad_id));
    m.set("tokenizer.ggml.add_bos_token", GgufValue::of_bool(v.add_bos));
    m.set("tokenizer.ggml.add_eos_token", GgufValue::of_bool(v.add_eos));
    if (v.model == "llama" && !v.add_space_prefix) m.set("tokenizer.ggml.add_space_prefix", GgufValue::of_bool(false));
  }
  m.set("general.quantization_version", GgufValue::of_u32(2));
  return m;
}

}  // namespace lowbit
