#include "io/hf_config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <limits>

#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {

namespace {

using json = nlohmann::json;

struct Family {
  const char* hf_architecture;
  const char* arch;
};

constexpr Family kFamilies[] = {
    {"LlamaForCausalLM", "llama"},
    {"MistralForCausalLM", "llama"},
    {"Qwen2ForCausalLM", "qwen2"},
    {"Qwen3ForCausalLM", "qwen3"},
};

std::string supported_list() {
  std::string s;
  for (const auto& f : kFamilies) s += (s.empty() ? "" : ", ") + std::string(f.hf_architecture);
  return s;
}

bool present(const json& j, const char* key) { return j.contains(key) && !j[key].is_null(); }

int64_t get_int(const json& j, const char* key, const std::string& where, int64_t fallback, bool required) {
  if (!present(j, key)) {
    check(!required, where, "'{}' is missing", key);
    return fallback;
  }
  const auto& v = j[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  // Some configs write integers as 1e6 or 32768.0.
  check(v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()) &&
            std::abs(v.get<double>()) < 9e15,
        where, "'{}' must be an integer, got {}", key, v.dump());
  return static_cast<int64_t>(v.get<double>());
}

double get_number(const json& j, const char* key, const std::string& where, double fallback) {
  if (!present(j, key)) return fallback;
  const auto& v = j[key];
  check(v.is_number() && std::isfinite(v.get<double>()), where, "'{}' must be a number, got {}", key, v.dump());
  return v.get<double>();
}

bool get_bool(const json& j, const char* key, const std::string& where, bool fallback) {
  if (!present(j, key)) return fallback;
  check(j[key].is_boolean(), where, "'{}' must be true or false, got {}", key, j[key].dump());
  return j[key].get<bool>();
}

float to_float_checked(double v, const char* key, const std::string& where) {
  check(std::abs(v) <= std::numeric_limits<float>::max(), where, "'{}' = {} is out of range", key, v);
  return static_cast<float>(v);
}

void parse_rope_scaling(const json& j, RopeConfig& rope, const std::string& where) {
  if (!present(j, "rope_scaling")) return;
  const auto& rs = j["rope_scaling"];
  check(rs.is_object(), where, "'rope_scaling' must be an object");
  std::string type;
  for (const char* key : {"rope_type", "type"})
    if (present(rs, key)) {
      check(rs[key].is_string(), where, "rope_scaling.{} must be a string", key);
      type = rs[key].get<std::string>();
      break;
    }
  const std::string w = where + ": rope_scaling";
  if (type.empty() || type == "default") return;
  rope.factor = to_float_checked(get_number(rs, "factor", w, 1.0), "factor", w);
  check(rope.factor > 0, w, "factor must be positive");
  if (type == "linear") {
    rope.scaling = RopeScaling::Linear;
  } else if (type == "llama3") {
    rope.scaling = RopeScaling::Llama3;
    rope.low_freq_factor = to_float_checked(get_number(rs, "low_freq_factor", w, 1.0), "low_freq_factor", w);
    rope.high_freq_factor = to_float_checked(get_number(rs, "high_freq_factor", w, 4.0), "high_freq_factor", w);
    rope.original_context = get_int(rs, "original_max_position_embeddings", w, 0, true);
    check(rope.high_freq_factor > rope.low_freq_factor, w, "high_freq_factor must exceed low_freq_factor");
  } else if (type == "yarn") {
    rope.scaling = RopeScaling::Yarn;
    rope.original_context = get_int(rs, "original_max_position_embeddings", w, 0, false);
  } else {
    fail(w, "type '{}' is not supported (supported: linear, llama3, yarn)", type);
  }
}

// Prints a float with the fewest digits that read back to it, so 1e-5f is written 1e-05, not 9.99999974e-06.
double tidy(float f) { return std::stod(fmt::format("{}", f)); }

}  // namespace

