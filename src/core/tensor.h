// A tensor is a name, a type, a shape and bytes. Shapes follow GGUF's convention everywhere in lowbit:
// ne[0] is the row length (the fastest-varying dimension), ne[1] the number of rows, and so on; unused
// dimensions are 1. A PyTorch/safetensors shape [out, in] is ne = {in, out}.
// The bytes are usually a view into a memory-mapped file (zero copy); `owner` keeps that mapping (or an owned
// buffer) alive for as long as the tensor is.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace lowbit {

constexpr int kMaxDims = 4;

struct TensorInfo {
  std::string name;
  DType type = DType::F32;
  int n_dims = 1;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t n_bytes() const { return row_bytes(type, ne[0]) * static_cast<size_t>(n_rows()); }
  std::string shape_string() const;  // "[4096, 11008]" in ne order
};

struct Tensor {
  TensorInfo info;
  const uint8_t* data = nullptr;
  std::shared_ptr<const void> owner;
  // 0: rows one after another, as every file stores them. Otherwise the engine's own layout for its matmul
  // kernels (ops/packed_weight.h): tiles of this many rows with their blocks interleaved. Never written out.
  int interleaved_rows = 0;
  // Engine only as well: when set, the columns are stored in this order (input_order[k] = original column of
  // stored column k), and a matmul gathers its activations into it (GPTQ act-order, quant/int_groups.h).
  std::shared_ptr<const std::vector<int32_t>> input_order;

  // The bytes as stored in a file (throws Error for an engine-packed or reordered tensor, which no file holds).
  std::span<const uint8_t> bytes() const;
  const std::string& name() const { return info.name; }
  DType type() const { return info.type; }
  const std::array<int64_t, kMaxDims>& ne() const { return info.ne; }
};

// A tensor holding its own bytes (for converted or computed tensors).
Tensor make_owned_tensor(TensorInfo info, std::vector<uint8_t> bytes);
Tensor make_f32_tensor(std::string name, std::vector<int64_t> ne, std::vector<float> values);

// All elements as float (dequantizing if needed). Throws Error naming the tensor if the type has no conversion.
std::vector<float> tensor_to_f32(const Tensor& t);

// Checks that a shape from a file is sane before anything is allocated from it: 1..4 dims, every ne >= 0 (and
// >0 unless allow_empty), the element count and byte size do not overflow, and ne[0] fits the type's block.
// Throws Error naming `where` (the file) and the tensor.
void validate_tensor_info(const TensorInfo& info, const std::string& where);

}  // namespace lowbit
