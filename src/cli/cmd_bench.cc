// lowbit bench: prompt-processing and generation speed in the shape of llama-bench's table, peak memory,
// and (--roofline) the fraction of the memory-bandwidth bound that generation reaches.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/command.h"
#include "eval/bench.h"
#include "eval/planner.h"
#include "eval/roofline.h"
#include "io/model_source.h"
#include "model/llama.h"
#include "util/error.h"

namespace lowbit::cli {
namespace {

struct Args {
  std::vector<std::string> models;
  std::string tokenizer;
  int64_t n_prompt = 512, n_gen = 128, depth = 0;
  int reps = 5, threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  bool json = false, roofline = false;
};

// Every bench's engine: a context for the deepest test, at least 16 positions.
EngineOptions engine_options(const Args& a) {
  return {std::max<int64_t>(a.depth + a.n_prompt + a.n_gen, 16), a.threads};
}

// A model's size as its tensors' bytes (the table's "size" column, llama-bench's).
double model_bytes(const ModelSource& src) {
  double bytes = 0;
  for (const auto& t : src.tensor_infos()) bytes += static_cast<double>(t.n_bytes());
  return bytes;
}

// One test's figures in --json.
nlohmann::ordered_json test_json(const BenchTest& t) {
  return {{"test", t.name}, {"t_s_mean", t.mean()}, {"t_s_stddev", t.stddev()}, {"samples", t.tokens_per_s}};
}

// Several models: loaded together and benchmarked taking turns (run_bench_in_turn), each test's mean against the
// first model's.
int bench_in_turn(const Args& a) {
  check(!a.roofline, "--roofline", "measures one model at a time; give one model");
  std::vector<std::shared_ptr<const ModelSource>> sources;
  std::vector<std::unique_ptr<LlamaModel>> models;
  std::vector<LanguageModel*> turns;
  for (const std::string& path : a.models) {
    sources.push_back(open_model(path, {a.tokenizer}));
    models.push_back(std::make_unique<LlamaModel>(sources.back(), engine_options(a)));
    turns.push_back(models.back().get());
  }
  const auto results = run_bench_in_turn(turns, a.n_prompt, a.n_gen, a.reps, a.depth);
  if (a.json) {
    nlohmann::ordered_json j;
    j["threads"] = a.threads;
    j["in_turn"] = true;
    for (size_t m = 0; m < models.size(); ++m) {
      nlohmann::ordered_json one;
      one["model"] = a.models[m];
      one["size_bytes"] = model_bytes(*sources[m]);
      one["weight_bytes_per_token"] = models[m]->weight_bytes_per_token();
      for (const auto& t : results[m])
        one["tests"].push_back(test_json(t));
      j["models"].push_back(one);
    }
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("Models taking turns in one process: repetition by repetition, the order reversed every other one.\n\n");
  fmt::print("| model | size | threads | test | t/s | weights GB/s | vs the first |\n"
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (size_t m = 0; m < models.size(); ++m)
    for (size_t i = 0; i < results[m].size(); ++i) {
      const BenchTest& t = results[m][i];
      const bool generation = t.name.rfind("tg", 0) == 0;
      fmt::print("| {} | {} | {} | {} | {:.2f} ± {:.2f} | {} | {:.3f} |\n", a.models[m],
                 format_bytes(model_bytes(*sources[m])), a.threads, t.name, t.mean(), t.stddev(),
                 generation ? fmt::format("{:.1f}", t.mean() * models[m]->weight_bytes_per_token() / 1e9) : "-",
                 t.mean() / results[0][i].mean());
    }
  return 0;
}

Run setup_bench(CLI::App& app) {
  auto a = std::make_shared<Args>();
  app.add_option("model", a->models,
                 "model: GGUF, .safetensors, Hugging Face folder or llama2.c checkpoint; several take turns in one "
                 "process")
      ->required();
  app.add_option("-p,--n-prompt", a->n_prompt, "prompt tokens (0: skip)")->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  app.add_option("-n,--n-gen", a->n_gen, "generated tokens (0: skip)")->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  app.add_option("-d,--n-depth", a->depth, "tokens already in the KV cache when each test starts (llama-bench's -d)")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  app.add_option("-r,--repetitions", a->reps, "repetitions")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("-t,--threads", a->threads, "threads")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_flag("--json", a->json, "print JSON");
  app.add_flag("--roofline", a->roofline,
               "measure memory bandwidth (and, at 2+ threads, their cache-line round trip) and report the fraction "
               "of the generation bound");
  app.add_option("--tokenizer", a->tokenizer, "llama2.c: tokenizer .bin or .model");
  return [a]() {
    if (a->models.size() > 1) return bench_in_turn(*a);
    const std::string& model_path = a->models.front();
    std::shared_ptr<const ModelSource> src = open_model(model_path, {a->tokenizer});
    LlamaModel model(src, engine_options(*a));
    const double bytes = model_bytes(*src);
    double params = 0;
    for (const auto& t : src->tensor_infos()) params += static_cast<double>(t.n_elements());
    const auto tests = run_bench(model, a->n_prompt, a->n_gen, a->reps, nullptr, a->depth);
    // Each generated token reads every weight and the cache up to its position: at positions depth.., on average
    // depth + (n_gen + 1) / 2 keys.
    const double kv_bytes = model.kv_bytes_read(static_cast<double>(a->depth) + static_cast<double>(a->n_gen + 1) / 2);
    const double bytes_per_token = model.weight_bytes_per_token() + kv_bytes;
    const double rss = peak_rss_bytes();  // before the probe's buffer exists
    // --roofline: generation again, each repetition right after a bandwidth probe, and its fraction of the bound
    // from the pair (the machines here change speed from minute to minute); without generation, the bandwidth alone.
    RooflineFraction reached;
    BenchTest paired;
    if (a->roofline) {
      const BandwidthProbe probe(size_t{1} << 30, a->threads);
      if (a->n_gen > 0) {
        paired = run_bench(model, 0, a->n_gen, a->reps, &probe, a->depth).front();
        reached = roofline_fraction(paired, bytes_per_token);
      } else {
        reached.bandwidth_median = probe.measure(5).bytes_per_s;
      }
    }
    const bool has_pairs = !paired.bandwidth.empty();
    const double bound = roofline_tokens_per_s(reached.bandwidth_median, bytes_per_token);
    if (a->json) {
      nlohmann::ordered_json j;
      j["model"] = model_path;
      j["size_bytes"] = bytes;
      j["params"] = params;
      j["threads"] = a->threads;
      j["peak_rss_bytes"] = rss;
      for (const auto& t : tests)
        j["tests"].push_back(test_json(t));
      if (a->roofline) {
        j["bandwidth_bytes_per_s"] = reached.bandwidth_median;
        j["weight_bytes_per_token"] = model.weight_bytes_per_token();
        j["kv_bytes_per_token"] = kv_bytes;
        j["tg_bound_t_s"] = bound;
        if (has_pairs) {
          j["roofline_tg_samples"] = paired.tokens_per_s;
          j["bandwidth_samples"] = paired.bandwidth;
          if (!paired.round_trip_ns.empty()) j["thread_round_trip_ns_samples"] = paired.round_trip_ns;
          j["tg_bound_fraction"] = {{"median", reached.median}, {"min", reached.min}, {"max", reached.max}};
        }
      }
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    fmt::print("| model | size | params | backend | threads | test | t/s |\n| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
    for (const auto& t : tests)
      fmt::print("| {} | {} | {:.2f} M | CPU | {} | {} | {:.2f} ± {:.2f} |\n", src->config().arch, format_bytes(bytes),
                 params / 1e6, a->threads, t.name, t.mean(), t.stddev());
    fmt::print("\npeak memory (RSS): {}\n", format_bytes(rss));
    if (a->roofline) {
      fmt::print("memory bandwidth: {:.2f} GB/s ({} threads{}); read per token: {} of weights + {} of KV cache\n",
                 reached.bandwidth_median / 1e9, a->threads, has_pairs ? ", median of the probes" : "",
                 format_bytes(model.weight_bytes_per_token()), format_bytes(kv_bytes));
      fmt::print("generation bound: {:.1f} t/s", bound);
      if (has_pairs)
        fmt::print("; reached {:.1f}% of it ({} {} repetitions, each right after a probe: {:.1f}-{:.1f}%)",
                   100.0 * reached.median, paired.tokens_per_s.size(), paired.name, 100.0 * reached.min, 100.0 * reached.max);
      fmt::print("\n");
      // Whether the threads share a core changes what their bandwidth and their per-call handovers cost.
      if (!paired.round_trip_ns.empty())
        fmt::print("threads' cache-line round trip: {:.0f} ns (median, measured beside each repetition: "
                   "{:.0f}-{:.0f} ns)\n", reached.round_trip_median, std::ranges::min(paired.round_trip_ns),
                   std::ranges::max(paired.round_trip_ns));
    }
    return 0;
  };
}

const Command kBench{"bench", "prompt and generation speed (llama-bench style), memory, roofline", setup_bench};

}  // namespace
}  // namespace lowbit::cli
