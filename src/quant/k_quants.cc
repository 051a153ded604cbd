// The public K-quant entry points (k_quants.h): each format's block functions (qX_k.cc) run over rows by the
// drivers in k_quant_common.h.
#include "quant/k_quants.h"

#include "quant/k_quant_common.h"

namespace lowbit {

#define LOWBIT_K_QUANT_ENTRY_POINTS(NAME, BLOCK)                                                                  \
  void quantize_##NAME(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* importance) { \
    kquant::quantize_k_rows<BLOCK>(#NAME, src, dst, nrows, n_per_row, importance);                               \
  }                                                                                                              \
  void dequantize_##NAME(const void* src, float* dst, int64_t n) {                                               \
    kquant::dequantize_k_rows<BLOCK>(#NAME, src, dst, n);                                                        \
  }

#define LOWBIT_K_SET_LEVELS(NAME, BLOCK)                                      \
  void set_levels_##NAME(void* dst, const uint8_t* levels, int64_t n) {     \
    kquant::set_k_levels<BLOCK>(#NAME, dst, levels, n);                     \
  }

LOWBIT_K_SET_LEVELS(q2_K, BlockQ2K)
LOWBIT_K_SET_LEVELS(q3_K, BlockQ3K)
LOWBIT_K_SET_LEVELS(q4_K, BlockQ4K)
LOWBIT_K_SET_LEVELS(q5_K, BlockQ5K)
LOWBIT_K_SET_LEVELS(q6_K, BlockQ6K)
#undef LOWBIT_K_SET_LEVELS

LOWBIT_K_QUANT_ENTRY_POINTS(q2_K, BlockQ2K)
LOWBIT_K_QUANT_ENTRY_POINTS(q3_K, BlockQ3K)
LOWBIT_K_QUANT_ENTRY_POINTS(q4_K, BlockQ4K)
LOWBIT_K_QUANT_ENTRY_POINTS(q5_K, BlockQ5K)
LOWBIT_K_QUANT_ENTRY_POINTS(q6_K, BlockQ6K)
LOWBIT_K_QUANT_ENTRY_POINTS(q8_K, BlockQ8K)

#undef LOWBIT_K_QUANT_ENTRY_POINTS

}  // namespace lowbit
