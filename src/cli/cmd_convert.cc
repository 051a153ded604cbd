// lowbit convert: between formats without quantizing. Any input -> GGUF (as llama.cpp's converter writes it),
// or GGUF/any input -> a Hugging Face folder.
#include <fmt/core.h>

#include <filesystem>

#include "algo/gguf_quantize.h"
#include "cli/command.h"
#include "io/converted_source.h"
#include "io/hf_source.h"
#include "io/hf_tokenizer_writer.h"
#include "io/model_source.h"
#include "util/error.h"
#include "util/progress.h"

namespace lowbit::cli {
namespace {

std::string title_case(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

Run setup_convert(CLI::App& app) {
  struct Args {
    std::string src, out, type = "f16", tokenizer, name;
    bool quiet = false;
    int threads = 1;
  };
  auto a = std::make_shared<Args>();
  app.add_option("src", a->src, "input model: GGUF, .safetensors, Hugging Face folder or llama2.c checkpoint")->required();
  app.add_option("-o,--output", a->out, "output: a .gguf file, or a folder for a Hugging Face model")->required();
  app.add_option("--type", a->type, "type of the matrices: f32, f16 or bf16 (vectors are always f32 in GGUF)")
      ->capture_default_str();
  app.add_option("--tokenizer", a->tokenizer, "llama2.c input: tokenizer .bin or .model (default: beside the model)");
  app.add_option("--name", a->name, "general.name (default: the input's folder name)");
  app.add_flag("--quiet", a->quiet, "no progress output");
  return [a]() {
    set_quiet(a->quiet);
    const auto type = dtype_from_name(a->type);
    check(type && (*type == DType::F32 || *type == DType::F16 || *type == DType::BF16), "--type",
          "'{}' is not f32, f16 or bf16", a->type);
    std::shared_ptr<const ModelSource> src = open_model(a->src, {a->tokenizer});
    namespace fs = std::filesystem;
    const bool to_gguf = a->out.size() > 5 && a->out.compare(a->out.size() - 5, 5, ".gguf") == 0;
    if (to_gguf) {
      GgufQuantizeOptions o;
      o.converter_layout = true;
      o.mix.ftype = *type == DType::F32 ? FileType::ALL_F32 : *type == DType::F16 ? FileType::F16 : FileType::BF16;
      const fs::path p = fs::absolute(a->src);
      o.model_name = !a->name.empty() ? a->name
                                      : title_case((fs::is_directory(p) ? p : p.parent_path()).filename().string());
      const QuantizeReport r = quantize_to_gguf(src, a->out, o);
      fmt::print("{} -> {}\n{}", a->src, a->out, r.summary_table());
      return 0;
    }
    auto typed = convert_types(src, *type, /*vectors_as_f32=*/false);
    const auto written = write_hf_model(*typed, a->out);
    const auto tok = write_hf_tokenizer(src->vocab(), a->out);
    fmt::print("{} -> {}/\n", a->src, a->out);
    for (const auto& f : written) fmt::print("  {}\n", f);
    for (const auto& f : tok) fmt::print("  {}\n", f);
    return 0;
  };
}

const Command kConvert{"convert", "convert between GGUF, Hugging Face and llama2.c formats (f32/f16/bf16)", setup_convert};

}  // namespace
}  // namespace lowbit::cli
