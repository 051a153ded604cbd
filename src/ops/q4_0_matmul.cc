// Q4_0 weights times Q8_0 activations on the blocks directly, summed in the order ggml's AVX2 kernels use:
// per block, eight lanes each hold the integer dot product of four consecutive values; each lane is scaled by
// d_weight * d_activation and accumulated (fused multiply-add) across blocks; the lanes are added pairwise at
// the end. Matching that order (not just the math) is what keeps lowbit's logits on llama.cpp's.
#include <cmath>
#include <cstring>
#include <vector>

#include "core/float_formats.h"
#include "ops/fused_kernels.h"
#include "quant/legacy_quants.h"

namespace lowbit {
// ggml's x86 CPU quantization of an activation row to Q8_0: id = 127/amax and round half to even
// (_mm256_round_ps), not the reference quantizer's 1/d and roundf.
void quantize_activation_q8_0(const float* x, BlockQ8_0* out, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
    out[b].d = f32_to_f16(d);
    for (int j = 0; j < 32; ++j) out[b].qs[j] = static_cast<int8_t>(std::nearbyint(x[b * 32 + j] * id));
  }
}

void quantize_activation_q8_1(const float* x, BlockQ8_1* out, int64_t n) {
  BlockQ8_0 b0;
  for (int64_t b = 0; b < n / 32; ++b) {
    quantize_activation_q8_0(x + b * 32, &b0, 32);
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += b0.qs[j];
    out[b].d = b0.d;
    out[b].s = f32_to_f16(amax / 127.f * static_cast<float>(sum));  // the unrounded d, as ggml
    std::memcpy(out[b].qs, b0.qs, 32);
  }
}

namespace {

float dot_q4_0_q8_0(const BlockQ4_0* w, const BlockQ8_0* a, int64_t n_blocks) {
  float acc[8] = {};
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float d = f16_to_f32(w[b].d) * f16_to_f32(a[b].d);
    for (int l = 0; l < 8; ++l) {
      int s = 0;
      for (int k = 0; k < 4; ++k) {
        const int j = 4 * l + k;  // element j: low nibbles hold 0..15, high nibbles 16..31
        const int q = j < 16 ? (w[b].qs[j] & 0x0F) : (w[b].qs[j - 16] >> 4);
        s += (q - 8) * a[b].qs[j];
      }
      acc[l] = std::fma(d, static_cast<float>(s), acc[l]);
    }
  }
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

}  // namespace

void matmul_q4_0_q8_0(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads) {
  const int64_t n_in = w.ne()[0], n_out = w.info.n_rows(), nb = n_in / 32;
  std::vector<BlockQ8_0> act(static_cast<size_t>(n_tokens * nb));
  for (int64_t t = 0; t < n_tokens; ++t) quantize_activation_q8_0(x + t * n_in, act.data() + t * nb, n_in);
  const auto* rows = reinterpret_cast<const BlockQ4_0*>(w.data);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t o = 0; o < n_out; ++o)
    for (int64_t t = 0; t < n_tokens; ++t) y[t * n_out + o] = dot_q4_0_q8_0(rows + o * nb, act.data() + t * nb, nb);
}

}  // namespace lowbit
