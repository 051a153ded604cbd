// Reading the ggml reference vectors bundled in tests/data/ggml-vectors/ (see the README.md there).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::testing_support {

inline constexpr int kVectorRows = 16;   // rows in inputs.f32 and every TYPE.*.q
inline constexpr int kVectorCols = 512;  // values per row; imatrix.f32 holds one weight per column

// The whole file tests/data/ggml-vectors/<name>; throws Error if it cannot be read.
std::vector<uint8_t> ggml_vector_bytes(const std::string& name);
// The same file as little-endian float32 values; throws Error if its size is not a multiple of 4.
std::vector<float> ggml_vector_floats(const std::string& name);

}  // namespace lowbit::testing_support
