// Layer-by-layer calibration, shared by GPTQ, AWQ and their GGUF variants (as GPTQModel and llm-compressor run
// it): the hidden states of every calibration window entering the current decoder layer are kept; the layer is
// run on them to capture the inputs of its linear layers; the method quantizes (the overlay source then holds
// the layer's new tensors); the layer is run again with its quantized weights to give the next layer's inputs,
// so later layers see the errors of earlier ones.
//
// Peak memory: the calibration hidden states (nsamples x seqlen x n_embd floats), one layer's weights in F32
// and its method state (GPTQ: an n_in x n_in double Hessian per linear of the current group; AWQ: the group
// inputs, at most max_tokens x n_in floats each), plus the finished output kept for the writer (packed, the
// size of the output file); a finished layer's F32 copies are released and the engine reads it from the
// memory-mapped input again (it is never run again).
//
// Checkpointing: after each layer the method's results are saved in OUT.lowbit-progress/ (one file per layer
// and the options that made them); a resumed run restores the saved layers, recomputes the hidden states
// through them, and continues, producing the bytes an uninterrupted run produces.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "algo/gptq.h"
#include "io/model_source.h"
#include "model/llama.h"
#include "util/error.h"

namespace lowbit {

struct CalibrationOptions {
  std::string text_path;
  int nsamples = 128;
  int seqlen = 512;
  uint64_t seed = 0;
};

// Random windows of `seqlen` tokens (deterministic for a seed) from the calibration text's tokens.
std::vector<std::vector<int32_t>> calibration_windows(const std::vector<int32_t>& tokens, const CalibrationOptions& o);
// Tokenizes o.text_path with the model's vocabulary (no BOS) and cuts the windows.
std::vector<std::vector<int32_t>> calibration_windows(const ModelSource& source, const CalibrationOptions& o);

// The source with some tensors replaced (a layer's quantized linears, rescaled norms).
class OverlaySource : public ModelSource {
 public:
  explicit OverlaySource(std::shared_ptr<const ModelSource> base) : base_(std::move(base)) {}
  const std::string& path() const override { return base_->path(); }
  std::string format() const override { return base_->format(); }
  const ModelConfig& config() const override { return base_->config(); }
  const Vocab& vocab() const override { return base_->vocab(); }
  const std::vector<TensorInfo>& tensor_infos() const override;
  Tensor tensor(const std::string& name) const override;
  // Replaces a tensor of the base (same name and shape; the type may differ).
  void replace(Tensor t);
  // Drops the replacements whose names start with `prefix` (a finished layer), freeing their memory.
  void forget_prefix(const std::string& prefix);

 private:
  std::shared_ptr<const ModelSource> base_;
  std::map<std::string, Tensor> replaced_;
  std::vector<TensorInfo> infos_;
};

// The linear layers of decoder layer `layer` in true-sequential order: each group's inputs depend only on the
// groups before it ({q, k, v}, {o}, {gate, up}, {down}); with true_sequential false, one group of all seven.
std::vector<std::vector<std::string>> linear_groups(int64_t layer, bool true_sequential);

class LayerwiseCalibration {
 public:
  LayerwiseCalibration(std::shared_ptr<OverlaySource> source, std::vector<std::vector<int32_t>> windows,
                       int threads);
  // Runs `layer` over every window, hidden states unchanged, calling `observer` with each of its matmuls.
  void capture(int64_t layer, const LlamaModel::MatmulObserver& observer);
  // Re-reads `layer`'s tensors from the overlay (after the method replaced some).
  void reload(int64_t layer) { model_.reload_layer(layer); }
  // Moves the hidden states through `layer` with its current (quantized) tensors.
  void advance(int64_t layer);
  uint64_t hidden_bytes() const;
  // After the last layer: runs the output head over the final hidden states, calling `observer` with its matmul.
  void capture_head(const LlamaModel::MatmulObserver& observer);
  const Tensor& output_tensor() const { return model_.output_tensor(); }

