// Multiple-choice evaluation scored like lm-evaluation-harness: each choice's summed log-likelihood as a
// continuation of the context; acc = argmax of the sum, acc_norm = argmax of the sum divided by the choice's
// length in characters. Task files are read in their published layouts (see load_task).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/language_model.h"

namespace lowbit {

struct McItem {
  std::string context;               // text the choices continue (few-shot examples already prepended)
  std::vector<std::string> choices;  // continuations, without the leading delimiter
  int gold = 0;
};

enum class McTask { HellaSwag, ArcChallenge, ArcEasy, TruthfulQaMc1 };

McTask mc_task_from_name(const std::string& name);  // "hellaswag", "arc-challenge", "arc-easy", "truthfulqa-mc1"
const char* mc_task_name(McTask task);

// Reads a task file:
//  - hellaswag: HellaSwag jsonl (ctx_a, ctx_b, activity_label, endings[4], label), lm-eval's preprocessing;
//  - arc-*: jsonl in the AI2 schema ({"question":{"stem","choices":[{"text","label"}]},"answerKey"}) or the
//    flat one ({"question","options":[{"label","text"}],"answer"}); prompt "Question: ...\nAnswer:";
//  - truthfulqa-mc1: TruthfulQA's mc_task.json (mc1_targets in file order), with the paper's 6-shot QA preamble.
// `shots` > 0 prepends that many solved items from the same file (the first ones that are not the item itself),
// joined by blank lines. `limit` > 0 keeps the first `limit` items. Throws Error naming the file on bad data.
std::vector<McItem> load_mc_task(McTask task, const std::string& path, int limit = 0, int shots = 0);

struct McScore {
  int n = 0;
  double acc = 0, acc_stderr = 0;
  double acc_norm = 0, acc_norm_stderr = 0;
  std::vector<std::vector<double>> loglikelihoods;  // per item, per choice
};

using TextEncoder = std::function<std::vector<int32_t>(const std::string&)>;  // text -> ids, no BOS/EOS

// Scores items with `model`. `bos` >= 0 is put before every context (as llama.cpp does for models that add BOS).
// Each item's context is evaluated once and shared by its choices. Contexts longer than the model's context
// are cut from the left. `progress(done, total)` is called after each item.
McScore score_multiple_choice(LanguageModel& model, const TextEncoder& encode, int32_t bos,
                              const std::vector<McItem>& items,
                              const std::function<void(int, int)>& progress = nullptr);

}  // namespace lowbit
