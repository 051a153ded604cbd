#include "eval/planner.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>

#include "algo/ggml_mix.h"
#include "model/tensor_layout.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {
namespace {

struct ReferenceShape {
  const char* name;
  int64_t n_embd, n_ff, n_head, n_head_kv, n_layer, n_vocab;
  bool tied;
};

// Published configs (config.json) of common open models; a bare parameter count borrows the nearest one.
const ReferenceShape kReferenceShapes[] = {
    {"SmolLM2-135M", 576, 1536, 9, 3, 30, 49152, true},
    {"Qwen2.5-0.5B", 896, 4864, 14, 2, 24, 151936, true},
    {"Llama-3.2-1B", 2048, 8192, 32, 8, 16, 128256, true},
    {"Llama-3.2-3B", 3072, 8192, 24, 8, 28, 128256, true},
    {"Llama-2-7B", 4096, 11008, 32, 32, 32, 32000, false},
    {"Llama-3.1-8B", 4096, 14336, 32, 8, 32, 128256, false},
    {"Llama-2-13B", 5120, 13824, 40, 40, 40, 32000, false},
    {"Qwen2.5-32B", 5120, 27648, 40, 8, 64, 152064, false},
    {"Llama-3.1-70B", 8192, 28672, 64, 8, 80, 128256, false},
    {"Llama-3.1-405B", 16384, 53248, 128, 8, 126, 128256, false},
};

double count_params(const std::vector<TensorInfo>& tensors) {
  double n = 0;
  for (const auto& t : tensors) n += static_cast<double>(t.n_elements());
  return n;
}

bool is_linear_weight(const TensorInfo& t) {
  return t.n_dims >= 2 && t.name.rfind("blk.", 0) == 0 && t.name.size() > 7 &&
         t.name.compare(t.name.size() - 7, 7, ".weight") == 0;
}

// The whole string as a finite positive number, or 0 if it is not one.
double parse_positive(const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    return 0;
  }
  return used == s.size() && std::isfinite(v) && v > 0 ? v : 0;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Runtime allowance on top of weights and KV cache: compute buffers, logits and the process itself. A rule of
// thumb from llama.cpp's CPU logs (a few hundred MiB for 7-8B models at 4k context), growing with the context.
double overhead_bytes(const PlanModel& m, const PlanOptions& o) {
  const double logits = 4.0 * static_cast<double>(m.config.n_vocab) * static_cast<double>(o.batch);
  const double activations = 4.0 * 4.0 * static_cast<double>(m.config.n_embd) * 512.0;  // one 512-token ubatch
  const double attention = 4.0 * static_cast<double>(o.n_ctx) * 512.0 * static_cast<double>(m.config.n_head > 0 ? 1 : 0);
  return 256.0 * 1024 * 1024 + logits + activations + attention;
}

}  // namespace

double PlanModel::n_params() const { return count_params(tensors) * scale; }

double parse_param_count(const std::string& text) {
  std::string s = lower(text);
  double mult = 1;
  if (!s.empty() && (s.back() == 'b' || s.back() == 'm' || s.back() == 'k' || s.back() == 't')) {
    mult = s.back() == 't' ? 1e12 : s.back() == 'b' ? 1e9 : s.back() == 'm' ? 1e6 : 1e3;
    s.pop_back();
  }
  const double v = parse_positive(s);
  check(v > 0, "--params", "'{}' is not a parameter count (examples: 70B, 8b, 1.5B, 135M)", text);
  return v * mult;
}

