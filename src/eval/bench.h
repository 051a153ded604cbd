// Speed of a model in lowbit's engine, measured as llama-bench does: prompt processing (one batch of
// n_prompt tokens) and text generation (n_gen single-token steps), each repeated, mean and standard deviation
// of tokens/s; plus the process's peak resident memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/language_model.h"

namespace lowbit {

struct BenchTest {
  std::string name;  // "pp512", "tg128"
  int64_t n_tokens = 0;
  std::vector<double> tokens_per_s;  // one per repetition
  double mean() const;
  double stddev() const;
};

// Runs pp (if n_prompt > 0) and tg (if n_gen > 0), `reps` times each after one warm-up. Token ids are
// deterministic and spread over the vocabulary.
std::vector<BenchTest> run_bench(LanguageModel& model, int64_t n_prompt, int64_t n_gen, int reps);

// VmHWM of this process from /proc/self/status, in bytes (0 if unavailable).
double peak_rss_bytes();

}  // namespace lowbit
