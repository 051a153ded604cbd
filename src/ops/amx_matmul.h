// Batches on AMX's int8 tiles (Sapphire Rapids and later) for Q4_0, IQ4_NL and Q4_K weights, and for Q8_0 and
// IQ4_XS in llama.cpp's AMX order (ops/dot_reference.h, SumOrder::kAmx): the same bits as the row-lane kernels,
// token by token or not. ops/simd_matmul.cc hands a batch's chunks of rows here when amx_matmul_takes them.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "ops/activation_quant.h"
#include "ops/packed_weight.h"

namespace lowbit {

// Batches of this many tokens or more go to the tiles. Each row tile's weights are decoded once per call for all its
// tokens, and a pair of token tiles shares each weight tile, so smaller batches ran slower on the tiles than on the
// row-lane kernels (in one process, alternated: pp16 Q4_0 0.65x, Q4_K_M 0.71x, IQ4_XS 0.88x, Q8_0 1.03x).
inline constexpr int64_t kAmxMinTokens = 32;

// Whether amx_matmul_rows takes n_tokens tokens times weights of `type` now, on a CPU whose int8 tiles Linux lets
// this process use: from kAmxMinTokens tokens, Q4_0,
// IQ4_NL and Q4_K (in their own order on any CPU); Q8_0 and IQ4_XS while they sum in the AMX order. (Q4_1, which
// also sums in that order there, runs as fast on the row-lane kernels: pp64 1.04x, pp128 1.00x on the tiles.)
bool amx_matmul_takes(DType type, int64_t n_tokens);

// Rows [r0, r1) of W (n_out rows in layout w) of a type it takes times nt tokens' activations (Q8_0 or Q8_K), whose
// rows lie at one fixed stride (QuantizedActivations' rows), into y[t * n_out + r].
void amx_matmul_rows(DType type, const uint8_t* data, const WeightLayout& w, const ActRow* acts, int64_t nt, int64_t r0,
                     int64_t r1, int64_t n_out, float* y);

}  // namespace lowbit
