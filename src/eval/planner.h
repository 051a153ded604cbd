// `lowbit plan`: will a model fit in a memory budget, in which formats, and which one to pick. Pure
// arithmetic over bits per weight, the KV cache and a runtime allowance; every figure it prints can be
// recomputed by hand from the rules documented here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace lowbit {

// The model being planned: its config and tensor list (from a file, or the nearest reference shape for a bare
// parameter count, scaled to that count).
struct PlanModel {
  std::string description;
  ModelConfig config;
  std::vector<TensorInfo> tensors;
  double scale = 1.0;          // weight bytes are multiplied by this (estimated shapes only)
  bool estimated = false;
  double n_params() const;     // scaled
};

// A format to plan for: a GGUF file type (weights sized by llama.cpp's own per-tensor mix rules), or an HF
// checkpoint whose linear layers are stored at `bits` with one fp16 scale (+ a packed zero) per group and
// whose embeddings, head and norms stay 16-bit.
struct PlanFormat {
  std::string name;            // "Q4_K_M", "GPTQ w4g128", "FP8", ...
  std::string family;          // "gguf", "gptq", "awq", "fp8", "float"
  std::string gguf_ftype;      // for family "gguf": the file type name
  int bits = 16;               // for HF formats: bits of a linear weight
  int group_size = 0;          // 0: per output channel
};

struct PlanOptions {
  int64_t n_ctx = 4096;
  int64_t batch = 1;           // concurrent sequences, each with its own KV cache
  std::string kv_type = "f16"; // f16 | q8_0 | q4_0 | f32
  double mem_bytes = 0;
};

struct PlanRow {
  PlanFormat format;
  double bits_per_weight = 0;  // over all weights
  double weight_bytes = 0;
  double kv_bytes = 0;
  double overhead_bytes = 0;
  double total_bytes = 0;
  bool fits = false;
  std::optional<double> measured_kld;  // from a compare report
};

struct Plan {
  PlanModel model;
  PlanOptions options;
  std::vector<PlanRow> rows;              // largest first
  std::vector<std::string> recommendations;  // one line each: runtime -> format, and why
};

// "70B", "8b", "1.5B", "135M", "7e9" -> parameters. Throws Error naming the flag on anything else.
double parse_param_count(const std::string& text);
// "24GiB", "24GB", "16G", "512MiB", "8000000000" -> bytes (GB = 1e9, GiB = 2^30, bare G = GiB).
double parse_memory_size(const std::string& text);
// The nearest reference shape for a parameter count (table in planner.cc), scaled to that count.
PlanModel estimate_model(double n_params);
PlanModel plan_model_from(const std::string& description, const ModelConfig& config, std::vector<TensorInfo> tensors);
// Weight bytes of a model in a format.
double weight_bytes(const PlanModel& model, const PlanFormat& format);
double kv_bytes_per_element(const std::string& kv_type);  // throws Error for an unknown type
std::vector<PlanFormat> plan_formats();
// report_json: optional path to a `lowbit compare` report.json whose measured KLD replaces rules of thumb.
Plan make_plan(const PlanModel& model, const PlanOptions& options, const std::string& report_json = "");
std::string format_plan(const Plan& plan);
std::string format_bytes(double bytes);  // "35.2 GiB"

}  // namespace lowbit