 private:
  LlamaModel model_;
  std::vector<std::vector<int32_t>> windows_;
  std::vector<std::vector<float>> hidden_;  // per window, [seqlen][n_embd]
};

// GPTQ's walk through a layer: for each group of linear_groups(layer, true_sequential), capture the Hessian of
// each linear's inputs, call quantize(name, hessian) (which replaces the tensor in the overlay), then reload the
// layer so the next group's inputs come from the quantized ones. Without calibration (cal null) the Hessian is
// null.
void for_each_linear_with_hessian(LayerwiseCalibration* cal, int64_t layer, bool true_sequential,
                                  const std::function<void(const std::string&, const HessianAccumulator*)>& quantize);

// What a method saves per layer to resume: named byte strings.
using LayerBlobs = std::vector<std::pair<std::string, std::vector<uint8_t>>>;

struct LayerwiseRun {
  std::shared_ptr<const ModelSource> source;
  std::shared_ptr<OverlaySource> overlay;
  CalibrationOptions calib;
  bool needs_calibration = true;     // RTN runs the same loop without calibration data
  std::string fingerprint;           // the method's options; a resume with other options is refused
  std::string progress_dir;          // checkpoint folder
  bool resume = false;
  int threads = 1;
  int64_t stop_after_layers = -1;    // tests: fail (as if killed) once this many layers are saved
  // Quantizes one layer (replacing tensors in `overlay`), returns what restore() needs. `cal` is null without
  // calibration.
  std::function<LayerBlobs(int64_t layer, LayerwiseCalibration* cal)> quantize_layer;
  // Optional: called once after the last layer (also when every layer was restored), e.g. to quantize the
  // output head from the final hidden states.
  std::function<void(LayerwiseCalibration* cal)> after_layers;
  // Puts a saved layer back (into the overlay and the method's own results).
  std::function<void(int64_t layer, const LayerBlobs& saved)> restore_layer;
};

// AWQ folds its input scales into a layer's two norms (attn_norm, ffn_norm). Each norm of `layer` as `overlay`
// holds it now goes into `blobs` as "norm:NAME", for a resumed run, and to `install`.
using InstallNorm = std::function<void(const std::string& name, std::vector<float> values)>;
void keep_layer_norms(const ModelSource& overlay, int64_t layer, LayerBlobs& blobs, const InstallNorm& install);
// A saved norm's values, checked against `source`'s tensor of that name (a corrupt progress file stops the run).
std::vector<float> saved_norm(const ModelSource& source, const std::string& name, const std::vector<uint8_t>& bytes,
                              const std::string& progress_dir);

// Runs every layer (restoring saved ones first when resuming). The progress folder is left in place; the
// caller removes it (remove_progress) once its output is complete.
void run_layerwise(const LayerwiseRun& run);
void remove_progress(const std::string& progress_dir);

struct LinearReport {
  std::string name;
  double loss = 0;          // GPTQ's loss (0 for RTN/AWQ)
  double damp_percent = 0;  // damping GPTQ ended up using
  double seconds = 0;
  // ||X W^T - X Wq^T||^2 / ||X W^T||^2 on the calibration inputs for this method and for the baseline (plain
  // RTN at the same settings; for GGUF the type's own search with the importance an imatrix would give); -1
  // where there are no calibration inputs.
  double error = -1, rtn_error = -1;
};

// The per-linear table printed by `lowbit quantize` for calibrated methods.
std::string linear_report_table(const std::vector<LinearReport>& reports);

// Serialization helpers for LayerBlobs payloads.
template <typename T>
std::vector<uint8_t> to_blob(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}
template <typename T>
std::vector<T> from_blob(const std::vector<uint8_t>& b, const std::string& where) {
  check(b.size() % sizeof(T) == 0, where, "corrupt progress file (blob of {} bytes)", b.size());
  std::vector<T> v(b.size() / sizeof(T));
  if (!b.empty()) std::memcpy(v.data(), b.data(), b.size());
  return v;
}

}  // namespace lowbit
