#include "ops/activation_quant.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/float_formats.h"
#include "quant/legacy_quants.h"

namespace lowbit {

namespace {

// v rounded to the nearest integer, ties to even, for |v| <= 2^22: adding 1.5 * 2^23 leaves no fraction bits, so
// the add rounds (in the default mode, as nearbyint does) and the subtraction is exact. std::nearbyint is a library
// call on baseline x86-64, one per activation: 1.5 % of generation time.
inline float round_half_even(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}

}  // namespace

// ggml's x86 quantize_row_q8_0: id = 127/amax and round half to even (_mm256_round_ps), not the reference
// quantizer's 1/d and roundf. |x * id| <= 127 (up to rounding), well inside round_half_even's range.
void quantize_activation_q8_0(const float* x, BlockQ8_0* out, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
    out[b].d = f32_to_f16(d);
    for (int j = 0; j < 32; ++j) out[b].qs[j] = static_cast<int8_t>(round_half_even(x[b * 32 + j] * id));
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

void quantize_activation_row(DType type, const float* x, int64_t n, void* out) {
  if (type == DType::Q8_0) quantize_activation_q8_0(x, static_cast<BlockQ8_0*>(out), n);
  else if (type == DType::Q8_1) quantize_activation_q8_1(x, static_cast<BlockQ8_1*>(out), n);
  else if (type == DType::F32) std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
  else quantize_rows(type, x, out, 1, n);
}

QuantizedActivations::QuantizedActivations(DType type, int64_t n_tokens, int64_t n_in)
    : type_(type), row_bytes_(lowbit::row_bytes(type, n_in)), storage_(row_bytes_ * static_cast<size_t>(n_tokens) + 64) {
  if (type == DType::Q8_0 || type == DType::Q8_1) {
    sums_per_row_ = static_cast<size_t>(n_in / 32) * 8;
    quad_sums_.resize(sums_per_row_ * static_cast<size_t>(n_tokens));
    scales_.resize(sums_per_row_ / 8 * static_cast<size_t>(n_tokens));
    block_sums_.resize(scales_.size());
  }
}

void QuantizedActivations::compute_block_sums(int64_t t) {
  if (quad_sums_.empty()) return;
  const size_t block_bytes = type_traits(type_).block_bytes, qs_offset = block_bytes - 32;  // d first, qs last
  const uint8_t* r = row(t);
  const size_t n_blocks = sums_per_row_ / 8;
  int32_t* out = quad_sums_.data() + static_cast<size_t>(t) * sums_per_row_;
  float* scales = scales_.data() + static_cast<size_t>(t) * n_blocks;
  int32_t* totals = block_sums_.data() + static_cast<size_t>(t) * n_blocks;
  for (size_t b = 0; b < n_blocks; ++b) {
    const auto* qs = reinterpret_cast<const int8_t*>(r + b * block_bytes + qs_offset);
    totals[b] = 0;
    for (int l = 0; l < 8; ++l) {
      out[8 * b + static_cast<size_t>(l)] = qs[4 * l] + qs[4 * l + 1] + qs[4 * l + 2] + qs[4 * l + 3];
      totals[b] += out[8 * b + static_cast<size_t>(l)];
    }
    uint16_t d;
    std::memcpy(&d, r + b * block_bytes, 2);
    scales[b] = f16_to_f32(d);
  }
}

uint8_t* QuantizedActivations::base() const {
  auto p = reinterpret_cast<uintptr_t>(storage_.data());
  return reinterpret_cast<uint8_t*>((p + 63) & ~uintptr_t{63});
}

QuantizedActivations quantize_activations(DType type, const float* x, int64_t n_tokens, int64_t n_in, int threads) {
  QuantizedActivations acts(type, n_tokens, n_in);
  // Small batches (generation) are not worth waking threads for.
  const int t = n_tokens * n_in >= (int64_t{1} << 16) ? threads : 1;
#pragma omp parallel for num_threads(t) schedule(static)
  for (int64_t i = 0; i < n_tokens; ++i) {
    quantize_activation_row(type, x + i * n_in, n_in, acts.row(i));
    acts.compute_block_sums(i);
  }
  return acts;
}

}  // namespace lowbit
