// lowbit perplexity: llama-perplexity's method (and its KL-divergence mode) on any model lowbit reads.
#include <fmt/core.h>

#include <cstdio>
#include <thread>

#include "cli/command.h"
#include "eval/perplexity.h"
#include "io/model_source.h"
#include "model/llama.h"
#include "model/tokenizer.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit::cli {
namespace {

Run setup_perplexity(CLI::App& app) {
  struct Args {
    std::string model, file, save_logits, kld, tokenizer;
    int64_t ctx = 512, chunks = -1, batch = 2048;
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  };
  auto a = std::make_shared<Args>();
  app.add_option("model", a->model, "model: GGUF, .safetensors, Hugging Face folder or llama2.c checkpoint")->required();
  app.add_option("-f,--file", a->file, "text to score")->required();
  app.add_option("-c,--ctx", a->ctx, "tokens per chunk")->capture_default_str()->check(CLI::Range(int64_t{8}, int64_t{1} << 20));
  app.add_option("--chunks", a->chunks, "chunks to score (-1: all)")->capture_default_str();
  app.add_option("-b,--batch", a->batch, "tokens per evaluation")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--save-logits", a->save_logits, "save the log-probabilities for a later --kl-divergence run");
  app.add_option("--kl-divergence", a->kld, "compare against a --save-logits file of the base model");
  app.add_option("-t,--threads", a->threads, "threads")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--tokenizer", a->tokenizer, "llama2.c: tokenizer .bin or .model");
  return [a]() {
    std::shared_ptr<const ModelSource> src = open_model(a->model, {a->tokenizer});
    Tokenizer tok(src->vocab());
    const std::string text = read_text_file(a->file);
    check(!text.empty(), a->file, "is empty");
    const auto tokens = tok.encode(text, true);
    LlamaModel model(src, {std::max(a->ctx, int64_t{1}), a->threads});
    PerplexityOptions o;
    o.n_ctx = a->ctx;
    o.n_chunks = a->chunks;
    o.n_batch = a->batch;
    o.bos = tok.vocab().add_bos ? tok.vocab().bos_id : -1;
    o.save_logits = a->save_logits;
    o.kld_base = a->kld;
    fmt::print(stderr, "{}: {} tokens, ctx {}, scoring the second half of each chunk\n", a->file, tokens.size(), a->ctx);
    const PerplexityResult r = compute_perplexity(model, tokens, o, [](int64_t chunk, double ppl) {
      fmt::print("[{}]{:.4f},", chunk, ppl);
      std::fflush(stdout);
    });
    fmt::print("\nFinal estimate: PPL = {:.4f} +/- {:.5f}  ({} chunks, {} tokens scored)\n", r.ppl, r.ppl_err,
               r.n_chunks, r.n_scored);
    if (r.kld) fmt::print("\n{}", r.kld->format());
    return 0;
  };
}

const Command kPerplexity{"perplexity", "perplexity and KL-divergence, computed as llama-perplexity does", setup_perplexity};

}  // namespace
}  // namespace lowbit::cli
