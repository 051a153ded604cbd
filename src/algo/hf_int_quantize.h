// Calibrated integer quantization (RTN or GPTQ) of a model's linear layers, written as a Hugging Face GPTQ
// checkpoint (qweight/qzeros/scales/g_idx, v1 layout, quantize_config.json) that transformers, vLLM and GPTQModel
// load and that lowbit reads back.
//
// Sequential, as GPTQModel does it: the calibration windows run through the model with the layers before the
// current one already quantized, so each layer's Hessian sees the errors of the earlier ones. (Within a layer,
// q/k/v, o, gate/up and down share one pass rather than GPTQ's true-sequential sub-steps.)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "algo/gptq.h"
#include "algo/int_quant.h"
#include "io/model_source.h"

namespace lowbit {

struct CalibrationOptions {
  std::string text_path;
  int nsamples = 128;
  int seqlen = 512;
  uint64_t seed = 0;
};

struct HfIntQuantizeOptions {
  std::string method = "gptq";  // "rtn" or "gptq"
  IntQuantConfig config;
  GptqOptions gptq;
  CalibrationOptions calib;
  int threads = 1;
  // After each layer its packed linears are saved in OUT/.lowbit-progress; with resume, a run continues from
  // the saved layers and writes the same bytes an uninterrupted run would.
  bool resume = false;
  int64_t stop_after_layers = -1;  // tests: stop (as if killed) once this many layers are saved
};

struct LinearReport {
  std::string name;
  double loss = 0;          // GPTQ's loss (0 for RTN)
  double damp_percent = 0;  // damping GPTQ ended up using
  double seconds = 0;
};

// Random windows of `seqlen` tokens (deterministic for a seed) from the calibration text.
std::vector<std::vector<int32_t>> calibration_windows(const std::vector<int32_t>& tokens, const CalibrationOptions& o);

std::vector<LinearReport> quantize_to_hf_gptq(std::shared_ptr<const ModelSource> source, const std::string& out_dir,
                                              const HfIntQuantizeOptions& options);

}  // namespace lowbit
