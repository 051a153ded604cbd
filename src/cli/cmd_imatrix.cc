// lowbit imatrix: llama-imatrix's importance matrix (same chunking, same statistics, both file formats).
#include <fmt/core.h>

#include <cstdio>
#include <thread>

#include "algo/imatrix.h"
#include "cli/command.h"
#include "io/model_source.h"
#include "model/llama.h"
#include "model/tokenizer.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit::cli {
namespace {

Run setup_imatrix(CLI::App& app) {
  struct Args {
    std::string model, file, out = "imatrix.gguf", format, tokenizer;
    std::vector<std::string> in_files;
    int64_t ctx = 512, chunks = -1;
    int save_every = 0, threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    bool process_output = false;
  };
  auto a = std::make_shared<Args>();
  app.add_option("model", a->model, "model: GGUF, .safetensors, Hugging Face folder or llama2.c checkpoint")->required();
  app.add_option("-f,--file", a->file, "calibration text");
  app.add_option("-o,--output", a->out, "output file (.gguf: GGUF form, else llama.cpp's legacy .dat)")->capture_default_str();
  app.add_option("--output-format", a->format, "gguf or dat (default: from the output's extension)")->check(CLI::IsMember({"gguf", "dat"}));
  app.add_option("-c,--ctx", a->ctx, "tokens per chunk")->capture_default_str()->check(CLI::Range(int64_t{16}, int64_t{1} << 20));
  app.add_option("--chunks", a->chunks, "chunks to process (-1: all)")->capture_default_str();
  app.add_option("--save-every", a->save_every, "also save after every N chunks (a killed run keeps its work)")->check(CLI::Range(0, 1 << 20));
  app.add_option("--in-file", a->in_files, "merge these imatrix files (repeatable)");
  app.add_flag("--process-output", a->process_output, "collect output.weight too");
  app.add_option("-t,--threads", a->threads, "threads")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--tokenizer", a->tokenizer, "llama2.c: tokenizer .bin or .model");
  return [a]() {
    const ImatrixFormat format = a->format.empty() ? imatrix_format_for_path(a->out)
                                                   : a->format == "gguf" ? ImatrixFormat::Gguf : ImatrixFormat::Dat;
    ImatrixCollector collector(a->process_output);
    for (const auto& f : a->in_files) collector.imatrix().merge(read_imatrix(f), f);
    check(!a->file.empty() || !a->in_files.empty(), "-f", "give calibration text (-f) or files to merge (--in-file)");
    if (!a->file.empty()) {
      std::shared_ptr<const ModelSource> src = open_model(a->model, {a->tokenizer});
      Tokenizer tok(src->vocab());
      const std::string text = read_text_file(a->file);
      std::vector<int32_t> tokens = tok.encode(text, true);
      check(static_cast<int64_t>(tokens.size()) >= 2 * a->ctx, a->file, "tokenizes to {} tokens; at least {} are needed for --ctx {}",
            tokens.size(), 2 * a->ctx, a->ctx);
      LlamaModel model(src, {a->ctx, a->threads});
      collector.imatrix().datasets.push_back(a->file);
      collect_imatrix(model, tokens, a->ctx, a->chunks, tok.vocab().add_bos ? tok.vocab().bos_id : -1, collector,
                      [&](int64_t done, int64_t total) {
                        fmt::print(stderr, "\rchunk {}/{}", done, total);
                        if (a->save_every > 0 && done % a->save_every == 0)
                          write_imatrix(a->out, collector.imatrix(), format);
                      });
      fmt::print(stderr, "\n");
    }
    write_imatrix(a->out, collector.imatrix(), format);
    fmt::print("{}: {} entries, {} chunks of {} tokens\n", a->out, collector.imatrix().entries.size(),
               collector.imatrix().chunks, collector.imatrix().chunk_size);
    return 0;
  };
}

const Command kImatrix{"imatrix", "importance matrix from calibration text (llama-imatrix compatible)", setup_imatrix};

}  // namespace
}  // namespace lowbit::cli
