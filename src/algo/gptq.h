// GPTQ (Frantar et al. 2022, IST-DASLab/gptq; AutoGPTQ/GPTQModel options): quantizes a Linear's weights column by
// column, spreading each column's rounding error over the columns not yet quantized through the inverse
// Hessian of the layer's reconstruction loss, H = 2/N sum x x^T over calibration inputs x.
//
// Typical use by a calibration pipeline, per Linear:
//   HessianAccumulator h(n_in);
//   for each batch of activations entering the layer: h.add_batch(rows, n_tokens);
//   GptqResult r = gptq_quantize(W, n_out, n_in, h, cfg);   // r.layer -> pack_gptq(...) (io/gptq_pack.h)
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "algo/int_quant.h"

namespace lowbit {

// Streaming H = (2 / n_samples) * sum over all rows x of x x^T, in double, with GPTQ's running-average update
// (H *= n / (n + m); n += m; H += 2/n * X^T X) so any split into batches gives the same matrix up to rounding.
class HessianAccumulator {
 public:
  explicit HessianAccumulator(int64_t n_in);
  // x: [n_tokens][n_in] activation rows entering the layer. `n_samples` is how much the batch counts in the
  // average: -1 (default) counts its rows. (The reference counts sequences, which only scales H; GPTQ's result
  // does not depend on a scale of H, only the reported loss does.)
  void add_batch(const float* x, int64_t n_tokens, int64_t n_samples = -1);
  // A Hessian from elsewhere (e.g. saved by another tool), [n_in][n_in] row-major, symmetric.
  static HessianAccumulator from_matrix(int64_t n_in, std::vector<double> h, int64_t n_samples);

  int64_t n_in() const { return n_in_; }
  int64_t n_samples() const { return n_samples_; }
  const std::vector<double>& matrix() const { return h_; }  // [n_in][n_in]

 private:
  int64_t n_in_ = 0;
  int64_t n_samples_ = 0;
  std::vector<double> h_;
};

struct GptqOptions {
  double damp_percent = 0.01;  // lambda = damp_percent * mean(diag H), added to the diagonal
  // When a Cholesky factorisation fails, damp_percent grows by this step (GPTQModel's damp_auto_increment)
  // and the factorisation is retried, while damp_percent < 1; 0 makes a failure an Error at once.
  double damp_auto_increment = 0.0025;
  int block_size = 128;  // columns per lazy batch update
};

struct GptqResult {
  QuantizedLinear layer;
  double loss = 0;          // sum over weights of (w - q)^2 / d^2 / 2, d = Hinv diagonal (the reference's "error")
  double damp_percent = 0;  // the damping that made H factorisable
  int64_t dead_columns = 0; // inputs never active (H_ii == 0): their weights were set to 0
};

// What GPTQ's column loop needs from a number format: the integer grid of GPTQ itself (gptq_quantize below) or a
// ggml block type (algo/gptq_ggml.h). One GptqRowGrid per output row, created and used by one thread.
class GptqRowGrid {
 public:
  virtual ~GptqRowGrid() = default;
  // At the first column of each group (columns in processing order): the row's weights of that group as updated
  // at the start of the current lazy block.
  virtual void begin_group(int64_t col, const float* w, int64_t len) = 0;
  // Rounds w, the weight of processing-order column `col`, onto the grid, records it, returns its value.
  virtual float round(int64_t col, float w) = 0;
};
class GptqGrid {
 public:
  virtual ~GptqGrid() = default;
  virtual int64_t group_len(int64_t n_in) const = 0;
  // Row r's grid; `w` is the row in original column order with dead columns zeroed. Called from worker threads.
  virtual std::unique_ptr<GptqRowGrid> row(int64_t r, const float* w) = 0;
};

struct GptqRun {
  double loss = 0;
  double damp_percent = 0;
  int64_t dead_columns = 0;
};

// The GPTQ loop over any grid: dead columns, optional act-order permutation (perm = processing order ->
// original column), damping with automatic increase, lazy block updates. `perm` empty = natural order.
GptqRun gptq_run(const float* W, int64_t n_out, int64_t n_in, const HessianAccumulator& hessian,
                 const std::vector<int64_t>& perm, GptqGrid& grid, const GptqOptions& options);

// The processing order of act-order: columns by descending diag(H) (dead columns count as 1), stable for ties.
std::vector<int64_t> act_order_permutation(const HessianAccumulator& hessian);

// W: [n_out][n_in] row-major. Honours cfg.bits/group_size/sym/mse/desc_act/static_groups.
// Semantics follow IST-DASLab/gptq fasterquant (+ AutoGPTQ's g_idx and static groups):
//  * dead inputs (H_ii == 0) get H_ii = 1 and weight 0 (before any scale is computed);
//  * desc_act: columns are processed in descending diag(H) (stable order for ties); g_idx maps each original
//    column to its group; dynamic groups are consecutive in the processing order, static groups are fixed on the
//    original order before the error feedback starts;
//  * dynamic group scales are computed from the weights as updated at the start of the current block (the
//    reference reads W, not the in-block copy W1);
//  * without groups, one scale/zero per row from the (dead-zeroed) weights.
// Deterministic (rows are processed in fixed chunks). Throws Error on bad shapes or if H cannot be factorised.
GptqResult gptq_quantize(const float* W, int64_t n_out, int64_t n_in, const HessianAccumulator& hessian,
                         const IntQuantConfig& cfg, const GptqOptions& options = {});

// ||X W^T - X Wq^T||^2 / ||X W^T||^2 (0 if the reference output is all zero). W, Wq: [n_out][n_in]; X:
// [n_tokens][n_in]. Summed in double, deterministic.
// The same ratio from the Hessian of the inputs (H is proportional to X^T X, the scale cancels):
// tr((W - Wq) H (W - Wq)^T) / tr(W H W^T). Deterministic.
double hessian_relative_error(const float* W, const float* Wq, int64_t n_out, int64_t n_in,
                              const HessianAccumulator& hessian);

double reconstruction_error(const float* W, const float* Wq, int64_t n_out, int64_t n_in, const float* X,
                            int64_t n_tokens);

}  // namespace lowbit
