#include "algo/rtn.h"

#include <algorithm>

#include "util/error.h"

namespace lowbit {

QuantizedLinear rtn_quantize(const float* W, int64_t n_out, int64_t n_in, const IntQuantConfig& cfg) {
  cfg.validate("rtn_quantize");
  check(n_out > 0 && n_in > 0, "rtn_quantize", "empty layer {}x{}", n_out, n_in);
  const int64_t gl = cfg.group_len(n_in);
  const int64_t ng = (n_in + gl - 1) / gl;
  QuantizedLinear ql = QuantizedLinear::allocate(n_out, n_in, cfg);
  const int maxq = cfg.maxq();
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < n_out; ++o) {
    const float* row = W + o * n_in;
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t i0 = g * gl, i1 = std::min(n_in, i0 + gl);
      const ScaleZero p = find_scale_zero(row + i0, i1 - i0, cfg.bits, cfg.sym, cfg.mse);
      ql.scales[g * n_out + o] = p.scale;
      ql.zeros[g * n_out + o] = p.zero;
      for (int64_t i = i0; i < i1; ++i) ql.q[o * n_in + i] = static_cast<uint8_t>(quantize_value(row[i], p, maxq));
    }
  }
  return ql;
}

}  // namespace lowbit
