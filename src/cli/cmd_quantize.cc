// lowbit quantize SRC OUT.gguf TYPE: llama-quantize's job (same file types, rules and options), from any input.
#include <fmt/core.h>

#include <thread>

#include "algo/gguf_quantize.h"
#include "cli/command.h"
#include "io/model_source.h"
#include "util/error.h"
#include "util/progress.h"

namespace lowbit::cli {
namespace {

DType parse_type_flag(const std::string& flag, const std::string& value) {
  auto t = dtype_from_name(value);
  check(t && type_traits(*t).quantize != nullptr && static_cast<uint32_t>(*t) < 1000, flag,
        "'{}' is not a tensor type lowbit can write (e.g. q8_0, q4_K, q6_K, f16)", value);
  return *t;
}

std::string file_type_list() {
  std::string s;
  for (const auto& f : all_file_types()) s += fmt::format("\n  {:<7} {}", f.name, f.summary);
  return s;
}

Run setup_quantize(CLI::App& app) {
  struct Args {
    std::string src, out, type, imatrix, output_tensor_type, token_embedding_type, tokenizer;
    std::vector<std::string> tensor_types, include, exclude;
    bool pure = false, leave_output = false, allow_requantize = false, quiet = false;
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  };
  auto a = std::make_shared<Args>();
  app.footer("file types:" + file_type_list());
  app.add_option("src", a->src, "input model: GGUF, .safetensors, Hugging Face folder or llama2.c checkpoint")->required();
  app.add_option("out", a->out, "output .gguf file")->required();
  app.add_option("type", a->type, "file type, e.g. Q4_K_M (list below)")->required();
  app.add_option("--imatrix", a->imatrix, "importance matrix (llama.cpp .dat or GGUF) to weight the rounding");
  app.add_option("--include-weights", a->include, "use the importance matrix only for these tensors (substring, repeatable)");
  app.add_option("--exclude-weights", a->exclude, "do not use the importance matrix for these tensors (repeatable)");
  app.add_option("--output-tensor-type", a->output_tensor_type, "type for output.weight (e.g. q8_0)");
  app.add_option("--token-embedding-type", a->token_embedding_type, "type for token_embd.weight");
  app.add_option("--tensor-type", a->tensor_types, "REGEX=TYPE: type for tensors whose name matches (repeatable, first match wins)");
  app.add_flag("--pure", a->pure, "no per-tensor mix rules: every quantizable tensor gets the default type");
  app.add_flag("--leave-output-tensor", a->leave_output, "keep output.weight unquantized");
  app.add_flag("--allow-requantize", a->allow_requantize, "allow quantizing tensors that are already quantized");
  app.add_option("-t,--threads", a->threads, "threads")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--tokenizer", a->tokenizer, "llama2.c input: tokenizer .bin or .model");
  app.add_flag("--quiet", a->quiet, "no progress output");
  return [a]() {
    set_quiet(a->quiet);
    GgufQuantizeOptions o;
    const auto ftype = file_type_from_name(a->type);
    if (!ftype) {
      std::string names;
      for (const auto& f : all_file_types()) names += std::string(names.empty() ? "" : ", ") + f.name;
      fail("type", "unknown file type '{}' (one of {})", a->type, names);
    }
    o.mix.ftype = *ftype;
    o.mix.pure = a->pure;
    o.mix.quantize_output = !a->leave_output;
    if (!a->output_tensor_type.empty()) o.mix.output_type = parse_type_flag("--output-tensor-type", a->output_tensor_type);
    if (!a->token_embedding_type.empty())
      o.mix.token_embedding_type = parse_type_flag("--token-embedding-type", a->token_embedding_type);
    for (const auto& tt : a->tensor_types) {
      const auto eq = tt.rfind('=');
      check(eq != std::string::npos && eq > 0, "--tensor-type", "'{}' is not REGEX=TYPE", tt);
      o.mix.tensor_type_overrides.emplace_back(tt.substr(0, eq), parse_type_flag("--tensor-type", tt.substr(eq + 1)));
    }
    o.allow_requantize = a->allow_requantize;
    o.threads = a->threads;
    o.include_weights = a->include;
    o.exclude_weights = a->exclude;
    Imatrix imatrix;
    if (!a->imatrix.empty()) {
      imatrix = read_imatrix(a->imatrix);
      o.imatrix = &imatrix;
      o.imatrix_path = a->imatrix;
    }
    std::shared_ptr<const ModelSource> src = open_model(a->src, {a->tokenizer});
    const QuantizeReport r = quantize_to_gguf(src, a->out, o);
    for (const auto& t : r.tensors)
      if (!t.note.empty()) fmt::print(stderr, "warning: {}: {}\n", t.name, t.note);
    fmt::print("{} -> {} ({})\n{}", a->src, a->out, file_type_info(o.mix.ftype).name, r.summary_table());
    return 0;
  };
}

const Command kQuantize{"quantize", "quantize a model to GGUF (llama.cpp file types, imatrix, mixes)", setup_quantize};

}  // namespace
}  // namespace lowbit::cli
