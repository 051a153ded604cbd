// AWQ (Lin et al. 2023; mit-han-lab/llm-awq auto_scale/auto_clip, AutoAWQ's duo_scaling variant): protects the
// weights that meet large activations by scaling input channel i of a group of Linears sharing one input by s_i
// (and the input by 1/s_i, folded into the previous norm or Linear), then clips each weight group's range.
//
// Typical use by a calibration pipeline, per group of Linears fed by the same input (q/k/v after the attention
// norm; gate/up after the FFN norm; v -> o; up -> down):
//   AwqGroupResult r = awq_quantize_group(linears, n_in, X, n_tokens, options);
//   fold_scales_into_norm(norm_weight, n_in, r.scales.data())   // or fold_scales_into_linear_rows(prev, ...)
//   r.layers[k] -> pack_awq_gemm(...) (io/gptq_pack.h)
//
// Simplification relative to the references: the scale search minimises, by default, the error of the
// concatenated outputs of the group's Linears, not of the whole module that contains them (attention or MLP,
// "module2inspect"). A caller that can run the real module passes its own AwqLossFn.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "algo/int_quant.h"

namespace lowbit {

struct AwqOptions {
  IntQuantConfig quant{.bits = 4, .group_size = 128, .sym = false};  // bits, group_size and sym are used
  int n_grid = 20;           // ratios r = 0, 1/n_grid, ..., (n_grid-1)/n_grid
  bool duo_scaling = true;   // AutoAWQ: s = x_mean^r / (w_mean^(1-r) + 1e-4); false: llm-awq's s = x_mean^r
  bool clip = true;          // run the clip search (the references skip it for q/k projections: caller decides)
  int clip_n_grid = 20;
  double clip_max_shrink = 0.5;       // shrink factors 1 - i/clip_n_grid for i < max_shrink * clip_n_grid
  int64_t clip_n_sample_tokens = 512; // clip uses every (n_tokens / 512)-th token
};

// One Linear of a group: weight [n_out][n_in] (n_in shared by the group).
struct AwqLinear {
  const float* weight;
  int64_t n_out;
};

// The error of candidate weights (one [n_out][n_in] array per Linear of the group, in order) against the
// unquantized output; the search keeps the scales with the smallest value.
using AwqLossFn = std::function<double(const std::vector<std::vector<float>>& candidate_weights)>;

// Default loss: mean over tokens and all outputs of the group's concatenated Linear outputs of
// (X W^T - X Wc^T)^2, as AutoAWQ's _compute_loss does on its module output.
AwqLossFn awq_concat_output_loss(std::span<const AwqLinear> linears, int64_t n_in, const float* X, int64_t n_tokens);

// AWQ's own pseudo-quantizer (pseudo_quantize_tensor): per row and group of group_size columns, asymmetric
// scale = max(max - min, 1e-5) / maxq, zero = clamp(-round(min / scale), 0, maxq) (the range is NOT widened to
// include 0, unlike GPTQ's); symmetric scale = max(max|w|, 1e-5) / (2^(bits-1) - 1) with zero 2^(bits-1).
ScaleZero awq_scale_zero(const float* x, int64_t n, int bits, bool sym);
QuantizedLinear awq_pseudo_quantize(const float* W, int64_t n_out, int64_t n_in, const IntQuantConfig& cfg);

struct AwqScaleResult {
  std::vector<float> scales;  // [n_in], input channel i of every Linear is multiplied by scales[i]
  double best_ratio = 0;
  double best_loss = 0;
  std::vector<double> history;  // loss of each ratio
};

// Grid search of the per-channel scales. x_mean = mean over tokens of |x| per channel; w_mean = mean over all rows
// of the group of |w| / (max |w| of its quantization group + 1e-6). For each ratio the candidate weights are
// Q(W diag(s)) diag(s)^-1, s normalised by sqrt(max s * min s); non-finite s become 1. `loss` empty = default.
AwqScaleResult awq_search_scales(std::span<const AwqLinear> linears, int64_t n_in, const float* X, int64_t n_tokens,
                                 const AwqOptions& options, const AwqLossFn& loss = {});

// Clip search for one (already scaled) Linear with its (already 1/s-scaled) inputs: for each row and quantization
// group, the max |w| (shrunk by 1 - i/n_grid) whose clamped-then-quantized group minimises the mean over sampled
// tokens of the squared partial output error. Returns max_val [n_out][n_groups]; n_in must be a multiple of the
// group length.
std::vector<float> awq_search_clip(const float* W, int64_t n_out, int64_t n_in, const float* X, int64_t n_tokens,
                                   const AwqOptions& options);
// Clamps each row group of W to [-max_val, max_val].
void awq_apply_clip(float* W, int64_t n_out, int64_t n_in, int64_t group_len, const std::vector<float>& max_val);

// Multiplies input column i of W [n_out][n_in] by s[i].
void scale_input_columns(float* W, int64_t n_out, int64_t n_in, const float* s);
// Folds the inverse scales into what produces the group's input: an RMSNorm/LayerNorm weight (and bias, may be
// null) divided by s, or the rows (outputs) of the previous Linear [n_out = n][n_in_prev] (and its bias) divided by s.
void fold_scales_into_norm(float* norm_weight, float* norm_bias, int64_t n, const float* s);
void fold_scales_into_linear_rows(float* prev_weight, float* prev_bias, int64_t n, int64_t n_in_prev, const float* s);

struct AwqGroupResult {
  AwqScaleResult scale;
  std::vector<QuantizedLinear> layers;          // Q(clip(W diag(s))), one per Linear
  std::vector<std::vector<float>> clip_max;     // per Linear [n_out][n_groups], empty without clip
};

// The whole AWQ step for a group: scale search, apply the scales (W diag(s), X / s), clip search, quantize.
AwqGroupResult awq_quantize_group(std::span<const AwqLinear> linears, int64_t n_in, const float* X, int64_t n_tokens,
                                  const AwqOptions& options, const AwqLossFn& loss = {});

}  // namespace lowbit
