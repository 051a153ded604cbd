// lowbit compare: quantize a source into several variants, evaluate each the same way, one report.
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "algo/gguf_quantize.h"
#include "algo/gguf_calibrated.h"
#include "algo/hf_int_quantize.h"
#include "cli/command.h"
#include "eval/bench.h"
#include "eval/multiple_choice.h"
#include "eval/perplexity.h"
#include "eval/report.h"
#include "io/model_source.h"
#include "model/llama.h"
#include "model/tokenizer.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/progress.h"

namespace lowbit::cli {
namespace {

struct Variant {
  std::string name, ftype;
  bool imatrix = false;
  std::string method;  // "gptq" / "rtn" / "awq": a Hugging Face GPTQ/AWQ folder instead of a GGUF type
  std::string gguf_method;  // "gptq" / "awq": a GGUF of ftype made by that calibrated method
  int bits = 4, group_size = 128;
};

// "f16", "q4_k_m", "q4_k_m+imatrix" -> a GGUF file type, optionally with an importance matrix.
Variant parse_variant(const std::string& spec) {
  Variant v{spec, spec, false, "", "", 4, 128};
  if (const auto colon = spec.find(':'); colon != std::string::npos) {  // gptq:w4g128, rtn:w3g64, gptq-gguf:q4_k_m
    const std::string method = spec.substr(0, colon);
    if (method == "gptq-gguf" || method == "awq-gguf") {
      v.gguf_method = method.substr(0, method.size() - 5);
      v.ftype = spec.substr(colon + 1);
      check(file_type_from_name(v.ftype).has_value(), "--variants", "'{}': '{}' is not a GGUF file type", spec, v.ftype);
      return v;
    }
    v.method = method;
    check(v.method == "gptq" || v.method == "rtn" || v.method == "awq", "--variants",
          "'{}': method must be rtn, gptq, awq, gptq-gguf or awq-gguf", spec);
    check(std::sscanf(spec.c_str() + colon + 1, "w%dg%d", &v.bits, &v.group_size) == 2, "--variants",
          "'{}' is not METHOD:wBITSgGROUP (e.g. gptq:w4g128)", spec);
    return v;
  }
  if (const auto plus = spec.find('+'); plus != std::string::npos) {
    check(spec.substr(plus + 1) == "imatrix", "--variants", "'{}': only '+imatrix' may follow a type", spec);
    v.ftype = spec.substr(0, plus);
    v.imatrix = true;
  }
  check(file_type_from_name(v.ftype).has_value(), "--variants", "'{}' is not a GGUF file type", spec);
  return v;
}

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

Run setup_compare(CLI::App& app) {
  struct Args {
    std::string src, variants = "f16,q8_0,q4_0,q4_k_m,q4_k_m+imatrix,q2_k", text, calib, out = "report", tasks;
    int64_t ctx = 256, chunks = 40;
    int nsamples = 128;
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  };
  auto a = std::make_shared<Args>();
  app.add_option("src", a->src, "source model (the reference every variant is compared with)")->required();
  app.add_option("--variants", a->variants,
                 "comma-separated: GGUF types (q4_k_m), TYPE+imatrix, rtn|gptq|awq:wBITSgGROUP (HF folders), "
                 "gptq-gguf|awq-gguf:TYPE (calibrated GGUF)")
      ->capture_default_str();
  app.add_option("--text", a->text, "evaluation text for perplexity and KLD")->required();
  app.add_option("--calib", a->calib, "calibration text for importance matrices and gptq/awq variants");
  app.add_option("--nsamples", a->nsamples, "calibration windows for gptq/awq variants")->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--tasks", a->tasks, "TASK:FILE:N,... e.g. hellaswag:hs.jsonl:200");
  app.add_option("-o,--output", a->out, "report folder (variants already there are reused)")->capture_default_str();
  app.add_option("-c,--ctx", a->ctx, "perplexity context")->capture_default_str();
  app.add_option("--chunks", a->chunks, "perplexity chunks")->capture_default_str();
  app.add_option("-t,--threads", a->threads, "threads")->capture_default_str()->check(CLI::Range(1, 1024));
  return [a]() {
    std::vector<Variant> variants;
    for (size_t p = 0; p <= a->variants.size();) {
      const size_t q = std::min(a->variants.find(',', p), a->variants.size());
      if (q > p) variants.push_back(parse_variant(a->variants.substr(p, q - p)));
      p = q + 1;
    }
    const bool need_imatrix = std::any_of(variants.begin(), variants.end(), [](const Variant& v) { return v.imatrix; });
    const bool need_calib = need_imatrix || std::any_of(variants.begin(), variants.end(),
                                                        [](const Variant& v) {
                                                          return v.method == "gptq" || v.method == "awq" ||
                                                                 !v.gguf_method.empty();
                                                        });
    check(!need_calib || !a->calib.empty(), "--calib", "'+imatrix', gptq and awq variants need calibration text");
    std::filesystem::create_directories(a->out);
    std::shared_ptr<const ModelSource> src = open_model(a->src);
    Tokenizer tok(src->vocab());
    const auto tokens = tok.encode(read_text_file(a->text), true);
    struct Task {
      std::string name, file;
      int limit;
    };
    std::vector<Task> tasks;
    for (size_t p = 0; !a->tasks.empty() && p <= a->tasks.size();) {
      const size_t q = std::min(a->tasks.find(',', p), a->tasks.size());
      const std::string spec = a->tasks.substr(p, q - p);
      const size_t c1 = spec.find(':'), c2 = spec.rfind(':');
      check(c1 != std::string::npos && c2 > c1, "--tasks", "'{}' is not TASK:FILE:N", spec);
      tasks.push_back({spec.substr(0, c1), spec.substr(c1 + 1, c2 - c1 - 1), std::stoi(spec.substr(c2 + 1))});
      p = q + 1;
    }

    CompareReport report{a->src, a->text, a->ctx, a->chunks, fmt::format("{}, {} threads", cpu_name(), a->threads), {}};
    const std::string base_logits = a->out + "/source.logits";
    auto evaluate = [&](const std::string& name, const std::string& format, const std::string& path, bool is_source) {
      fmt::print(stderr, "evaluating {}\n", name);
      std::shared_ptr<const ModelSource> m = open_model(path);
      LlamaModel model(m, {std::max<int64_t>(a->ctx, 320), a->threads});
      VariantResult r;
      r.name = name, r.format = format, r.path = path;
      r.plan_format = is_source ? "F16" : name;
      for (auto& c : r.plan_format) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      double params = 0;
      for (const auto& t : m->tensor_infos()) params += static_cast<double>(t.n_elements());
      // Bytes on disk: the GGUF file, or a folder's safetensors (a GPTQ folder is read back dequantized, so its
      // in-memory tensors would overstate it).
      double stored = 0;
      if (std::filesystem::is_directory(path)) {
        for (const auto& e : std::filesystem::directory_iterator(path))
          if (e.path().extension() == ".safetensors") stored += static_cast<double>(e.file_size());
        r.file_bytes = stored;
      } else {
        for (const auto& t : m->tensor_infos()) stored += static_cast<double>(t.n_bytes());
        r.file_bytes = static_cast<double>(std::filesystem::file_size(path));
      }
      r.bits_per_weight = 8 * stored / params;
      PerplexityOptions o;
      o.n_ctx = a->ctx, o.n_chunks = a->chunks, o.bos = tok.vocab().add_bos ? tok.vocab().bos_id : -1;
      (is_source ? o.save_logits : o.kld_base) = base_logits;
      const PerplexityResult p = compute_perplexity(model, tokens, o);
      r.ppl = p.ppl, r.ppl_stderr = p.ppl_err;
      if (p.kld) r.kld_mean = p.kld->kld_mean, r.kld_stderr = p.kld->kld_err, r.top1_percent = p.kld->same_top_pct;
      const auto b = run_bench(model, 64, 32, 2);
      r.pp_tokens_per_s = b[0].mean(), r.tg_tokens_per_s = b[1].mean();
      // Memory the variant needs to run here: its weights plus the engine's KV cache of this context.
      r.peak_rss_bytes = r.file_bytes + static_cast<double>(model.kv_cache_bytes());
      for (const auto& t : tasks) {
        const auto items = load_mc_task(mc_task_from_name(t.name), t.file, t.limit);
        const McScore s = score_multiple_choice(model, [&](const std::string& x) { return tok.encode(x, false); },
                                                o.bos, items);
        r.tasks[t.name] = {s.n, s.acc, s.acc_stderr, s.acc_norm, s.acc_norm_stderr};
      }
      report.variants.push_back(std::move(r));
    };

    evaluate("source", "source", a->src, true);
    Imatrix imatrix;
    if (need_imatrix) {
      const std::string path = a->out + "/imatrix.gguf";
      if (!std::filesystem::exists(path)) {
        fmt::print(stderr, "computing the importance matrix on {}\n", a->calib);
        LlamaModel model(src, {a->ctx, a->threads});
        ImatrixCollector collector;
        collector.imatrix().datasets.push_back(a->calib);
        collect_imatrix(model, tok.encode(read_text_file(a->calib), true), a->ctx, 100,
                        tok.vocab().add_bos ? tok.vocab().bos_id : -1, collector);
        write_imatrix(path, collector.imatrix(), ImatrixFormat::Gguf);
      }
      imatrix = read_imatrix(path);
    }
    // Calibration for gptq/awq variants: windows of the evaluation context (at most 512) from --calib.
    const CalibrationOptions calib{a->calib, a->nsamples, static_cast<int>(std::min<int64_t>(a->ctx, 512)), 0};
    for (const auto& v : variants) {
      if (!v.method.empty()) {
        std::string folder = v.name;
        std::replace(folder.begin(), folder.end(), ':', '-');
        const std::string path = a->out + "/" + folder;
        if (!std::filesystem::exists(path + "/config.json")) {
          fmt::print(stderr, "quantizing {}\n", v.name);
          HfIntQuantizeOptions h;
          h.method = v.method;
          h.config.bits = v.bits;
          h.config.group_size = v.group_size;
          h.config.sym = v.method != "awq";  // AWQ's default is a zero point
          h.format = v.method == "awq" && v.bits != 4 ? "gptq" : "";
          h.calib = calib;
          h.threads = a->threads;
          quantize_to_hf(src, path, h);
        }
        const bool awq_layout = v.method == "awq" && v.bits == 4;
        evaluate(v.name, awq_layout ? "awq" : "gptq", path, false);
        report.variants.back().plan_format = fmt::format("{} w{}g{}", awq_layout ? "AWQ" : "GPTQ", v.bits, v.group_size);
        continue;
      }
      if (!v.gguf_method.empty()) {
        std::string file = v.name;
        std::replace(file.begin(), file.end(), ':', '-');
        const std::string path = a->out + "/" + file + ".gguf";
        if (!std::filesystem::exists(path)) {
          fmt::print(stderr, "quantizing {}\n", v.name);
          GgufQuantizeOptions o;
          o.mix.ftype = *file_type_from_name(v.ftype);
          o.threads = a->threads;
          CalibratedGgufOptions c;
          c.method = v.gguf_method;
          c.calib = calib;
          quantize_to_gguf_calibrated(src, path, o, c);
        }
        evaluate(v.name, "gguf", path, false);
        continue;
      }
      const std::string path = a->out + "/" + v.name + ".gguf";
      if (!std::filesystem::exists(path)) {  // a killed compare resumes where it stopped
        fmt::print(stderr, "quantizing {}\n", v.name);
        GgufQuantizeOptions o;
        o.mix.ftype = *file_type_from_name(v.ftype);
        o.threads = a->threads;
        if (v.imatrix) o.imatrix = &imatrix, o.imatrix_path = a->out + "/imatrix.gguf";
        quantize_to_gguf(src, path, o);
      }
      evaluate(v.name, "gguf", path, false);
    }
    write_report(a->out, report);
    fmt::print("{}", report_markdown(report));
    fmt::print("\nwritten: {0}/report.md, {0}/report.json, {0}/report.html\n", a->out);
    return 0;
  };
}

const Command kCompare{"compare", "quantize into several variants and compare them side by side (report with plots)", setup_compare};

}  // namespace
}  // namespace lowbit::cli
