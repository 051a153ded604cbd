// Every element type lowbit knows, plain and block-quantized, described once in one table (as ggml's type
// traits): block size, bytes per block, and how to convert rows to and from float. Adding a quant type means
// adding one row to the table in dtype.cc and one file under quant/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lowbit {

// Values equal ggml's `enum ggml_type` (and so GGUF's tensor type ids) wherever ggml has the type.
enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ4_NL = 20,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
  // Types ggml does not have (safetensors / HF only). Never written to GGUF.
  U8 = 1000,
  BOOL = 1001,
  F8_E4M3 = 1002,
  F8_E5M2 = 1003,
  // Engine-only block type: GPTQ/AWQ integer groups in 32-value blocks (quant/int_groups.h). No file holds it.
  I4G = 1004,
};

// Quantizes `nrows` rows of `n_per_row` floats into consecutive rows of blocks. `importance` is null or holds
// n_per_row non-negative weights (an importance matrix column), applied to every row as ggml does.
using QuantizeRowsFn = void (*)(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                                const float* importance);
// Converts n elements (a multiple of block_size) to float.
using ToFloatFn = void (*)(const void* src, float* dst, int64_t n);
// Rewrites the level (the stored integer code, 0..n_levels-1) of each of n elements of existing blocks, keeping
// their scales: what GPTQ needs to round each weight onto the grid a block's scales define (algo/gptq_ggml.h).
using SetLevelsFn = void (*)(void* blocks, const uint8_t* levels, int64_t n);

struct TypeTraits {
  DType type;
  const char* name;       // ggml's name: "f32", "q4_K", "iq4_nl", ...; safetensors-only types use their dtype name
  int64_t block_size;     // elements per block (1 for plain types)
  size_t block_bytes;     // bytes per block
  bool is_quantized;      // a block format (not a plain number type)
  bool is_float;          // a plain floating type (F32/F16/BF16/F64/FP8)
  ToFloatFn to_float;     // null for types that cannot become float (BOOL, integers)
  QuantizeRowsFn quantize;  // null where lowbit cannot produce the type
  bool needs_importance;  // ggml refuses to make it without an importance matrix (none of ours yet)
  SetLevelsFn set_levels = nullptr;  // block types whose dequantized value is a function of (scales, level)
  int n_levels = 0;                  // levels per element; the value is monotonic in the level
};

// The row for a type. Throws Error for a value that is not a known type.
const TypeTraits& type_traits(DType type);
// The row for a raw id as stored in a file, or nullopt if unknown (readers turn that into a clear error).
std::optional<DType> dtype_from_id(uint32_t id);
// By ggml name, case-insensitive ("q4_k" finds Q4_K); nullopt if unknown.
std::optional<DType> dtype_from_name(std::string_view name);
std::span<const TypeTraits> all_types();

inline const char* dtype_name(DType t) { return type_traits(t).name; }
// Bytes of a row of n elements; n must be a multiple of the block size (see row_fits).
size_t row_bytes(DType type, int64_t n);
inline bool row_fits(DType type, int64_t n) { return n % type_traits(type).block_size == 0; }
inline double bits_per_weight(DType type) {
  const auto& t = type_traits(type);
  return 8.0 * static_cast<double>(t.block_bytes) / static_cast<double>(t.block_size);
}

// Row conversions through the table, with checks: throws Error naming `what` on a misfit row length or a type
// with no conversion.
void to_float(DType type, const void* src, float* dst, int64_t n, std::string_view what = "tensor");
void quantize_rows(DType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                   const float* importance = nullptr, std::string_view what = "tensor");

}  // namespace lowbit
