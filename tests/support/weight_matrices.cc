#include "support/weight_matrices.h"

#include <utility>
#include <vector>

namespace lowbit::testing_support {

TensorInfo matrix_info(DType type, int64_t n_in, int64_t n_out) {
  TensorInfo info;
  info.name = "w";
  info.type = type;
  info.n_dims = 2;
  info.ne = {n_in, n_out, 1, 1};
  return info;
}

Tensor quantized_matrix(DType type, int64_t n_in, int64_t n_out, const float* values) {
  const TensorInfo info = matrix_info(type, n_in, n_out);
  std::vector<uint8_t> bytes(info.n_bytes());
  quantize_rows(type, values, bytes.data(), n_out, n_in);
  return make_owned_tensor(info, std::move(bytes));
}

}  // namespace lowbit::testing_support