double parse_memory_size(const std::string& text) {
  std::string s = lower(text);
  double mult = 1;
  auto ends = [&](const char* suffix) {
    const size_t n = std::char_traits<char>::length(suffix);
    if (s.size() > n && s.compare(s.size() - n, n, suffix) == 0) {
      s.resize(s.size() - n);
      return true;
    }
    return false;
  };
  if (ends("tib")) mult = 1024.0 * 1024 * 1024 * 1024;
  else if (ends("gib") || ends("g")) mult = 1024.0 * 1024 * 1024;
  else if (ends("mib") || ends("m")) mult = 1024.0 * 1024;
  else if (ends("tb")) mult = 1e12;
  else if (ends("gb")) mult = 1e9;
  else if (ends("mb")) mult = 1e6;
  const double v = parse_positive(s);
  check(v > 0, "--mem", "'{}' is not a memory size (examples: 24GiB, 16GB, 512MiB)", text);
  return v * mult;
}

PlanModel plan_model_from(const std::string& description, const ModelConfig& config, std::vector<TensorInfo> tensors) {
  PlanModel m;
  m.description = description;
  m.config = config;
  m.tensors = std::move(tensors);
  return m;
}

PlanModel estimate_model(double n_params) {
  const ReferenceShape* best = nullptr;
  double best_distance = 0;
  PlanModel m;
  for (const auto& r : kReferenceShapes) {
    ModelConfig c;
    c.n_embd = r.n_embd;
    c.n_ff = r.n_ff;
    c.n_head = r.n_head;
    c.n_head_kv = r.n_head_kv;
    c.n_layer = r.n_layer;
    c.n_vocab = r.n_vocab;
    c.tied_embeddings = r.tied;
    auto tensors = llama_tensor_layout(c);
    const double distance = std::fabs(std::log(count_params(tensors) / n_params));
    if (best == nullptr || distance < best_distance) {
      best = &r;
      best_distance = distance;
      m = plan_model_from("", c, std::move(tensors));
    }
  }
  m.scale = n_params / count_params(m.tensors);
  m.estimated = true;
  m.description = fmt::format("{:.3g}B parameters, shaped like {} ({} layers, KV width {}, vocab {}{})", n_params / 1e9,
                              best->name, best->n_layer, m.config.n_embd_kv(), best->n_vocab,
                              std::fabs(m.scale - 1) > 0.02 ? fmt::format(", sizes scaled x{:.3f}", m.scale) : "");
  return m;
}

double kv_bytes_per_element(const std::string& kv_type) {
  const std::string t = lower(kv_type);
  if (t == "f32") return 4;
  if (t == "f16" || t == "bf16") return 2;
  if (t == "q8_0") return 34.0 / 32.0;
  if (t == "q4_0") return 18.0 / 32.0;
  fail("--kv-type", "unknown KV cache type '{}' (f32, f16, bf16, q8_0, q4_0)", kv_type);
}

std::vector<PlanFormat> plan_formats() {
  return {
      {"F16", "float", "F16", 16, 0},
      {"Q8_0", "gguf", "Q8_0", 8, 0},
      {"FP8 (E4M3)", "fp8", "", 8, 0},
      {"Q6_K", "gguf", "Q6_K", 6, 0},
      {"Q5_K_M", "gguf", "Q5_K_M", 5, 0},
      {"Q4_K_M", "gguf", "Q4_K_M", 4, 0},
      {"AWQ w4g128", "awq", "", 4, 128},
      {"GPTQ w4g128", "gptq", "", 4, 128},
      {"IQ4_XS", "gguf", "IQ4_XS", 4, 0},
      {"Q3_K_M", "gguf", "Q3_K_M", 3, 0},
      {"GPTQ w3g128", "gptq", "", 3, 128},
      {"Q2_K", "gguf", "Q2_K", 2, 0},
  };
}