ModelConfig parse_hf_config(const std::string& json_text, const std::string& where) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    fail(where, "not valid JSON ({})", e.what());
  }
  check(j.is_object(), where, "not a JSON object");
  check(present(j, "architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
            j["architectures"][0].is_string(),
        where, "'architectures' is missing (supported: {})", supported_list());
  const auto hf_arch = j["architectures"][0].get<std::string>();
  const Family* family = nullptr;
  for (const auto& f : kFamilies)
    if (hf_arch == f.hf_architecture) family = &f;
  check(family != nullptr, where, "architecture '{}' is not supported (supported: {})", hf_arch, supported_list());

  ModelConfig c;
  c.arch = family->arch;
  c.hf_architecture = hf_arch;
  if (present(j, "_name_or_path") && j["_name_or_path"].is_string()) c.name = j["_name_or_path"].get<std::string>();
  c.n_embd = get_int(j, "hidden_size", where, 0, true);
  c.n_layer = get_int(j, "num_hidden_layers", where, 0, true);
  c.n_head = get_int(j, "num_attention_heads", where, 0, true);
  c.n_head_kv = get_int(j, "num_key_value_heads", where, c.n_head, false);
  c.n_ff = get_int(j, "intermediate_size", where, 0, true);
  c.n_vocab = get_int(j, "vocab_size", where, 0, true);
  check(c.n_head > 0, where, "'num_attention_heads' must be positive");
  // Qwen3Config defaults head_dim to 128; the others derive it.
  const int64_t default_head_dim = c.arch == "qwen3" ? 128 : (c.n_embd % c.n_head == 0 ? c.n_embd / c.n_head : 0);
  c.head_dim = get_int(j, "head_dim", where, default_head_dim, false);
  c.n_ctx_train = get_int(j, "max_position_embeddings", where, 2048, false);
  c.norm_eps = to_float_checked(get_number(j, "rms_norm_eps", where, 1e-6), "rms_norm_eps", where);
  c.rope.theta = to_float_checked(get_number(j, "rope_theta", where, 10000.0), "rope_theta", where);
  c.rope.neox = c.arch != "llama";
  parse_rope_scaling(j, c.rope, where);
  c.tied_embeddings = get_bool(j, "tie_word_embeddings", where, false);
  if (get_bool(j, "use_sliding_window", where, true)) c.sliding_window = get_int(j, "sliding_window", where, 0, false);
  if (present(j, "hidden_act")) {
    check(j["hidden_act"].is_string() && j["hidden_act"] == "silu", where,
          "hidden_act {} is not supported (only silu)", j["hidden_act"].dump());
  }
  check(!get_bool(j, "mlp_bias", where, false), where, "mlp_bias is not supported");
  // Qwen2 always has q/k/v biases; for Llama and Qwen3 attention_bias also adds an output bias lowbit lacks.
  c.attn_qkv_bias = c.arch == "qwen2";
  check(c.arch == "qwen2" || !get_bool(j, "attention_bias", where, false), where,
        "attention_bias is not supported for {}", hf_arch);
  c.attn_qk_norm = c.arch == "qwen3";
  check(c.n_ctx_train > 0, where, "'max_position_embeddings' must be positive");
  c.validate(where);
  return c;
}

ModelConfig load_hf_config(const std::string& path) {
  namespace fs = std::filesystem;
  const std::string file = fs::is_directory(path) ? (fs::path(path) / "config.json").string() : path;
  check(fs::exists(file), file, "not found (a Hugging Face model folder needs config.json)");
  return parse_hf_config(read_text_file(file), file);
}

std::string hf_config_json(const ModelConfig& c, const HfConfigExtras& extras) {
  json j;
  std::string hf_arch = c.hf_architecture;
  if (c.arch == "llama") {
    if (hf_arch != "MistralForCausalLM") hf_arch = "LlamaForCausalLM";
  } else if (c.arch == "qwen2") {
    hf_arch = "Qwen2ForCausalLM";
  } else if (c.arch == "qwen3") {
    hf_arch = "Qwen3ForCausalLM";
  } else {
    fail("config.json", "architecture '{}' cannot be exported (supported: llama, qwen2, qwen3)", c.arch);
  }
  j["architectures"] = json::array({hf_arch});
  j["model_type"] = hf_arch == "MistralForCausalLM" ? "mistral" : c.arch;
  j["hidden_size"] = c.n_embd;
  j["intermediate_size"] = c.n_ff;
  j["num_hidden_layers"] = c.n_layer;
  j["num_attention_heads"] = c.n_head;
  j["num_key_value_heads"] = c.n_head_kv;
  j["head_dim"] = c.n_embd_head();
  j["vocab_size"] = c.n_vocab;
  j["max_position_embeddings"] = c.n_ctx_train;
  j["rms_norm_eps"] = tidy(c.norm_eps);
  j["rope_theta"] = tidy(c.rope.theta);
  j["tie_word_embeddings"] = c.tied_embeddings;
  j["hidden_act"] = "silu";
  j["torch_dtype"] = extras.torch_dtype;
  if (c.arch != "qwen2") j["attention_bias"] = false;
  if (hf_arch == "MistralForCausalLM" || c.sliding_window > 0)
    j["sliding_window"] = c.sliding_window > 0 ? json(c.sliding_window) : json(nullptr);
  if (c.arch == "qwen2") j["use_sliding_window"] = false;
  if (extras.bos_token_id >= 0) j["bos_token_id"] = extras.bos_token_id;
  if (extras.eos_token_id >= 0) j["eos_token_id"] = extras.eos_token_id;
  switch (c.rope.scaling) {
    case RopeScaling::None:
      j["rope_scaling"] = nullptr;
      break;
    case RopeScaling::Linear:
      j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", tidy(c.rope.factor)}};
      break;
    case RopeScaling::Llama3:
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", tidy(c.rope.factor)},
                           {"low_freq_factor", tidy(c.rope.low_freq_factor)},
                           {"high_freq_factor", tidy(c.rope.high_freq_factor)},
                           {"original_max_position_embeddings", c.rope.original_context}};
      break;
    case RopeScaling::Yarn:
      j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", tidy(c.rope.factor)}};
      if (c.rope.original_context > 0) j["rope_scaling"]["original_max_position_embeddings"] = c.rope.original_context;
      break;
  }
  return j.dump(2) + "\n";
}

}  // namespace lowbit
