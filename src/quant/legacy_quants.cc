// Helpers shared by the legacy block quantizers (q4_0.cc .. iq4_nl.cc).
// Bit-exactness with ggml needs every a*b+c rounded twice: forbid fusing them into FMAs on FMA targets.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include "quant/legacy_quants.h"

#include <cmath>
#include <cstring>

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
  for (int j = 0; j < kHalf; ++j) qs[j] = static_cast<uint8_t>((levels[j] & 0x0F) | ((levels[j + kHalf] & 0x0F) << 4));
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

}  // namespace lowbit::legacy
