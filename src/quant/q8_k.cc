// Q8_K: one float scale per 256 values, 8-bit levels, and the sum of each 16 levels (used by K-quant dot
// products). ggml quantizes it only from float activations; there is no weighted variant.
#include <cstring>

#include "quant/k_quant_common.h"

namespace lowbit::kquant {
namespace {
void quantize_block(const float* x, BlockQ8K& y) {
  const SignedAbsMax peak = signed_abs_max(x, kSuperBlock);
  if (!peak.abs) {
    // ggml leaves bsums untouched here; lowbit zeroes the whole block so output never depends on old memory.
    std::memset(&y, 0, sizeof(y));
    return;
  }
  // -127 rather than -128 keeps every level in [-127, 127] (ggml needs that for its IQ2 dot products).
  const float iscale = -127.f / peak.value;
  for (int j = 0; j < kSuperBlock; ++j) y.qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
  for (int j = 0; j < kSuperBlock / 16; ++j) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) sum += y.qs[16 * j + l];
    y.bsums[j] = static_cast<int16_t>(sum);
  }
  y.d = 1 / iscale;
}
}  // namespace

void quantize_run(const float* x, BlockQ8K* y, int n, const float* /*importance*/) {
  for (int b = 0; b < n; ++b) quantize_block(x + kSuperBlock * b, y[b]);
}

void dequantize_block(const BlockQ8K& b, float* y) {
  for (int j = 0; j < kSuperBlock; ++j) y[j] = b.d * b.qs[j];
}

}  // namespace lowbit::kquant
