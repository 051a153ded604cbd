// llama.cpp's file types ("Q4_K_M", ...) and its rules for choosing each tensor's block type, so that
// `lowbit quantize SRC OUT.gguf Q4_K_M` gives the same per-tensor types as `llama-quantize` on the same model.
#pragma once

#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "model/config.h"

namespace lowbit {

// Values equal llama.cpp's `enum llama_ftype` (stored as general.file_type).
enum class FileType : uint32_t {
  ALL_F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q8_0 = 7,
  Q5_0 = 8,
  Q5_1 = 9,
  Q2_K = 10,
  Q3_K_S = 11,
  Q3_K_M = 12,
  Q3_K_L = 13,
  Q4_K_S = 14,
  Q4_K_M = 15,
  Q5_K_S = 16,
  Q5_K_M = 17,
  Q6_K = 18,
  Q2_K_S = 21,
  IQ4_NL = 25,
  IQ4_XS = 30,
  BF16 = 32,
};

struct FileTypeInfo {
  FileType ftype;
  const char* name;      // as llama-quantize spells it: "Q4_K_M", "F32", ...
  DType default_type;    // the type most tensors get
  const char* summary;   // one line for --help
};

std::span<const FileTypeInfo> all_file_types();
std::optional<FileType> file_type_from_name(std::string_view name);  // case-insensitive
const FileTypeInfo& file_type_info(FileType ftype);

struct MixOptions {
  FileType ftype = FileType::Q4_K_M;
  bool pure = false;                          // --pure: every quantizable tensor gets the default type
  bool has_imatrix = false;                   // some rules differ when an importance matrix is given
  bool quantize_output = true;                // false with --leave-output-tensor
  std::optional<DType> output_type;           // --output-tensor-type
  std::optional<DType> token_embedding_type;  // --token-embedding-type
  std::vector<std::pair<std::string, DType>> tensor_type_overrides;  // --tensor-type REGEX=TYPE, first match wins
};

struct TensorPlan {
  TensorInfo info;        // the tensor as it is in the source
  DType target_type;      // == source_type when the tensor is copied unchanged
  bool quantize;          // converted (the target differs from the source)
  std::string fallback;   // non-empty: why the type differs from what the rules first chose (shape misfit)
  const std::string& name() const { return info.name; }
  size_t target_bytes() const { return row_bytes(target_type, info.ne[0]) * static_cast<size_t>(info.n_rows()); }
};

// The order llama-quantize writes tensors in: non-layer tensors first, then by layer number, then by name.
bool llama_tensor_order(const std::string& a, const std::string& b);

// Plans every tensor of a model: which are quantized and to what. `infos` in any order; the result is in
// llama_tensor_order. Throws Error on a bad override regex or type.
std::vector<TensorPlan> plan_tensor_types(const ModelConfig& config, std::vector<TensorInfo> infos,
                                          const MixOptions& options);

}  // namespace lowbit
