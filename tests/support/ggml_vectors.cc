#include "support/ggml_vectors.h"

#include <cstring>
#include <fstream>
#include <iterator>

#include "util/error.h"

namespace lowbit::testing_support {

std::vector<uint8_t> ggml_vector_bytes(const std::string& name) {
  const std::string path = std::string(LOWBIT_SOURCE_DIR) + "/tests/data/ggml-vectors/" + name;
  std::ifstream in(path, std::ios::binary);
  check(in.good(), path, "cannot open test vector file");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<float> ggml_vector_floats(const std::string& name) {
  const std::vector<uint8_t> bytes = ggml_vector_bytes(name);
  check(bytes.size() % sizeof(float) == 0, name, "{} bytes is not a whole number of float32 values", bytes.size());
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

}  // namespace lowbit::testing_support
