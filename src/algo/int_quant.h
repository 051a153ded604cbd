// Shared vocabulary of calibrated integer quantization (GPTQ, AWQ, RTN): the configuration, the quantized
// linear layer (integers + per-group scale/zero + group index of each input column), and GPTQ's per-group
// scale/zero rule (Quantizer.find_params of IST-DASLab/gptq, which AutoGPTQ and GPTQModel keep).
//
// Conventions: weights are row-major W[out][in] as torch.nn.Linear stores them. A group is a run of input
// columns sharing one scale/zero per output row; dequantized w = scale * (q - zero).
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace lowbit {

struct IntQuantConfig {
  int bits = 4;             // 2..8
  int group_size = 128;     // -1: one group spanning the whole input dim; else a positive group length
  bool sym = false;         // symmetric: zero fixed at (maxq + 1) / 2
  bool desc_act = false;    // act-order (GPTQ): quantize columns by descending Hessian diagonal
  bool static_groups = false;  // with desc_act: groups fixed on the original column order before GPTQ runs
  bool mse = false;         // grid search over shrunk ranges for the scale (norm 2.4, grid 100, maxshrink 0.8)

  int maxq() const { return (1 << bits) - 1; }
  // Effective group length for a layer with n_in input columns.
  int64_t group_len(int64_t n_in) const { return group_size < 0 ? n_in : group_size; }
  // Throws Error unless bits is in 2..8 and group_size is -1 or positive.
  void validate(const char* where) const;
};

struct QuantizedLinear {
  int64_t n_in = 0, n_out = 0;
  int bits = 4;
  int group_size = -1;  // as configured (-1 = whole input dim)
  bool sym = false;
  std::vector<uint8_t> q;        // [n_out][n_in], values 0..2^bits-1, original column order
  std::vector<float> scales;     // [n_groups][n_out]
  std::vector<float> zeros;      // [n_groups][n_out], integers held as float
  std::vector<int32_t> g_idx;    // [n_in], group of each input column (0..n_groups-1)

  int maxq() const { return (1 << bits) - 1; }
  int64_t n_groups() const { return n_out == 0 ? 0 : static_cast<int64_t>(scales.size()) / n_out; }
  // A layer of the configured shape with q, scales and zeros zero-filled and g_idx[i] = i / group length.
  static QuantizedLinear allocate(int64_t n_out, int64_t n_in, const IntQuantConfig& cfg);
  // W[out][in] = scale[g][out] * (q[out][in] - zero[g][out]), g = g_idx[in].
  std::vector<float> dequantize() const;
  // Throws Error naming `where` if the arrays do not have consistent sizes or values in range.
  void validate(const char* where) const;
};

// Scale and zero for one group of values of one output row, as GPTQ's find_params (perchannel, weight=True):
// the range is widened to include 0; symmetric ranges are made +-max|x| only when min < 0 (a quirk kept from
// the reference); an all-zero group gets the range [-1, 1]; asymmetric zero = round(-min / scale). With `mse`
// the shrink factors p = 1 - i/100, i < 80, are tried and the one minimising sum |Q(x) - x|^2.4 kept.
struct ScaleZero {
  float scale = 1.f, zero = 0.f;
};
ScaleZero find_scale_zero(const float* x, int64_t n, int bits, bool sym, bool mse);

// The engine tensor for a layer (rows = output channels): 2-4 bits as I4G blocks (quant/int_groups.h), 8 bits with
// every zero 128 as Q8_0, which holds them exactly; with act-order the columns sorted by group and the order in
// Tensor::input_order. nullopt when the groups are not whole 32-value blocks, the scales are not fp16 values, or
// the layer is 8-bit asymmetric (the caller keeps the dequantized F16 weight then).
std::optional<Tensor> engine_tensor(const QuantizedLinear& ql, const std::string& name);

// Y[t][o] = sum_i X[t][i] * W[o][i] (a Linear without bias), in float. Deterministic whatever the thread count:
// work is split in fixed chunks of tokens and each chunk's product runs single-threaded.
std::vector<float> linear_forward(const float* X, int64_t n_tokens, const float* W, int64_t n_out, int64_t n_in);

// q = clamp(round_half_even(x / scale) + zero, 0, maxq), as torch.round does (default FP rounding mode).
inline int quantize_value(float x, ScaleZero p, int maxq) {
  float v = std::nearbyint(x / p.scale) + p.zero;
  if (!(v >= 0.f)) v = 0.f;  // also maps NaN to 0
  if (v > static_cast<float>(maxq)) v = static_cast<float>(maxq);
  return static_cast<int>(v);
}
inline float dequantize_value(int q, ScaleZero p) { return p.scale * (static_cast<float>(q) - p.zero); }

}  // namespace lowbit
