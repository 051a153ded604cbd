// Round-to-nearest integer quantization with GPTQ's scale/zero rule: the baseline GPTQ and AWQ are measured
// against. desc_act and static_groups are ignored (no Hessian); groups run over the original column order.
#pragma once

#include <cstdint>

#include "algo/int_quant.h"

namespace lowbit {

// W is [n_out][n_in] row-major. Deterministic; rows run in parallel.
QuantizedLinear rtn_quantize(const float* W, int64_t n_out, int64_t n_in, const IntQuantConfig& cfg);

}  // namespace lowbit
