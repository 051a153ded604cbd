#include "io/model_source.h"

#include "io/memory_source.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/gguf_source.h"
#include "io/hf_source.h"
#include "io/llama2c.h"
#include "util/error.h"

namespace lowbit {

bool ModelSource::has_tensor(const std::string& name) const {
  for (const auto& t : tensor_infos())
    if (t.name == name) return true;
  return false;
}

const TensorInfo& ModelSource::tensor_info(const std::string& name) const {
  for (const auto& t : tensor_infos())
    if (t.name == name) return t;
  fail(path(), "no tensor named '{}'", name);
}

namespace {

bool has_suffix(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

bool starts_with_magic(const std::string& path, const char* magic) {
  char buf[4] = {};
  std::ifstream in(path, std::ios::binary);
  return in.read(buf, 4) && std::memcmp(buf, magic, 4) == 0;
}

}  // namespace

std::unique_ptr<ModelSource> open_model(const std::string& path, const OpenOptions& options) {
  namespace fs = std::filesystem;
  if (path.rfind("random:", 0) == 0 && !fs::exists(path)) return open_random_model(path);
  check(fs::exists(path), path, "no such file or directory");
  if (fs::is_directory(path)) {
    check(fs::exists(fs::path(path) / "config.json"), path,
          "folder has no config.json (expected a Hugging Face model folder)");
    return open_hf_model(path);
  }
  if (starts_with_magic(path, "GGUF")) return open_gguf_model(path);
  if (has_suffix(path, ".safetensors")) return open_safetensors_model(path);
  if (has_suffix(path, ".gguf")) fail(path, "not a GGUF file (bad magic)");
  // llama2.c checkpoints have no magic number: the reader checks the header against the file size.
  return open_llama2c_model(path, options.tokenizer_path);
}

}  // namespace lowbit
