// The side-by-side report of `lowbit compare`: one row per variant (format and method), written as
// report.md (table), report.json (machine-readable; `lowbit plan --report` reads it) and a self-contained
// report.html with inline SVG plots (KLD vs bits per weight with the Pareto front, PPL vs size, speed vs size).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lowbit {

struct TaskAccuracy {
  int n = 0;
  double acc = 0, acc_stderr = 0, acc_norm = 0, acc_norm_stderr = 0;
};

struct VariantResult {
  std::string name;          // as given in --variants, e.g. "q4_k_m+imatrix", "gptq:w4g128"
  std::string format;        // "gguf", "gptq", "awq", "source"
  std::string plan_format;   // the matching `lowbit plan` row ("Q4_K_M", "GPTQ w4g128"), if any
  std::string path;
  double file_bytes = 0;
  double bits_per_weight = 0;
  double peak_rss_bytes = 0;   // memory to run it: weights + KV cache (the "memory" column)
  double pp_tokens_per_s = 0, tg_tokens_per_s = 0;
  double ppl = 0, ppl_stderr = 0;
  std::optional<double> kld_mean, kld_stderr, top1_percent;  // vs the source (absent for the source itself)
  std::map<std::string, TaskAccuracy> tasks;                  // by task name
};

struct CompareReport {
  std::string source;         // the source model path
  std::string eval_text;      // the perplexity text
  int64_t ctx = 0, chunks = 0;
  std::string machine;        // CPU model and thread count
  std::vector<VariantResult> variants;
};

struct ReportSummary {
  std::string best_accuracy, best_size, best_speed;  // variant names (best_accuracy excludes the source)
  std::vector<std::string> pareto;                   // variants on the KLD / bits-per-weight Pareto front
};

ReportSummary summarize(const CompareReport& report);
std::string report_markdown(const CompareReport& report);
std::string report_json(const CompareReport& report);
CompareReport parse_report_json(const std::string& text, const std::string& where);
std::string report_html(const CompareReport& report);
// Writes report.md, report.json and report.html into `dir` (created if needed), each atomically.
void write_report(const std::string& dir, const CompareReport& report);

}  // namespace lowbit
