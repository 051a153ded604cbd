// Perplexity exactly as llama.cpp's llama-perplexity computes it, and KL-divergence against a base model
// as its --kl-divergence-base / --kl-divergence modes do, so figures are comparable with llama.cpp's.
//
// Method: the whole text is tokenized (with BOS when the vocabulary adds one) and cut into chunks of n_ctx
// tokens; each chunk starts fresh with its first token replaced by BOS and only the second half is scored
// (positions n_ctx/2 .. n_ctx-2 predicting the next token). PPL = exp(mean NLL); its error is
// sqrt(var(NLL) / (count - 1)) * PPL.
//
// Logits file (`--save-logits`), little-endian: "LBLOGITS" | u32 version 1 | u32 n_vocab | u32 n_ctx |
// u32 n_chunks | u64 FNV-1a hash of every token id evaluated | then, for each scored position, f32 max_lp,
// f32 step and n_vocab u16 q, where the log-probability of token j is max_lp - q[j] * step (clamped at 24
// nats below the maximum). 2 bytes per vocabulary entry per position, like llama.cpp's uint16 form.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/language_model.h"

namespace lowbit {

struct KldSummary {
  int64_t count = 0;
  double ppl_q = 0, ppl_q_err = 0, ppl_base = 0, ppl_base_err = 0;
  double ln_ratio = 0, ln_ratio_err = 0;  // mean ln(PPL(Q)/PPL(base))
  double cor_ln_ppl = 0;                  // correlation of per-token NLL, Q vs base
  double kld_mean = 0, kld_err = 0, kld_max = 0, kld_p99_9 = 0, kld_p99 = 0, kld_p90 = 0, kld_median = 0,
         kld_p10 = 0, kld_p5 = 0, kld_p1 = 0, kld_min = 0;
  double dp_mean = 0, dp_err = 0, dp_rms = 0, dp_rms_err = 0, dp_max = 0, dp_min = 0;
  double same_top_pct = 0, same_top_err = 0;
  std::string format() const;  // llama.cpp-like report
};

struct PerplexityOptions {
  int64_t n_ctx = 512;
  int64_t n_chunks = -1;   // -1: all
  int64_t n_batch = 2048;  // tokens per evaluation (clamped to n_ctx)
  int32_t bos = -1;        // replaces each chunk's first token when >= 0
  std::string save_logits;  // write the base log-probabilities here
  std::string kld_base;     // compare against this file
};

struct PerplexityResult {
  double ppl = 0, ppl_err = 0;
  int64_t n_chunks = 0, n_scored = 0;
  std::vector<double> running_ppl;  // after each chunk, as llama.cpp prints "[1]558.47,[2]..."
  std::optional<KldSummary> kld;
};

PerplexityResult compute_perplexity(LanguageModel& model, const std::vector<int32_t>& tokens,
                                    const PerplexityOptions& options,
                                    const std::function<void(int64_t chunk, double running_ppl)>& progress = nullptr);

}  // namespace lowbit
