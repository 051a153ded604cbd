// Speed of a model in lowbit's engine, measured as llama-bench does: prompt processing (one batch of
// n_prompt tokens) and text generation (n_gen single-token steps), each repeated, mean and standard deviation
// of tokens/s; plus the process's peak resident memory and (with a bandwidth probe) the fraction of the
// memory-bandwidth bound each generation repetition reached.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "eval/roofline.h"
#include "model/language_model.h"

namespace lowbit {

struct BenchTest {
  std::string name;  // "pp512", "tg128"
  int64_t n_tokens = 0;
  std::vector<double> tokens_per_s;  // one per repetition
  std::vector<double> bandwidth;     // tg with a probe: bytes/s measured right before each repetition
  std::vector<double> round_trip_ns;  // and at 2+ threads the slowest thread_round_trip_ns beside it
  double mean() const;
  double stddev() const;
};

// Runs pp (if n_prompt > 0) and tg (if n_gen > 0), `reps` times each after one warm-up. Token ids are
// deterministic and spread over the vocabulary. With a probe, each tg repetition is paired with a bandwidth
// measurement taken just before it. depth > 0: as llama-bench's -d, a prompt of that many tokens fills the KV
// cache first (not timed) and the tests run at the positions after it ("pp512 @ d1024").
std::vector<BenchTest> run_bench(LanguageModel& model, int64_t n_prompt, int64_t n_gen, int reps,
                                 const BandwidthProbe* probe = nullptr, int64_t depth = 0);

// Several models benchmarked in one process, taking turns: repetition r of every model's tests, then r + 1, the
// order reversed every other repetition. A machine whose speed drifts from minute to minute (the VMs here: the
// bandwidth probe read 30-44 GB/s on one core within an hour) then slows every model alike, and their ratios hold.
// One list of tests per model, as run_bench's.
std::vector<std::vector<BenchTest>> run_bench_in_turn(std::span<LanguageModel* const> models, int64_t n_prompt,
                                                      int64_t n_gen, int reps, int64_t depth = 0);

// A tg test's place under the bandwidth bound: per repetition, tokens/s over bandwidth / bytes_per_token; the
// median of the repetitions and their range, the median bandwidth and round trip.
struct RooflineFraction {
  double median = 0, min = 0, max = 0;
  double bandwidth_median = 0;   // bytes/s
  double round_trip_median = 0;  // ns; 0 for one thread
};
RooflineFraction roofline_fraction(const BenchTest& tg, double bytes_per_token);

// VmHWM of this process from /proc/self/status, in bytes (0 if unavailable).
double peak_rss_bytes();

}  // namespace lowbit
