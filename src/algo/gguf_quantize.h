// Writing a GGUF file from any model source, tensor by tensor: each tensor is read from the (memory-mapped)
// input, checked for NaN/Inf, quantized over row chunks in parallel and streamed to the output, so peak memory
// stays near one tensor. The per-tensor types follow llama.cpp's mix rules (algo/ggml_mix.h), the metadata
// llama-quantize's, and the output is written under a temporary name and renamed at the end.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "algo/ggml_mix.h"
#include "algo/imatrix.h"
#include "io/model_source.h"

namespace lowbit {

struct GgufQuantizeOptions {
  MixOptions mix;
  const Imatrix* imatrix = nullptr;
  std::string imatrix_path;                  // recorded in quantize.imatrix.file
  std::vector<std::string> include_weights;  // use imatrix data only for tensors whose name contains one of these
  std::vector<std::string> exclude_weights;  // ... and not for these
  bool allow_requantize = false;
  int threads = 1;
  bool converter_layout = false;  // `convert`: vectors F32, no quantization rules, the converter's tensor order
  std::string model_name;         // general.name for non-GGUF inputs
  // Tensors already quantized to their planned type by a calibrated method (algo/gguf_calibrated.h): written
  // as given (sizes checked) instead of being quantized here.
  const std::map<std::string, std::vector<uint8_t>>* prequantized = nullptr;
  std::string method_note;  // recorded as lowbit.quantize.method (e.g. "gptq")
};

struct TensorReport {
  std::string name;
  DType from, to;
  uint64_t bytes_in = 0, bytes_out = 0;
  int64_t n_elements = 0;
  double seconds = 0;
  bool used_imatrix = false;
  std::string note;  // fallbacks and other warnings
};

struct QuantizeReport {
  std::vector<TensorReport> tensors;
  double seconds = 0;
  uint64_t bytes_out() const;
  // The closing table: per-type tensor counts, bytes, bits per weight, time.
  std::string summary_table() const;
};

// The tensor plan quantize_to_gguf follows for a source (types per tensor after the mix rules).
std::vector<TensorPlan> gguf_tensor_plan(std::shared_ptr<const ModelSource> source, const GgufQuantizeOptions& options);

QuantizeReport quantize_to_gguf(std::shared_ptr<const ModelSource> source, const std::string& out_path,
                                const GgufQuantizeOptions& options);

// Throws Error naming the tensor and the first bad element (flat index, row, column) if `values` holds NaN or Inf.
void check_finite(const float* values, int64_t n, int64_t n_per_row, const std::string& tensor_name);

}  // namespace lowbit
