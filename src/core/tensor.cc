#include "core/tensor.h"

#include <fmt/format.h>

#include <cstring>

#include <limits>

#include "util/error.h"

namespace lowbit {

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (int i = 0; i < n_dims; ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

std::span<const uint8_t> Tensor::bytes() const {
  check(interleaved_rows == 0 && !input_order, info.name, "holds the engine's matmul layout, not a file's bytes");
  return {data, info.n_bytes()};
}

Tensor make_owned_tensor(TensorInfo info, std::vector<uint8_t> bytes) {
  check(bytes.size() == info.n_bytes(), info.name, "buffer of {} bytes for a tensor of {} bytes", bytes.size(),
        info.n_bytes());
  auto storage = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  Tensor t;
  t.info = std::move(info);
  t.data = storage->data();
  t.owner = storage;
  return t;
}

Tensor make_f32_tensor(std::string name, std::vector<int64_t> ne, std::vector<float> values) {
  TensorInfo info;
  info.name = std::move(name);
  info.type = DType::F32;
  info.n_dims = static_cast<int>(ne.size());
  for (size_t i = 0; i < ne.size(); ++i) info.ne[i] = ne[i];
  std::vector<uint8_t> bytes(values.size() * sizeof(float));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return make_owned_tensor(std::move(info), std::move(bytes));
}

std::vector<float> tensor_to_f32(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.info.n_elements()));
  to_float(t.info.type, t.data, out.data(), t.info.n_elements(), t.info.name);
  return out;
}

void validate_tensor_info(const TensorInfo& info, const std::string& where) {
  check(info.n_dims >= 1 && info.n_dims <= kMaxDims, where, "tensor '{}' has {} dimensions (1 to {} supported)",
        info.name, info.n_dims, kMaxDims);
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  // The product of the non-zero dimensions must fit, not just the element count: with a zero dimension the count
  // is 0 while the row count (ne1 * ne2 * ne3) could still overflow.
  int64_t n = 1;
  bool empty = false;
  for (int i = 0; i < kMaxDims; ++i) {
    const int64_t d = info.ne[i];
    check(d >= 0, where, "tensor '{}' has a negative dimension {}", info.name, d);
    check(i < info.n_dims || d == 1, where, "tensor '{}' has unused dimension {} = {}", info.name, i, d);
    check(d == 0 || n <= kMax / d, where, "tensor '{}' element count overflows", info.name);
    if (d == 0) empty = true;
    else n *= d;
  }
  if (empty) n = 0;
  const auto& t = type_traits(info.type);
  check(info.ne[0] % t.block_size == 0, where, "tensor '{}' row length {} is not a multiple of the {} block size {}",
        info.name, info.ne[0], t.name, t.block_size);
  const uint64_t blocks = static_cast<uint64_t>(n / t.block_size);
  check(blocks <= std::numeric_limits<uint64_t>::max() / t.block_bytes, where, "tensor '{}' byte size overflows",
        info.name);
}

}  // namespace lowbit
