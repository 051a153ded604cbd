// Calibrated integer quantization (RTN, GPTQ or AWQ) of a model's linear layers, written as a Hugging Face
// checkpoint that transformers, vLLM and GPTQModel/AutoAWQ load and that lowbit reads back:
//   --format gptq: qweight/qzeros/scales/g_idx (v1 layout when symmetric, v2 otherwise), quantize_config.json;
//   --format awq:  AWQ GEMM qweight/qzeros/scales, quant_config.json, quantization_config quant_method "awq".
// Layer by layer through algo/calibration.h (sequential, resumable). GPTQ is true-sequential by default
// ({q,k,v}, then o, then {gate,up}, then down, each seeing the earlier groups quantized); AWQ searches and folds
// its scales per layer, then clips and quantizes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "algo/awq.h"
#include "algo/calibration.h"
#include "algo/gptq.h"
#include "algo/int_quant.h"
#include "io/model_source.h"

namespace lowbit {

struct HfIntQuantizeOptions {
  std::string method = "gptq";  // "rtn", "gptq" or "awq"
  std::string format;           // "gptq" or "awq"; empty: awq for the awq method, gptq otherwise
  IntQuantConfig config;
  GptqOptions gptq;
  AwqOptions awq;
  int64_t awq_max_tokens = 8192;  // tokens the AWQ searches use (every k-th calibration token)
  bool true_sequential = true;
  DType dense_type = DType::F16;  // the tensors left unquantized (embeddings, norms): F16 or BF16
  CalibrationOptions calib;
  int threads = 1;
  // After each layer its results are saved in OUT/.lowbit-progress; with resume, a run continues from the saved
  // layers and writes the same bytes an uninterrupted run would.
  bool resume = false;
  int64_t stop_after_layers = -1;  // tests: stop (as if killed) once this many layers are saved
};

std::vector<LinearReport> quantize_to_hf(std::shared_ptr<const ModelSource> source, const std::string& out_dir,
                                         const HfIntQuantizeOptions& options);


}  // namespace lowbit
