// lowbit inspect: what a model file holds — architecture, hyper-parameters, metadata, every tensor, totals.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <map>

#include "cli/command.h"
#include "io/model_source.h"
#include "util/progress.h"

namespace lowbit::cli {
namespace {

const char* rope_scaling_name(RopeScaling s) {
  switch (s) {
    case RopeScaling::None: return "none";
    case RopeScaling::Linear: return "linear";
    case RopeScaling::Llama3: return "llama3";
    case RopeScaling::Yarn: return "yarn";
  }
  return "?";
}

nlohmann::ordered_json config_json(const ModelConfig& c) {
  return {{"arch", c.arch},
          {"hf_architecture", c.hf_architecture},
          {"n_vocab", c.n_vocab},
          {"n_embd", c.n_embd},
          {"n_layer", c.n_layer},
          {"n_head", c.n_head},
          {"n_head_kv", c.n_head_kv},
          {"head_dim", c.n_embd_head()},
          {"n_ff", c.n_ff},
          {"n_ctx_train", c.n_ctx_train},
          {"norm_eps", c.norm_eps},
          {"rope_theta", c.rope.theta},
          {"rope_scaling", rope_scaling_name(c.rope.scaling)},
          {"rope_factor", c.rope.factor},
          {"rope_neox", c.rope.neox},
          {"tied_embeddings", c.tied_embeddings},
          {"attn_qkv_bias", c.attn_qkv_bias},
          {"attn_qk_norm", c.attn_qk_norm}};
}

Run setup_inspect(CLI::App& app) {
  struct Args {
    std::string path, tokenizer;
    bool json = false, quiet = false;
  };
  auto a = std::make_shared<Args>();
  app.add_option("path", a->path, "GGUF file, .safetensors file, Hugging Face folder or llama2.c checkpoint")->required();
  app.add_option("--tokenizer", a->tokenizer, "llama2.c: tokenizer .bin or .model (default: beside the model)");
  app.add_flag("--json", a->json, "print JSON instead of text");
  app.add_flag("--quiet", a->quiet, "no progress output");
  return [a]() {
    set_quiet(a->quiet);
    auto src = open_model(a->path, {a->tokenizer});
    const ModelConfig& c = src->config();
    struct Total {
      int64_t tensors = 0, elements = 0;
      uint64_t bytes = 0;
    };
    std::map<std::string, Total> per_type;
    Total all;
    for (const auto& t : src->tensor_infos()) {
      auto& pt = per_type[dtype_name(t.type)];
      pt.tensors += 1, pt.elements += t.n_elements(), pt.bytes += t.n_bytes();
      all.tensors += 1, all.elements += t.n_elements(), all.bytes += t.n_bytes();
    }
    const double bpw = all.elements ? 8.0 * static_cast<double>(all.bytes) / static_cast<double>(all.elements) : 0;
    const auto metadata = src->metadata_strings();

    if (a->json) {
      nlohmann::ordered_json j;
      j["path"] = a->path;
      j["format"] = src->format();
      j["config"] = config_json(c);
      j["vocab"] = {{"model", src->vocab().model}, {"pre", src->vocab().pre}, {"size", src->vocab().size()},
                    {"bos", src->vocab().bos_id}, {"eos", src->vocab().eos_id}};
      j["metadata"] = nlohmann::ordered_json::object();
      for (const auto& [k, v] : metadata) j["metadata"][k] = v;
      j["tensors"] = nlohmann::ordered_json::array();
      for (const auto& t : src->tensor_infos()) {
        std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
        j["tensors"].push_back({{"name", t.name}, {"type", dtype_name(t.type)}, {"ne", ne}, {"bytes", t.n_bytes()}});
      }
      j["totals"] = {{"tensors", all.tensors}, {"parameters", all.elements}, {"bytes", all.bytes},
                     {"bits_per_weight", bpw}};
      for (const auto& [type, t] : per_type)
        j["totals"]["per_type"][type] = {{"tensors", t.tensors}, {"parameters", t.elements}, {"bytes", t.bytes}};
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    fmt::print("{}: {} ({})\n", a->path, src->format(), c.hf_architecture.empty() ? c.arch : c.hf_architecture);
    fmt::print("  arch {}  layers {}  embd {}  heads {}/{} (kv)  head_dim {}  ffn {}  vocab {}  ctx {}\n", c.arch,
               c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.n_embd_head(), c.n_ff, c.n_vocab, c.n_ctx_train);
    fmt::print("  rms_eps {:g}  rope theta {:g} scaling {}{}  tied embeddings {}{}{}\n", c.norm_eps, c.rope.theta,
               rope_scaling_name(c.rope.scaling), c.rope.neox ? " (neox)" : "", c.tied_embeddings ? "yes" : "no",
               c.attn_qkv_bias ? "  qkv bias" : "", c.attn_qk_norm ? "  q/k norm" : "");
    const Vocab& v = src->vocab();
    if (v.empty()) fmt::print("  tokenizer: none found\n");
    else
      fmt::print("  tokenizer: {} ({}) {} tokens, bos {} eos {}\n", v.model, v.pre.empty() ? "-" : v.pre, v.size(),
                 v.bos_id, v.eos_id);
    if (!metadata.empty()) {
      fmt::print("metadata ({} keys):\n", metadata.size());
      for (const auto& [k, val] : metadata) fmt::print("  {:<42} {}\n", k, val);
    }
    fmt::print("tensors ({}):\n", all.tensors);
    for (const auto& t : src->tensor_infos())
      fmt::print("  {:<36} {:<7} {:<16} {:>12} bytes\n", t.name, dtype_name(t.type), t.shape_string(), t.n_bytes());
    fmt::print("totals:\n");
    for (const auto& [type, t] : per_type)
      fmt::print("  {:<7} {:>4} tensors {:>12} params {:>12} bytes\n", type, t.tensors, t.elements, t.bytes);
    fmt::print("  all     {:>4} tensors {:>12} params {:>12} bytes  {:.3f} bits per weight\n", all.tensors,
               all.elements, all.bytes, bpw);
    return 0;
  };
}

const Command kInspect{"inspect", "describe a model: hyper-parameters, metadata, tensors, totals", setup_inspect};

}  // namespace
}  // namespace lowbit::cli
