#include "algo/ggml_mix.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "util/error.h"

namespace lowbit {
namespace {

const FileTypeInfo kFileTypes[] = {
    {FileType::ALL_F32, "F32", DType::F32, "32-bit float, no quantization"},
    {FileType::F16, "F16", DType::F16, "16-bit float"},
    {FileType::BF16, "BF16", DType::BF16, "bfloat16"},
    {FileType::Q8_0, "Q8_0", DType::Q8_0, "8.5 bpw, nearly lossless"},
    {FileType::Q4_0, "Q4_0", DType::Q4_0, "4.5 bpw, legacy"},
    {FileType::Q4_1, "Q4_1", DType::Q4_1, "5.0 bpw, legacy"},
    {FileType::Q5_0, "Q5_0", DType::Q5_0, "5.5 bpw, legacy"},
    {FileType::Q5_1, "Q5_1", DType::Q5_1, "6.0 bpw, legacy"},
    {FileType::Q2_K, "Q2_K", DType::Q2_K, "Q2_K with Q3_K attn_v/ffn_down/attn_output"},
    {FileType::Q2_K_S, "Q2_K_S", DType::Q2_K, "Q2_K, needs an importance matrix"},
    {FileType::Q3_K_S, "Q3_K_S", DType::Q3_K, "Q3_K everywhere"},
    {FileType::Q3_K_M, "Q3_K_M", DType::Q3_K, "Q3_K with Q4_K/Q5_K for sensitive tensors"},
    {FileType::Q3_K_L, "Q3_K_L", DType::Q3_K, "Q3_K with Q5_K for sensitive tensors"},
    {FileType::Q4_K_S, "Q4_K_S", DType::Q4_K, "Q4_K with a few Q5_K"},
    {FileType::Q4_K_M, "Q4_K_M", DType::Q4_K, "Q4_K with Q6_K for half of attn_v/ffn_down (recommended)"},
    {FileType::Q5_K_S, "Q5_K_S", DType::Q5_K, "Q5_K everywhere"},
    {FileType::Q5_K_M, "Q5_K_M", DType::Q5_K, "Q5_K with Q6_K for half of attn_v/ffn_down"},
    {FileType::Q6_K, "Q6_K", DType::Q6_K, "6.56 bpw"},
    {FileType::IQ4_NL, "IQ4_NL", DType::IQ4_NL, "4.5 bpw non-linear"},
    {FileType::IQ4_XS, "IQ4_XS", DType::IQ4_XS, "4.25 bpw non-linear"},
};

int layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// llama.cpp: "use more bits" for the first and last eighth of the layers and every third one in between.
bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

// Whether llama-quantize quantizes a tensor at all (norms, biases and 1-D tensors are copied).
bool is_quantizable(const TensorInfo& t, const MixOptions& o) {
  const std::string& name = t.name;
  if (name.size() < 6 || name.compare(name.size() - 6, 6, "weight") != 0) return false;
  if (t.n_dims < 2) return false;
  if (contains(name, "_norm.weight")) return false;
  if (!o.quantize_output && name == "output.weight") return false;
  if (contains(name, "ffn_gate_inp.weight")) return false;
  return true;
}

// The block-size fallback llama.cpp applies when a row does not fit the chosen type. Where llama.cpp has no
// fallback (it aborts), lowbit keeps F16 and says so.
DType fallback_for_misfit(const TensorInfo& t, DType chosen, std::string& why) {
  if (row_fits(chosen, t.ne[0])) return chosen;
  DType next;
  switch (chosen) {
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::IQ4_XS: next = DType::IQ4_NL; break;
    case DType::Q4_K: next = DType::Q5_0; break;
    case DType::Q5_K: next = DType::Q5_1; break;
    case DType::Q6_K: next = DType::Q8_0; break;
    default: next = DType::F16; break;
  }
  if (!row_fits(next, t.ne[0])) next = DType::F16;
  why = fmt::format("row length {} is not a multiple of {} ({}), using {}", t.ne[0], type_traits(chosen).block_size,
                    dtype_name(chosen), dtype_name(next));
  return next;
}

struct MixState {
  const ModelConfig& config;
  const MixOptions& options;
  bool has_output = false;
  int n_attention_wv = 0;
  int i_attention_wv = 0;
  int i_ffn_down = 0, i_ffn_gate = 0, i_ffn_up = 0;

  int64_t n_gqa() const { return config.n_head_kv > 0 ? config.n_head / config.n_head_kv : 1; }
  bool is_70b() const { return config.arch == "llama" && config.n_layer == 80 && config.n_head != config.n_head_kv; }

