// lowbit eval: multiple-choice accuracy (HellaSwag, ARC, TruthfulQA MC1) scored like lm-evaluation-harness.
#include <fmt/core.h>

#include <thread>

#include "cli/command.h"
#include "eval/multiple_choice.h"
#include "io/model_source.h"
#include "model/llama.h"
#include "model/tokenizer.h"

namespace lowbit::cli {
namespace {

Run setup_eval(CLI::App& app) {
  struct Args {
    std::string model, task, data, tokenizer;
    int limit = 0, shots = 0, threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  };
  auto a = std::make_shared<Args>();
  app.add_option("model", a->model, "model: GGUF, .safetensors, Hugging Face folder or llama2.c checkpoint")->required();
  app.add_option("--task", a->task, "hellaswag, arc-challenge, arc-easy or truthfulqa-mc1")->required();
  app.add_option("--data", a->data, "task file: HellaSwag .jsonl, ARC .jsonl, TruthfulQA mc_task.json")->required();
  app.add_option("--limit", a->limit, "first N items (0: all)")->capture_default_str()->check(CLI::Range(0, 1 << 24));
  app.add_option("--shots", a->shots, "solved examples put before each question")->capture_default_str()->check(CLI::Range(0, 64));
  app.add_option("-t,--threads", a->threads, "threads")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--tokenizer", a->tokenizer, "llama2.c: tokenizer .bin or .model");
  return [a]() {
    const McTask task = mc_task_from_name(a->task);
    const auto items = load_mc_task(task, a->data, a->limit, a->shots);
    std::shared_ptr<const ModelSource> src = open_model(a->model, {a->tokenizer});
    Tokenizer tok(src->vocab());
    LlamaModel model(src, {0, a->threads});
    const int32_t bos = tok.vocab().add_bos ? tok.vocab().bos_id : -1;
    const McScore s = score_multiple_choice(
        model, [&](const std::string& text) { return tok.encode(text, false); }, bos, items,
        [](int done, int total) { fmt::print(stderr, "\r{}/{}", done, total); });
    fmt::print(stderr, "\n");
    fmt::print("| task | n | shots | acc | acc_norm |\n|---|---:|---:|---:|---:|\n");
    fmt::print("| {} | {} | {} | {:.2f} ± {:.2f} % | {:.2f} ± {:.2f} % |\n", mc_task_name(task), s.n, a->shots,
               100 * s.acc, 100 * s.acc_stderr, 100 * s.acc_norm, 100 * s.acc_norm_stderr);
    return 0;
  };
}

const Command kEval{"eval", "multiple-choice accuracy (HellaSwag, ARC, TruthfulQA MC1)", setup_eval};

}  // namespace
}  // namespace lowbit::cli