double weight_bytes(const PlanModel& m, const PlanFormat& f) {
  double bytes = 0;
  if (f.family == "gguf" || f.family == "float") {
    MixOptions o;
    o.ftype = *file_type_from_name(f.gguf_ftype);
    std::vector<TensorInfo> as_f32 = m.tensors;
    for (auto& t : as_f32) t.type = DType::F32;
    // Sized by llama.cpp's own mix rules; 1-D tensors stay F32 as in any GGUF.
    for (const auto& plan : plan_tensor_types(m.config, std::move(as_f32), o))
      bytes += static_cast<double>(plan.target_bytes());
  } else {
    // HF checkpoints: linear layers packed at `bits` with fp16 scales and packed zeros per group (per output
    // channel for FP8), int32 g_idx per input column for GPTQ; everything else 16-bit.
    for (const auto& t : m.tensors) {
      const double n = static_cast<double>(t.n_elements());
      if (!is_linear_weight(t)) {
        bytes += 2.0 * n;
        continue;
      }
      const double n_in = static_cast<double>(t.ne[0]), n_out = static_cast<double>(t.n_rows());
      const double groups_per_row = f.group_size > 0 ? std::ceil(n_in / f.group_size) : 1.0;
      bytes += n * f.bits / 8.0;
      bytes += n_out * groups_per_row * (f.family == "fp8" ? 4.0 : 2.0 + f.bits / 8.0);
      if (f.family == "gptq") bytes += 4.0 * n_in;
    }
  }
  return bytes * m.scale;
}

Plan make_plan(const PlanModel& model, const PlanOptions& options, const std::string& report_json) {
  Plan plan{model, options, {}, {}};
  const double kv = 2.0 * static_cast<double>(model.config.n_layer) * static_cast<double>(options.n_ctx) *
                    static_cast<double>(model.config.n_embd_kv()) * kv_bytes_per_element(options.kv_type) *
                    static_cast<double>(options.batch);
  std::map<std::string, double> measured;
  if (!report_json.empty()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text_file(report_json));
    } catch (const nlohmann::json::exception& e) {
      fail(report_json, "not a lowbit compare report: {}", e.what());
    }
    check(j.is_object() && j.contains("variants") && j["variants"].is_array(), report_json,
          "not a lowbit compare report (no \"variants\" array)");
    for (const auto& v : j["variants"]) {
      if (v.contains("plan_format") && v.contains("kld") && v["kld"].is_number())
        measured[v["plan_format"].get<std::string>()] = v["kld"].get<double>();
    }
  }
  const double n_params = model.n_params();
  for (const auto& f : plan_formats()) {
    PlanRow row;
    row.format = f;
    row.weight_bytes = weight_bytes(model, f);
    row.bits_per_weight = 8.0 * row.weight_bytes / n_params;
    row.kv_bytes = kv;
    row.overhead_bytes = overhead_bytes(model, options);
    row.total_bytes = row.weight_bytes + row.kv_bytes + row.overhead_bytes;
    row.fits = row.total_bytes <= options.mem_bytes;
    if (auto it = measured.find(f.name); it != measured.end()) row.measured_kld = it->second;
    plan.rows.push_back(row);
  }
  std::stable_sort(plan.rows.begin(), plan.rows.end(),
                   [](const PlanRow& a, const PlanRow& b) { return a.weight_bytes > b.weight_bytes; });

  // With a report, only measured formats compete (lowest KLD wins); without, the largest that fits.
  auto fitting = [&](auto pred) -> const PlanRow* {
    const PlanRow* best = nullptr;
    for (const auto& r : plan.rows) {
      if (!r.fits || !pred(r) || (!measured.empty() && !r.measured_kld)) continue;
      if (best == nullptr) best = &r;
      else if (r.measured_kld ? *r.measured_kld < *best->measured_kld : r.weight_bytes > best->weight_bytes)
        best = &r;
    }
    return best;
  };
  const auto spare = [&](const PlanRow& r) { return format_bytes(options.mem_bytes - r.total_bytes); };
  const auto why = [&](const PlanRow& r) {
    return r.measured_kld ? fmt::format("measured KLD {:.4f}", *r.measured_kld)
                          : fmt::format("{:.2f} bits per weight", r.bits_per_weight);
  };

  if (const PlanRow* r = fitting([](const PlanRow& x) { return x.format.family == "gguf" || x.format.family == "float"; }))
    plan.recommendations.push_back(fmt::format(
        "CPU / llama.cpp / Apple: {} — the most accurate GGUF that fits ({}, {} to spare); K-quant mixes run fast on CPUs.",
        r->format.name, why(*r), spare(*r)));
  else
    plan.recommendations.push_back("CPU / llama.cpp / Apple: nothing fits; even Q2_K needs more memory (reduce --ctx or use a smaller model).");

  const PlanRow* f16 = fitting([](const PlanRow& x) { return x.format.family == "float"; });
  const PlanRow* fp8 = fitting([](const PlanRow& x) { return x.format.family == "fp8"; });
  const PlanRow* awq = fitting([](const PlanRow& x) { return x.format.family == "awq"; });
  const PlanRow* gptq = fitting([](const PlanRow& x) { return x.format.family == "gptq"; });
  if (f16)
    plan.recommendations.push_back(fmt::format("GPU serving: F16/BF16 fits ({} to spare): no quantization loss at all.", spare(*f16)));
  else if (fp8)
    plan.recommendations.push_back(fmt::format(
        "GPU serving: FP8 (E4M3) — 8-bit weights are near-lossless and fit ({} to spare); needs FP8 tensor cores (Ada/Hopper), else use 8-bit GPTQ.",
        spare(*fp8)));
  else if (awq || gptq)
    plan.recommendations.push_back(fmt::format(
        "GPU serving: {} when accuracy matters (activation-aware scales); {} for the highest throughput (Marlin/ExLlama kernels).",
        awq ? awq->format.name : "GPTQ w4g128", gptq ? gptq->format.name : "AWQ w4g128"));
  else
    plan.recommendations.push_back("GPU serving: no 4-bit checkpoint fits; only 3-bit GPTQ or a smaller model would.");
  return plan;
}

