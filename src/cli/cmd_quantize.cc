// lowbit quantize SRC OUT.gguf TYPE: llama-quantize's job (same file types, rules and options), from any input.
#include <fmt/core.h>

#include <thread>

#include "algo/gguf_calibrated.h"
#include "algo/gguf_quantize.h"
#include "algo/hf_int_quantize.h"
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
    std::string src, out, type, imatrix, output_tensor_type, token_embedding_type, tokenizer, method, calib, format,
        dtype = "f16";
    int bits = 4, group_size = 128, nsamples = 128, seqlen = 512;
    uint64_t seed = 0;
    double damp = 0.01;
    bool act_order = false, asym = false, resume = false, no_true_sequential = false;
    std::vector<std::string> tensor_types, include, exclude;
    bool sym = false, mse = false, pure = false, leave_output = false, allow_requantize = false, quiet = false;
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  };
  auto a = std::make_shared<Args>();
  app.footer("file types:" + file_type_list());
  app.add_option("src", a->src, "input model: GGUF, .safetensors, Hugging Face folder or llama2.c checkpoint")->required();
  app.add_option("out", a->out, "output .gguf file, or a folder for --method (HF GPTQ/AWQ checkpoint)")->required();
  app.add_option("type", a->type, "GGUF file type, e.g. Q4_K_M (list below)");
  app.add_option("--method", a->method,
                 "rtn, gptq or awq: to a folder, an HF GPTQ/AWQ checkpoint; to OUT.gguf TYPE (gptq, awq), GGUF of that "
                 "type with the method's error compensation")
      ->check(CLI::IsMember({"rtn", "gptq", "awq"}));
  app.add_option("--format", a->format, "HF checkpoint layout: gptq (default for rtn/gptq) or awq (default for awq)")
      ->check(CLI::IsMember({"gptq", "awq"}));
  app.add_option("--dtype", a->dtype, "HF checkpoints: type of the unquantized tensors")->capture_default_str()
      ->check(CLI::IsMember({"f16", "bf16"}));
  app.add_flag("--mse", a->mse, "GPTQ/RTN: grid search over shrunk ranges for each group's scale");
  app.add_flag("--no-true-sequential", a->no_true_sequential,
               "GPTQ: quantize a layer's linears from one pass instead of q/k/v, o, gate/up, down in turn");
  app.add_option("--bits", a->bits, "bits per weight (--method)")->capture_default_str()->check(CLI::Range(2, 8));
  app.add_option("--group-size", a->group_size, "group size, -1 for one group per row (--method)")->capture_default_str();
  app.add_flag("--act-order", a->act_order, "GPTQ act-order (desc_act), static groups");
  app.add_flag("--asym", a->asym, "asymmetric quantization (GPTQ: written as gptq_v2); default symmetric, AWQ asymmetric");
  app.add_flag("--sym", a->sym, "symmetric quantization (AWQ: no zero point)");
  app.add_option("--calib", a->calib, "calibration text (--method gptq|awq)");
  app.add_option("--nsamples", a->nsamples, "calibration windows")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--seqlen", a->seqlen, "tokens per calibration window")->capture_default_str()->check(CLI::Range(2, 1 << 20));
  app.add_option("--seed", a->seed, "seed for choosing the windows")->capture_default_str();
  app.add_flag("--resume", a->resume, "continue a killed --method run from the layers it saved");
  CLI::Option* damp = app.add_option("--damp", a->damp,
                                     "GPTQ damping relative to the mean Hessian diagonal (default 0.01; 0.1 for GGUF)");
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
  return [a, damp]() {
    set_quiet(a->quiet);
    const bool to_gguf = a->out.size() >= 5 && a->out.compare(a->out.size() - 5, 5, ".gguf") == 0;
    check(!(a->sym && a->asym), "--sym", "--sym and --asym exclude each other");
    if (!a->method.empty() && !to_gguf) {
      check(a->type.empty(), "type", "'{}': a file type goes with an OUT.gguf, --method {} writes a folder", a->type,
            a->method);
      HfIntQuantizeOptions h;
      h.method = a->method;
      h.format = a->format;
      h.config.bits = a->bits;
      h.config.group_size = a->group_size;
      h.config.sym = a->method == "awq" ? a->sym : !a->asym;
      h.config.desc_act = a->act_order;
      h.config.static_groups = a->act_order;
      h.config.mse = a->mse;
      h.dense_type = a->dtype == "bf16" ? DType::BF16 : DType::F16;
      h.gptq.damp_percent = a->damp;
      h.true_sequential = !a->no_true_sequential;
      h.calib = {a->calib, a->nsamples, a->seqlen, a->seed};
      h.threads = a->threads;
      h.resume = a->resume;
      std::shared_ptr<const ModelSource> src = open_model(a->src, {a->tokenizer});
      const auto reports = quantize_to_hf(src, a->out, h);
      if (a->method != "rtn") fmt::print("{}", linear_report_table(reports));
      fmt::print("{} -> {}/ ({} w{}g{}{}, {} layout)\n", a->src, a->out, a->method, a->bits, a->group_size,
                 a->act_order ? " act-order" : "", h.format.empty() ? (a->method == "awq" ? "awq" : "gptq") : h.format);
      return 0;
    }
    check(a->method != "rtn", "--method", "rtn to GGUF is plain `lowbit quantize SRC OUT.gguf TYPE`");
    check(!a->type.empty(), "type", "give a GGUF file type (e.g. Q4_K_M) or --method rtn|gptq|awq with a folder");
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
    QuantizeReport r;
    if (!a->method.empty()) {
      CalibratedGgufOptions c;
      c.method = a->method;
      c.calib = {a->calib, a->nsamples, a->seqlen, a->seed};
      if (damp->count() > 0) c.gptq.damp_percent = a->damp;
      c.true_sequential = !a->no_true_sequential;
      c.resume = a->resume;
      CalibratedGgufReport cr = quantize_to_gguf_calibrated(src, a->out, o, c);
      fmt::print("{}", linear_report_table(cr.linears));
      r = std::move(cr.quantize);
    } else {
      r = quantize_to_gguf(src, a->out, o);
    }
    for (const auto& t : r.tensors)
      if (!t.note.empty()) fmt::print(stderr, "warning: {}: {}\n", t.name, t.note);
    fmt::print("{} -> {} ({})\n{}", a->src, a->out, file_type_info(o.mix.ftype).name, r.summary_table());
    return 0;
  };
}

const Command kQuantize{"quantize", "quantize a model: GGUF (llama.cpp types, imatrix, mixes, GPTQ/AWQ-optimised) or HF GPTQ/AWQ", setup_quantize};

}  // namespace
}  // namespace lowbit::cli
