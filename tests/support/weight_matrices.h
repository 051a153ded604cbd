// Weight matrices for the kernel tests: n_out rows (output channels, as GGUF stores them) of n_in values.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace lowbit::testing_support {

// A 2-D weight "w" of `type`, ne = {n_in, n_out}.
TensorInfo matrix_info(DType type, int64_t n_in, int64_t n_out);
// `values` (n_out rows of n_in floats) quantized to `type`, an owned tensor.
Tensor quantized_matrix(DType type, int64_t n_in, int64_t n_out, const float* values);

}  // namespace lowbit::testing_support
