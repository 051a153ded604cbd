#include "io/model_source.h"

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

}  // namespace lowbit