  // llama.cpp's llama_tensor_get_type for the file types lowbit supports (no MoE, no Falcon, no IQ1-IQ3).
  DType choose(const TensorInfo& t, DType type) {
    const FileType ftype = options.ftype;
    const std::string& name = t.name;
    const int n_layer = static_cast<int>(config.n_layer);
    if (name == "output.weight" || (!has_output && name == "token_embd.weight")) {
      if (options.output_type) return *options.output_type;
      if (!row_fits(type, t.ne[0])) return DType::Q8_0;
      return type == DType::Q8_0 ? type : DType::Q6_K;
    }
    if (name == "token_embd.weight") {
      return options.token_embedding_type ? *options.token_embedding_type : type;
    }
    if (contains(name, "attn_v.weight")) {
      if (ftype == FileType::Q2_K) type = n_gqa() >= 4 ? DType::Q4_K : DType::Q3_K;
      else if (ftype == FileType::Q2_K_S && n_gqa() >= 4) type = DType::Q4_K;
      else if (ftype == FileType::Q3_K_M) type = i_attention_wv < 2 ? DType::Q5_K : DType::Q4_K;
      else if (ftype == FileType::Q3_K_L) type = DType::Q5_K;
      else if ((ftype == FileType::IQ4_NL || ftype == FileType::IQ4_XS) && n_gqa() >= 4) type = DType::Q5_K;
      else if ((ftype == FileType::Q4_K_M || ftype == FileType::Q5_K_M) && use_more_bits(i_attention_wv, n_attention_wv))
        type = DType::Q6_K;
      else if (ftype == FileType::Q4_K_S && i_attention_wv < 4) type = DType::Q5_K;
      // 70B: 8 heads share attn_v, so it is 8x smaller than attn_q and more bits cost little.
      if (is_70b() && (type == DType::Q3_K || type == DType::Q4_K)) type = DType::Q5_K;
      ++i_attention_wv;
    } else if (contains(name, "ffn_down")) {
      const int i_layer = i_ffn_down;
      if (ftype == FileType::Q2_K) type = DType::Q3_K;
      else if (ftype == FileType::Q2_K_S) {
        if (i_layer < n_layer / 8) type = DType::Q4_K;
      } else if (ftype == FileType::Q3_K_M) type = i_layer < n_layer / 16 ? DType::Q5_K : DType::Q4_K;
      else if (ftype == FileType::Q3_K_L) type = DType::Q5_K;
      else if (ftype == FileType::Q4_K_M) {
        if (use_more_bits(i_layer, n_layer)) type = DType::Q6_K;
      } else if (i_layer < n_layer / 8 && (ftype == FileType::IQ4_NL || ftype == FileType::IQ4_XS) &&
                 !options.has_imatrix)
        type = DType::Q5_K;
      else if (ftype == FileType::Q5_K_M && use_more_bits(i_layer, n_layer)) type = DType::Q6_K;
      else if (ftype == FileType::Q4_K_S && i_layer < n_layer / 8) type = DType::Q5_K;
      else if ((ftype == FileType::Q4_0 || ftype == FileType::Q5_0) && options.has_imatrix && i_layer < n_layer / 8)
        type = ftype == FileType::Q4_0 ? DType::Q4_1 : DType::Q5_1;
      ++i_ffn_down;
    } else if (contains(name, "attn_output.weight")) {
      if (ftype == FileType::Q2_K) type = DType::Q3_K;
      else if (ftype == FileType::Q3_K_M) type = DType::Q4_K;
      else if (ftype == FileType::Q3_K_L) type = DType::Q5_K;
    } else if (contains(name, "attn_qkv.weight")) {
      if (ftype == FileType::Q3_K_M || ftype == FileType::Q3_K_L) type = DType::Q4_K;
      else if (ftype == FileType::Q4_K_M) type = DType::Q5_K;
      else if (ftype == FileType::Q5_K_M) type = DType::Q6_K;
    } else if (contains(name, "ffn_gate")) {
      ++i_ffn_gate;
    } else if (contains(name, "ffn_up")) {
      ++i_ffn_up;
    }
    return type;
  }
};

}  // namespace

std::span<const FileTypeInfo> all_file_types() { return kFileTypes; }

std::optional<FileType> file_type_from_name(std::string_view name) {
  for (const auto& f : kFileTypes) {
    std::string_view n = f.name;
    if (n.size() == name.size() &&
        std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) { return std::toupper(a) == std::toupper(b); }))
      return f.ftype;
  }
  return std::nullopt;
}

const FileTypeInfo& file_type_info(FileType ftype) {
  for (const auto& f : kFileTypes)
    if (f.ftype == ftype) return f;
  fail("file type", "unknown file type {}", static_cast<uint32_t>(ftype));
}

bool llama_tensor_order(const std::string& a, const std::string& b) {
  const int la = layer_of(a), lb = layer_of(b);
  if (la != lb) return la < lb;
  return a < b;
}

std::vector<TensorPlan> plan_tensor_types(const ModelConfig& config, std::vector<TensorInfo> infos,
                                          const MixOptions& options) {
  std::sort(infos.begin(), infos.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return llama_tensor_order(a.name, b.name); });
  std::vector<std::pair<std::regex, DType>> overrides;
  for (const auto& [pattern, type] : options.tensor_type_overrides) {
    try {
      overrides.emplace_back(std::regex(pattern), type);
    } catch (const std::regex_error& e) {
      fail("--tensor-type", "invalid regular expression '{}': {}", pattern, e.what());
    }
  }

  MixState state{config, options};
  for (const auto& t : infos) {
    if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight")) ++state.n_attention_wv;
    if (t.name == "output.weight") state.has_output = true;
  }

  const DType default_type = file_type_info(options.ftype).default_type;
  std::vector<TensorPlan> plans;
  plans.reserve(infos.size());
  for (const auto& t : infos) {
    TensorPlan plan{t, t.type, false, {}};
    if (is_quantizable(t, options)) {
      DType type = default_type;
      const bool use_rules = !options.pure && type_traits(default_type).is_quantized;
      if (use_rules) type = state.choose(t, type);
      for (const auto& [re, override_type] : overrides) {
        if (std::regex_search(t.name, re)) {
          type = override_type;
          break;
        }
      }
      if (options.token_embedding_type && t.name == "token_embd.weight") type = *options.token_embedding_type;
      if (options.output_type && t.name == "output.weight") type = *options.output_type;
      type = fallback_for_misfit(t, type, plan.fallback);
      plan.target_type = type;
      plan.quantize = type != t.type;
    }
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace lowbit
