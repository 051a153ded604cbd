#include "quant/int_groups.h"

#include "core/float_formats.h"
#include "util/error.h"

namespace lowbit {

void dequantize_i4g(const void* src, float* dst, int64_t n) {
  check(n % 32 == 0, "i4g", "{} values is not a multiple of 32", n);
  const auto* b = static_cast<const BlockI4G*>(src);
  for (int64_t k = 0; k < n / 32; ++k) {
    const float d = f16_to_f32(b[k].d);
    for (int j = 0; j < 16; ++j) {
      dst[32 * k + j] = d * static_cast<float>((b[k].qs[j] & 0xF) - b[k].z);
      dst[32 * k + j + 16] = d * static_cast<float>((b[k].qs[j] >> 4) - b[k].z);
    }
  }
}

}  // namespace lowbit