std::string format_bytes(double bytes) {
  const double gib = 1024.0 * 1024 * 1024;
  if (std::fabs(bytes) >= gib) return fmt::format("{:.1f} GiB", bytes / gib);
  const double mib = bytes / (1024.0 * 1024);
  return std::fabs(mib) < 100 ? fmt::format("{:.1f} MiB", mib) : fmt::format("{:.0f} MiB", mib);
}

std::string format_plan(const Plan& p) {
  std::string out;
  out += fmt::format("model:   {}\n", p.model.description);
  out += fmt::format("params:  {:.3f} B\n", p.model.n_params() / 1e9);
  out += fmt::format("context: {} tokens x {} sequence(s), KV cache {}\n", p.options.n_ctx, p.options.batch,
                     p.options.kv_type);
  out += fmt::format("budget:  {}\n\n", format_bytes(p.options.mem_bytes));
  const bool measured = std::any_of(p.rows.begin(), p.rows.end(), [](const PlanRow& r) { return r.measured_kld; });
  out += fmt::format("| {:<12} | {:>6} | {:>10} | {:>10} | {:>9} | {:>10} | {:<4} |{}\n", "format", "bpw", "weights",
                     "KV cache", "overhead", "total", "fits", measured ? " KLD    |" : "");
  out += fmt::format("|{:-<14}|{:->8}|{:->12}|{:->12}|{:->11}|{:->12}|{:-<6}|{}\n", "", "", "", "", "", "", "",
                     measured ? "--------|" : "");
  for (const auto& r : p.rows) {
    out += fmt::format("| {:<12} | {:>6.2f} | {:>10} | {:>10} | {:>9} | {:>10} | {:<4} |", r.format.name,
                       r.bits_per_weight, format_bytes(r.weight_bytes), format_bytes(r.kv_bytes),
                       format_bytes(r.overhead_bytes), format_bytes(r.total_bytes), r.fits ? "yes" : "no");
    if (measured) out += r.measured_kld ? fmt::format(" {:.4f} |", *r.measured_kld) : "   -    |";
    out += "\n";
  }
  out += "\nrecommendation:\n";
  for (const auto& line : p.recommendations) out += "  " + line + "\n";
  return out;
}

}  // namespace lowbit
