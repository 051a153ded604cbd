// Reading the ggml reference vectors bundled in tests/data/ggml-vectors/ (see the README.md there).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace lowbit::testing_support {

inline constexpr int kVectorRows = 16;   // rows in inputs.f32 and every TYPE.*.q
inline constexpr int kVectorCols = 512;  // values per row; imatrix.f32 holds one weight per column

// The whole file tests/data/ggml-vectors/<name>; throws Error if it cannot be read.
std::vector<uint8_t> ggml_vector_bytes(const std::string& name);
// The same file as little-endian float32 values; throws Error if its size is not a multiple of 4.
std::vector<float> ggml_vector_floats(const std::string& name);

// One set of vectors: a type, quantized with or without importance ("TYPE.plain.*" / "TYPE.imatrix.*").
struct VectorCase {
  DType type;
  bool imatrix;
  std::string file(const std::string& suffix) const {
    return std::string(dtype_name(type)) + (imatrix ? ".imatrix" : ".plain") + suffix;
  }
};
// Test-name suffix for parameterised suites ("q4_K_imatrix").
inline std::string vector_case_name(const ::testing::TestParamInfo<VectorCase>& info) {
  return std::string(dtype_name(info.param.type)) + (info.param.imatrix ? "_imatrix" : "_plain");
}

}  // namespace lowbit::testing_support
