// Hugging Face packed integer formats, as pure functions over QuantizedLinear (no file I/O here):
//
// GPTQ (AutoGPTQ / GPTQModel, quantize_config.json "checkpoint_format": "gptq" = v1, "gptq_v2" = v2):
//   qweight int32 [n_in * bits / 32][n_out]   packed along the input dim
//   qzeros  int32 [n_groups][n_out * bits / 32] packed along the output dim; v1 stores zero - 1, v2 zero
//   scales  fp16  [n_groups][n_out]
//   g_idx   int32 [n_in]                       group of each input column (act-order permutes it)
// Packing is one little-endian bit stream per column (qweight) or row (qzeros): value k of a run of 32 occupies
// bits [k * bits, (k + 1) * bits) of the words concatenated low word first. For 2/4/8 bits that is "value k in
// word k / (32 / bits) at shift bits * (k % (32 / bits))"; for 3 bits it is AutoGPTQ's 32 values in 3 words,
// values 10 and 21 straddling word boundaries. Dequantized w = scale * (q - zero) (v1 readers add the 1 back).
//
// AWQ GEMM (AutoAWQ WQLinear_GEMM, "version": "gemm"), 4 bits only:
//   qweight int32 [n_in][n_out / 8]   packed along the output dim, nibble i holds output 8c + {0,2,4,6,1,3,5,7}[i]
//   qzeros  int32 [n_groups][n_out / 8] same order, zeros stored as is
//   scales  fp16  [n_groups][n_out]
// Groups are consecutive runs of group_size input columns (no g_idx); dequantized w = (q - zero) * scale.
#pragma once

#include <cstdint>
#include <vector>

#include "algo/int_quant.h"

namespace lowbit {

enum class GptqCheckpointFormat { kV1, kV2 };

struct GptqPacked {
  int bits = 4;
  int group_size = -1;  // as written in quantize_config.json (-1 = whole input dim)
  int64_t n_in = 0, n_out = 0, n_groups = 0;
  std::vector<int32_t> qweight;  // [n_in * bits / 32][n_out]
  std::vector<int32_t> qzeros;   // [n_groups][n_out * bits / 32]
  std::vector<uint16_t> scales;  // fp16 bits, [n_groups][n_out]
  std::vector<int32_t> g_idx;    // [n_in]
};

// Packs q/zeros/g_idx; scales are rounded to fp16. Requires bits in {2,3,4,8}, n_in % 32 == 0 and
// (n_out * bits) % 32 == 0. v1 cannot store a zero of 0 (its readers add 1 to a bits-wide field): Error then.
GptqPacked pack_gptq(const QuantizedLinear& ql, GptqCheckpointFormat format = GptqCheckpointFormat::kV1);
// The inverse. Validates every size and g_idx value (the input may come from an untrusted file). An empty
// g_idx means consecutive groups of group_size. v1 zeros come back as stored + 1 (can be 2^bits).
QuantizedLinear unpack_gptq(const GptqPacked& packed, GptqCheckpointFormat format = GptqCheckpointFormat::kV1);

struct AwqPacked {
  int bits = 4;
  int group_size = 128;
  int64_t n_in = 0, n_out = 0, n_groups = 0;
  std::vector<int32_t> qweight;  // [n_in][n_out / 8]
  std::vector<int32_t> qzeros;   // [n_groups][n_out / 8]
  std::vector<uint16_t> scales;  // fp16 bits, [n_groups][n_out]
};

// The order AutoAWQ interleaves 8 nibbles of one int32: nibble i holds output column kAwqOrder[i].
inline constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

// Requires bits 4, n_out % 8 == 0, n_in % group_len == 0 and g_idx[i] == i / group_len (AWQ has no act-order).
AwqPacked pack_awq_gemm(const QuantizedLinear& ql);
QuantizedLinear unpack_awq_gemm(const AwqPacked& packed);

}  // namespace lowbit
