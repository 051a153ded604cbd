// GPTQ- and AWQ-optimised GGUF: the calibrated methods applied to ggml's block formats, written as standard GGUF
// that stock llama.cpp loads (same tensor types and mix as llama-quantize would choose; only the values differ).
//   gptq: each linear through gptq_quantize_ggml (ggml's own scale search per block on GPTQ-updated weights,
//         column-wise rounding with error feedback), true-sequential, layer by layer (algo/calibration.h);
//   awq:  AWQ's scales searched and folded into the norms and v/up rows (algo/awq_model.h), then each linear
//         quantized by ggml's search with the importance of its scaled inputs (what an imatrix would hold).
// Non-layer tensors (embeddings, output) are quantized as llama-quantize does.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "algo/awq.h"
#include "algo/calibration.h"
#include "algo/gguf_quantize.h"
#include "algo/gptq.h"

namespace lowbit {

struct CalibratedGgufOptions {
  std::string method = "gptq";  // "gptq" or "awq"
  CalibrationOptions calib;
  // Stronger damping than GPTQ's usual 0.01: on the bundled model's Q4_K_M, KLD 0.0127 at 0.01, 0.0121 at 0.05,
  // 0.0116 at 0.1 (llama.cpp's Q4_K_M with an imatrix: 0.0140). The blocks' own scale search already fits each
  // block; heavier damping keeps the error feedback from overriding it.
  GptqOptions gptq{.damp_percent = 0.1};
  AwqOptions awq;
  int64_t awq_max_tokens = 8192;
  bool true_sequential = true;
  bool resume = false;             // progress in OUT.lowbit-progress/
  int64_t stop_after_layers = -1;  // tests
};

struct CalibratedGgufReport {
  QuantizeReport quantize;
  std::vector<LinearReport> linears;
};

CalibratedGgufReport quantize_to_gguf_calibrated(std::shared_ptr<const ModelSource> source, const std::string& out_path,
                                                 const GgufQuantizeOptions& gguf, const CalibratedGgufOptions& options);

}  // namespace lowbit
