#include "io/model_source.h"

#include <filesystem>

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

std::unique_ptr<ModelSource> open_model(const std::string& path, const OpenOptions& options) {
  check(std::filesystem::exists(path), path, "no such file or directory");
  fail(path, "unrecognised model format (expected a GGUF file, a .safetensors file, a Hugging Face folder or a llama2.c checkpoint)");
}

}  // namespace lowbit
