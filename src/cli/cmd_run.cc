// lowbit run: generate text with lowbit's own engine from any model it reads.
#include <fmt/core.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/command.h"
#include "io/model_source.h"
#include "model/llama.h"
#include "model/sampler.h"
#include "model/tokenizer.h"
#include "util/error.h"

namespace lowbit::cli {
namespace {

Run setup_run(CLI::App& app) {
  struct Args {
    std::string model, prompt, tokenizer;
    int n_predict = 128, top_k = 40, threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    float temp = 0.0f, top_p = 0.95f;
    uint64_t seed = 42;
    int64_t ctx = 0;
    bool verbose = false;
  };
  auto a = std::make_shared<Args>();
  app.add_option("model", a->model, "model: GGUF, .safetensors, Hugging Face folder or llama2.c checkpoint")->required();
  app.add_option("-p,--prompt", a->prompt, "prompt text (empty: start from BOS alone)");
  app.add_option("-n,--n-predict", a->n_predict, "tokens to generate")->capture_default_str()->check(CLI::Range(0, 1 << 20));
  app.add_option("--temp", a->temp, "temperature (0: greedy)")->capture_default_str()->check(CLI::Range(0.0f, 100.0f));
  app.add_option("--top-k", a->top_k, "keep the k most likely tokens (0: all)")->capture_default_str()->check(CLI::Range(0, 1 << 24));
  app.add_option("--top-p", a->top_p, "keep the smallest set with this much probability")->capture_default_str()->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--seed", a->seed, "random seed for sampling")->capture_default_str();
  app.add_option("-c,--ctx", a->ctx, "context size (default: the model's, at most 4096)");
  app.add_option("-t,--threads", a->threads, "threads")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--tokenizer", a->tokenizer, "llama2.c: tokenizer .bin or .model");
  app.add_flag("-v,--verbose", a->verbose, "print timing to stderr");
  return [a]() {
    std::shared_ptr<const ModelSource> src = open_model(a->model, {a->tokenizer});
    Tokenizer tok(src->vocab());
    LlamaModel model(src, {a->ctx, a->threads});
    std::vector<int32_t> ids = tok.encode(a->prompt, true);
    if (ids.empty()) ids.push_back(tok.vocab().bos_id);
    check(static_cast<int64_t>(ids.size()) + a->n_predict <= model.n_ctx(), "--prompt",
          "{} prompt tokens + {} to generate exceed the context of {}", ids.size(), a->n_predict, model.n_ctx());
    Sampler sampler({a->temp, a->top_k, a->top_p, a->seed});
    std::vector<float> logits(static_cast<size_t>(model.n_vocab()));
    fmt::print("{}", a->prompt);
    const auto t0 = std::chrono::steady_clock::now();
    model.eval(ids, 0, logits.data(), false);
    int64_t pos = static_cast<int64_t>(ids.size());
    bool first = a->prompt.empty();
    int generated = 0;
    for (; generated < a->n_predict; ++generated) {
      const int32_t next = sampler.sample(logits);
      if (next == tok.vocab().eos_id) break;
      std::string piece = tok.token_to_piece(next);
      if (first && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);  // SentencePiece drops the leading space
      first = false;
      fmt::print("{}", piece);
      std::fflush(stdout);
      if (generated + 1 == a->n_predict) break;
      model.eval(std::span<const int32_t>(&next, 1), pos++, logits.data(), false);
    }
    fmt::print("\n");
    if (a->verbose) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      fmt::print(stderr, "{} tokens in {:.2f} s ({:.1f} tokens/s)\n", generated, s, generated / s);
    }
    return 0;
  };
}

const Command kRun{"run", "generate text with lowbit's CPU engine", setup_run};

}  // namespace
}  // namespace lowbit::cli
