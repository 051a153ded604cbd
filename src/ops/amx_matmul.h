// Batches on AMX's int8 tiles (Sapphire Rapids and later) for Q4_0 and IQ4_NL weights, and for Q8_0, Q4_1 and
// IQ4_XS in llama.cpp's AMX order (ops/dot_reference.h, SumOrder::kAmx): the same bits as the row-lane kernels,
// token by token or not.
// ops/simd_matmul.cc hands a batch's chunks of rows here when amx_matmul_takes its weights' type.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "ops/activation_quant.h"
#include "ops/packed_weight.h"

namespace lowbit {

// Batches of this many tokens or more go to the tiles.
inline constexpr int64_t kAmxMinTokens = 4;

// Whether amx_matmul_rows takes weights of `type` now, on a CPU whose int8 tiles Linux lets this process use: Q4_0
// and IQ4_NL (one float a row in either order); Q8_0, Q4_1 and IQ4_XS while they sum in the AMX order.
bool amx_matmul_takes(DType type);

// Rows [r0, r1) of W (n values a row, n_out rows; any layout) of a type it takes times nt tokens' activations
// (Q8_0, Q8_1 or Q8_K), whose rows lie at one fixed stride (QuantizedActivations' rows), into y[t * n_out + r].
void amx_matmul_rows(DType type, const uint8_t* data, const WeightLayout& w, const ActRow* acts, int64_t n, int64_t nt,
                     int64_t r0, int64_t r1, int64_t n_out, float* y);

}  // namespace lowbit
