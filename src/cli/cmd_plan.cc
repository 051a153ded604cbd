// lowbit plan: which formats of a model fit a memory budget, and which to pick.
#include <fmt/core.h>

#include "cli/command.h"
#include "eval/planner.h"
#include "io/model_source.h"

namespace lowbit::cli {
namespace {

Run setup_plan(CLI::App& app) {
  struct Args {
    std::string params, model, mem, kv_type = "f16", report;
    int64_t ctx = 4096, batch = 1;
  };
  auto a = std::make_shared<Args>();
  auto* group = app.add_option_group("model", "what to plan for");
  group->add_option("--params", a->params, "parameter count, e.g. 70B, 8B, 1.5B, 135M (shape of the nearest known model)");
  group->add_option("--model", a->model, "a model lowbit can read (GGUF, safetensors, HF folder, llama2.c)");
  group->require_option(1);
  app.add_option("--mem", a->mem, "memory budget, e.g. 24GiB, 16GB, 8G")->required();
  app.add_option("--ctx", a->ctx, "context length in tokens")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  app.add_option("--batch", a->batch, "sequences served at once (each has its own KV cache)")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--kv-type", a->kv_type, "KV cache type: f16, bf16, q8_0, q4_0, f32")->capture_default_str();
  app.add_option("--report", a->report, "report.json from `lowbit compare`: rank formats by measured KLD");
  return [a]() {
    PlanOptions o;
    o.n_ctx = a->ctx;
    o.batch = a->batch;
    o.kv_type = a->kv_type;
    o.mem_bytes = parse_memory_size(a->mem);
    kv_bytes_per_element(o.kv_type);  // validate before any work
    PlanModel model;
    if (!a->params.empty()) {
      model = estimate_model(parse_param_count(a->params));
    } else {
      auto src = open_model(a->model);
      model = plan_model_from(a->model, src->config(), src->tensor_infos());
    }
    fmt::print("{}", format_plan(make_plan(model, o, a->report)));
    return 0;
  };
}

const Command kPlan{"plan", "memory planner: which formats fit a budget, and which to use", setup_plan};

}  // namespace
}  // namespace lowbit::cli
