#include "eval/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace lowbit {

double BenchTest::mean() const {
  double s = 0;
  for (double v : tokens_per_s) s += v;
  return tokens_per_s.empty() ? 0 : s / static_cast<double>(tokens_per_s.size());
}

double BenchTest::stddev() const {
  if (tokens_per_s.size() < 2) return 0;
  const double m = mean();
  double s = 0;
  for (double v : tokens_per_s) s += (v - m) * (v - m);
  return std::sqrt(s / static_cast<double>(tokens_per_s.size() - 1));
}

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

RooflineFraction roofline_fraction(const BenchTest& tg, double bytes_per_token) {
  std::vector<double> f;
  for (size_t i = 0; i < tg.bandwidth.size() && i < tg.tokens_per_s.size(); ++i) {
    const double bound = roofline_tokens_per_s(tg.bandwidth[i], bytes_per_token);
    if (bound > 0) f.push_back(tg.tokens_per_s[i] / bound);
  }
  RooflineFraction r;
  if (f.empty()) return r;
  r.median = median(f);
  r.min = *std::min_element(f.begin(), f.end());
  r.max = *std::max_element(f.begin(), f.end());
  r.bandwidth_median = median(tg.bandwidth);
  r.round_trip_median = median(tg.round_trip_ns);
  return r;
}

namespace {

// One model's bench: its checks, warm-up and context, then one repetition of each test at a time (so that several
// models can take turns).
class ModelBench {
 public:
  ModelBench(LanguageModel& model, int64_t n_prompt, int64_t n_gen, int reps, int64_t depth)
      : model_(model), n_prompt_(n_prompt), n_gen_(n_gen), depth_(depth), logits_(static_cast<size_t>(model.n_vocab())) {
    check(depth >= 0, "-d", "depth {} is negative", depth);
    check(depth + n_prompt + n_gen <= model.n_ctx(), "bench", "-d {} + -p {} + -n {} exceed the context of {}", depth,
          n_prompt, n_gen, model.n_ctx());
    check(reps >= 1, "-r", "needs at least one repetition");
    // What the process's libraries start can still be running when a small model's first repetitions do: OpenBLAS's
    // thread pool spins ~80 ms after the library loads (perf: sched_yield on a thread of its own), on a core the
    // engine's threads want, and a stories260K pp128 at -t 2 read 9.5k t/s instead of 18-28k. So the engine runs
    // single tokens for a while before anything is timed (a 1B model's first warm-up repetition takes longer anyway).
    for (const auto start = clock::now(); clock::now() - start < std::chrono::milliseconds(200);) {
      const int32_t id = token(0);
      model_.eval(std::span<const int32_t>(&id, 1), 0, logits_.data(), false);
    }
    // The tests write the cache only at and past `depth`, so the context before it is filled once.
    if (depth > 0) model_.eval(prompt_of(depth, 0), 0, logits_.data(), false);
    const std::string at_depth = depth > 0 ? " @ d" + std::to_string(depth) : "";
    if (n_prompt > 0) tests_.push_back({"pp" + std::to_string(n_prompt) + at_depth, n_prompt, {}});
    if (n_gen > 0) tests_.push_back({"tg" + std::to_string(n_gen) + at_depth, n_gen, {}});
  }
  // Repetition r of the pp test, if any (r = 0 warms caches and is not counted).
  void prompt_repetition(int r) {
    if (n_prompt_ <= 0) return;
    const std::vector<int32_t> prompt = prompt_of(n_prompt_, depth_);
    const auto t0 = clock::now();
    model_.eval(prompt, depth_, logits_.data(), false);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    if (r > 0) tests_.front().tokens_per_s.push_back(static_cast<double>(n_prompt_) / s);
  }
  // Repetition r of the tg test, if any; with a probe, right after a bandwidth measurement.
  void generation_repetition(int r, const BandwidthProbe* probe) {
    if (n_gen_ > 0) {
      BenchTest& t = tests_.back();
      // Three passes over the probe's buffer, best of them: ~0.1 s for 1 GiB here.
      if (probe && r > 0) {
        t.bandwidth.push_back(probe->measure(3).bytes_per_s);
        const std::vector<double> trips = thread_round_trip_ns(probe->threads());
        if (!trips.empty()) t.round_trip_ns.push_back(*std::max_element(trips.begin(), trips.end()));
      }
      const auto t0 = clock::now();
      for (int64_t i = 0; i < n_gen_; ++i) {
        const int32_t id = token(depth_ + i);
        model_.eval(std::span<const int32_t>(&id, 1), depth_ + i, logits_.data(), false);
      }
      const double s = std::chrono::duration<double>(clock::now() - t0).count();
      if (r > 0) t.tokens_per_s.push_back(static_cast<double>(n_gen_) / s);
    }
  }
  std::vector<BenchTest> tests() && { return std::move(tests_); }

 private:
  using clock = std::chrono::steady_clock;
  int32_t token(int64_t i) const { return static_cast<int32_t>((i * 7919 + 13) % model_.n_vocab()); }
  std::vector<int32_t> prompt_of(int64_t n, int64_t first) const {
    std::vector<int32_t> prompt(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) prompt[static_cast<size_t>(i)] = token(first + i);
    return prompt;
  }

  LanguageModel& model_;
  int64_t n_prompt_, n_gen_, depth_;
  std::vector<float> logits_;
  std::vector<BenchTest> tests_;
};

}  // namespace

std::vector<BenchTest> run_bench(LanguageModel& model, int64_t n_prompt, int64_t n_gen, int reps,
                                 const BandwidthProbe* probe, int64_t depth) {
  ModelBench bench(model, n_prompt, n_gen, reps, depth);
  for (int r = 0; r <= reps; ++r) bench.prompt_repetition(r);  // llama-bench's order: every pp, then every tg
  for (int r = 0; r <= reps; ++r) bench.generation_repetition(r, probe);
  return std::move(bench).tests();
}

std::vector<std::vector<BenchTest>> run_bench_in_turn(std::span<LanguageModel* const> models, int64_t n_prompt,
                                                      int64_t n_gen, int reps, int64_t depth) {
  std::vector<ModelBench> benches;
  benches.reserve(models.size());
  for (LanguageModel* m : models) benches.emplace_back(*m, n_prompt, n_gen, reps, depth);
  for (int r = 0; r <= reps; ++r)
    for (size_t k = 0; k < benches.size(); ++k) {
      ModelBench& b = benches[r % 2 ? benches.size() - 1 - k : k];
      b.prompt_repetition(r);
      b.generation_repetition(r, nullptr);
    }
  std::vector<std::vector<BenchTest>> out;
  for (ModelBench& b : benches) out.push_back(std::move(b).tests());
  return out;
}

double peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream ss(line.substr(6));
      double kb = 0;
      ss >> kb;
      return kb * 1024;
    }
  return 0;
}

}  // namespace lowbit
