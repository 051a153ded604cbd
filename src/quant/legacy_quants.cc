// Helpers shared by the legacy block quantizers (q4_0.cc .. iq4_nl.cc).
#include "quant/legacy_quants.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "quant/quant_search.h"
#include "util/error.h"

namespace lowbit::legacy {

void check_multiple(int64_t n, int64_t block, const char* type_name) {
  check(n >= 0 && n % block == 0, type_name, "{} values is not a multiple of the block size {}", n, block);
}

float row_mean_square(const float* row, int64_t n_per_row) {
  // One float accumulator, front to back, as ggml: the order decides the last bit of every weight.
  float sum_x2 = 0;
  for (int64_t j = 0; j < n_per_row; ++j) sum_x2 += row[j] * row[j];
  return sum_x2 / static_cast<float>(n_per_row);
}

void block_weights(const float* x, const float* importance, float sigma2, int n, float* weight) {
  for (int j = 0; j < n; ++j) weight[j] = importance[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

void pack_nibbles(const uint8_t* levels, uint8_t* qs) {
  constexpr int kHalf = kLegacyBlock / 2;
  // From a local copy: the compiler then knows qs cannot overlap it and packs with vector instructions.
  uint8_t lv[kLegacyBlock];
  std::memcpy(lv, levels, sizeof(lv));
  for (int j = 0; j < kHalf; ++j) qs[j] = static_cast<uint8_t>((lv[j] & 0x0F) | ((lv[j + kHalf] & 0x0F) << 4));
}

void unpack_nibbles(const uint8_t* qs, uint8_t* levels) {
  constexpr int kHalf = kLegacyBlock / 2;
  for (int j = 0; j < kHalf; ++j) {
    levels[j] = qs[j] & 0x0F;
    levels[j + kHalf] = qs[j] >> 4;
  }
}

void pack_5bit(const uint8_t* levels, uint8_t* qs, uint8_t* qh) {
  constexpr int kHalf = kLegacyBlock / 2;
  pack_nibbles(levels, qs);
  uint32_t high_bits = 0;
  for (int j = 0; j < kHalf; ++j) {
    high_bits |= static_cast<uint32_t>((levels[j] >> 4) & 1) << j;
    high_bits |= static_cast<uint32_t>((levels[j + kHalf] >> 4) & 1) << (j + kHalf);
  }
  // Stored little-endian regardless of the host, as GGUF files are.
  for (int b = 0; b < 4; ++b) qh[b] = static_cast<uint8_t>(high_bits >> (8 * b));
}

void unpack_5bit(const uint8_t* qs, const uint8_t* qh, uint8_t* levels) {
  constexpr int kHalf = kLegacyBlock / 2;
  uint32_t high_bits = 0;
  for (int b = 0; b < 4; ++b) high_bits |= static_cast<uint32_t>(qh[b]) << (8 * b);
  for (int j = 0; j < kHalf; ++j) {
    levels[j] = static_cast<uint8_t>((qs[j] & 0x0F) | (((high_bits >> j) & 1) << 4));
    levels[j + kHalf] = static_cast<uint8_t>((qs[j] >> 4) | (((high_bits >> (j + kHalf)) & 1) << 4));
  }
}

namespace {

// ggml's float -> level conversion: truncation of a value that is in [0, max_level + 1) for finite input, capped
// at max_level. Written so that NaN/Inf (which ggml does not expect) give a defined level instead of undefined
// behaviour; finite values give exactly ggml's level.
int truncate_level(float v, int max_level) {
  if (!(v > 0)) return 0;  // also NaN
  return v >= static_cast<float>(max_level) ? max_level : static_cast<int>(v);
}

}  // namespace

float symmetric_plain(const float* x, int nmax, uint8_t* levels) {
  const SignedAbsMax peak = signed_abs_max(x, kLegacyBlock);
  const float d = peak.value / static_cast<float>(-nmax);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  // Adding nmax + 0.5 and truncating is ggml's rounding (halves go up); the peak itself lands on 0.5 -> 0.
  const float offset = static_cast<float>(nmax) + 0.5f;
  for (int j = 0; j < kLegacyBlock; ++j) {
    levels[j] = static_cast<uint8_t>(truncate_level(x[j] * id + offset, 2 * nmax - 1));
  }
  return d;
}

void symmetric_weighted(const float* x, const float* importance, float sigma2, int n, int nmax, uint8_t* levels,
                        float* d) {
  float weight[kRunBlocks * kLegacyBlock] = {};  // zeroed for -Wmaybe-uninitialized; only n blocks are read
  block_weights(x, importance, sigma2, n * kLegacyBlock, weight);
  int8_t found[kRunBlocks * kLegacyBlock];
  make_qx_quants_batch(n, kLegacyBlock, nmax, x, weight, found, d);
  for (int j = 0; j < n * kLegacyBlock; ++j) levels[j] = static_cast<uint8_t>(found[j]);  // already offset by +nmax
}

void decode_symmetric(const uint8_t* levels, int nmax, float d, float* out) {
  for (int j = 0; j < kLegacyBlock; ++j) out[j] = static_cast<float>(levels[j] - nmax) * d;
}

ScaleAndMin affine_plain(const float* x, int nmax, uint8_t* levels) {
  float min = FLT_MAX;
  float max = -FLT_MAX;
  for (int j = 0; j < kLegacyBlock; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / static_cast<float>(nmax);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  // ggml clamps Q4_1 but not Q5_1; for finite input (x - min) * id stays below nmax + 0.5, so both agree.
  for (int j = 0; j < kLegacyBlock; ++j) {
    const float scaled = (x[j] - min) * id;
    levels[j] = static_cast<uint8_t>(truncate_level(scaled + 0.5f, nmax));
  }
  return {d, min};
}

void affine_weighted(const float* x, const float* importance, float sigma2, int n, int nmax, uint8_t* levels,
                     ScaleAndMin* out) {
  float weight[kRunBlocks * kLegacyBlock] = {};  // zeroed for -Wmaybe-uninitialized; only n blocks are read
  block_weights(x, importance, sigma2, n * kLegacyBlock, weight);
  float d[kRunBlocks], neg_min[kRunBlocks];
  make_qkx_quants_batch(n, kLegacyBlock, nmax, x, weight, levels, d, neg_min, -0.9f, 0.05f, 36, false);
  for (int b = 0; b < n; ++b) out[b] = {d[b], -neg_min[b]};
}

void decode_affine(const uint8_t* levels, float d, float m, float* out) {
  for (int j = 0; j < kLegacyBlock; ++j) out[j] = static_cast<float>(levels[j]) * d + m;
}

}  // namespace lowbit::legacy
