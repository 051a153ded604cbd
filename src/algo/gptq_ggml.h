// GPTQ onto ggml's block formats, so a GGUF that stock llama.cpp loads carries GPTQ's error compensation.
//
// Columns are processed in order, one ggml block (32 or 256 columns) at a time. At the first column of a block
// each row's block is quantized by the type's own ggml search, from the weights as GPTQ has updated them so far
// and with the Hessian diagonal as importance (what an importance matrix holds); that fixes the block's scales.
// Then each column is rounded onto the grid those scales define (the type table's set_levels writes the level)
// and its error is spread over the columns not yet quantized through the inverse Hessian, as GPTQ does.
// The lazy-update block equals the ggml block, so every block's scale search sees all earlier updates.
#pragma once

#include <cstdint>
#include <vector>

#include "algo/gptq.h"
#include "core/dtype.h"

namespace lowbit {

struct GgmlGptqResult {
  std::vector<uint8_t> bytes;  // n_out rows of `type` blocks, as GGUF stores the tensor
  double loss = 0;             // GPTQ's loss (see GptqResult)
  double damp_percent = 0;
  int64_t dead_columns = 0;
};

// W: [n_out][n_in] row-major (GGUF row order). `type` must have set_levels in the type table and n_in must be a
// multiple of its block size. `importance` (n_in values) replaces diag(H) in the blocks' scale search when given.
GgmlGptqResult gptq_quantize_ggml(const float* W, int64_t n_out, int64_t n_in, const HessianAccumulator& hessian,
                                  DType type, const GptqOptions& options = {}, const float* importance = nullptr);

// Rounds w onto `table` (n_levels values, monotonic in either direction): the index of the nearest value; a tie
// goes to the lower index.
int nearest_level(const float* table, int n_levels, float w);

}  // namespace lowbit
