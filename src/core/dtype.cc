#include "core/dtype.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

#include "core/float_formats.h"
#include "core/float_rows.h"
#include "quant/int_groups.h"
#include "quant/k_quants.h"
#include "quant/legacy_quants.h"
#include "util/error.h"

namespace lowbit {
namespace {

// ---- plain types: conversion loops shared through one template ----
template <typename T, float (*Decode)(T)>
void decode_plain(const void* src, float* dst, int64_t n) {
  const T* s = static_cast<const T*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = Decode(s[i]);
}
template <typename T, T (*Encode)(float)>
void encode_plain(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  T* d = static_cast<T*>(dst);
  const int64_t n = nrows * n_per_row;
  for (int64_t i = 0; i < n; ++i) d[i] = Encode(src[i]);
}

// F16 and BF16 rows convert through core/float_rows.h (SIMD, same bits as the scalar converters).
template <void (*kRow)(const uint16_t*, float*, int64_t)>
void halves_to_f32(const void* src, float* dst, int64_t n) { kRow(static_cast<const uint16_t*>(src), dst, n); }
template <void (*kRow)(const float*, uint16_t*, int64_t)>
void f32_to_halves(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  kRow(src, static_cast<uint16_t*>(dst), nrows * n_per_row);
}

float f32_identity(float v) { return v; }
float f64_to_f32(double v) { return static_cast<float>(v); }
double f32_to_f64(float v) { return v; }
uint8_t e4m3_encode(float v) { return f32_to_fp8_e4m3(v, /*saturate=*/true); }
uint8_t e5m2_encode(float v) { return f32_to_fp8_e5m2(v, /*saturate=*/true); }
template <typename I>
float int_to_f32(I v) { return static_cast<float>(v); }

constexpr bool kQ = true;   // is_quantized
constexpr bool kF = true;   // is_float

constexpr TypeTraits kTypes[] = {
    // type          name       block bytes quant float to_float                                  quantize
    {DType::F32, "f32", 1, 4, false, kF, decode_plain<float, f32_identity>, encode_plain<float, f32_identity>, false},
    {DType::F16, "f16", 1, 2, false, kF, halves_to_f32<f16_to_f32_row>, f32_to_halves<f32_to_f16_row>, false},
    {DType::BF16, "bf16", 1, 2, false, kF, halves_to_f32<bf16_to_f32_row>, f32_to_halves<f32_to_bf16_row>, false},
    {DType::F64, "f64", 1, 8, false, kF, decode_plain<double, f64_to_f32>, encode_plain<double, f32_to_f64>, false},
    {DType::F8_E4M3, "f8_e4m3", 1, 1, false, kF, decode_plain<uint8_t, fp8_e4m3_to_f32>, encode_plain<uint8_t, e4m3_encode>, false},
    {DType::F8_E5M2, "f8_e5m2", 1, 1, false, kF, decode_plain<uint8_t, fp8_e5m2_to_f32>, encode_plain<uint8_t, e5m2_encode>, false},
    {DType::I8, "i8", 1, 1, false, false, decode_plain<int8_t, int_to_f32<int8_t>>, nullptr, false},
    {DType::I16, "i16", 1, 2, false, false, decode_plain<int16_t, int_to_f32<int16_t>>, nullptr, false},
    {DType::I32, "i32", 1, 4, false, false, decode_plain<int32_t, int_to_f32<int32_t>>, nullptr, false},
    {DType::I64, "i64", 1, 8, false, false, decode_plain<int64_t, int_to_f32<int64_t>>, nullptr, false},
    {DType::U8, "u8", 1, 1, false, false, decode_plain<uint8_t, int_to_f32<uint8_t>>, nullptr, false},
    {DType::BOOL, "bool", 1, 1, false, false, nullptr, nullptr, false},
    // Block-quantized ggml types. Sizes are ggml's; conversions come from quant/ (null until implemented).
    {DType::Q4_0, "q4_0", 32, 18, kQ, false, dequantize_q4_0, quantize_q4_0, false, set_levels_q4_0, 16},
    {DType::Q4_1, "q4_1", 32, 20, kQ, false, dequantize_q4_1, quantize_q4_1, false, set_levels_q4_1, 16},
    {DType::Q5_0, "q5_0", 32, 22, kQ, false, dequantize_q5_0, quantize_q5_0, false, set_levels_q5_0, 32},
    {DType::Q5_1, "q5_1", 32, 24, kQ, false, dequantize_q5_1, quantize_q5_1, false, set_levels_q5_1, 32},
    {DType::Q8_0, "q8_0", 32, 34, kQ, false, dequantize_q8_0, quantize_q8_0, false, set_levels_q8_0, 256},
    {DType::Q8_1, "q8_1", 32, 36, kQ, false, dequantize_q8_1, quantize_q8_1, false},
    {DType::Q2_K, "q2_K", 256, 84, kQ, false, dequantize_q2_K, quantize_q2_K, false, set_levels_q2_K, 4},
    {DType::Q3_K, "q3_K", 256, 110, kQ, false, dequantize_q3_K, quantize_q3_K, false, set_levels_q3_K, 8},
    {DType::Q4_K, "q4_K", 256, 144, kQ, false, dequantize_q4_K, quantize_q4_K, false, set_levels_q4_K, 16},
    {DType::Q5_K, "q5_K", 256, 176, kQ, false, dequantize_q5_K, quantize_q5_K, false, set_levels_q5_K, 32},
    {DType::Q6_K, "q6_K", 256, 210, kQ, false, dequantize_q6_K, quantize_q6_K, false, set_levels_q6_K, 64},
    {DType::Q8_K, "q8_K", 256, 292, kQ, false, dequantize_q8_K, quantize_q8_K, false},
    {DType::IQ4_NL, "iq4_nl", 32, 18, kQ, false, dequantize_iq4_nl, quantize_iq4_nl, false, set_levels_iq4_nl, 16},
    {DType::IQ4_XS, "iq4_xs", 256, 136, kQ, false, dequantize_iq4_xs, quantize_iq4_xs, false, set_levels_iq4_xs, 16},
    // Engine only: made from GPTQ/AWQ checkpoints (quant/int_groups.h), never quantized to or written.
    {DType::I4G, "i4g", 32, 19, kQ, false, dequantize_i4g, nullptr, false},
};

// Each type's row by its id (ggml's below 32, lowbit's own from 1000), -1 for none. type_traits runs several times
// in every matmul call's setup (row sizes, the activations' type); scanning the table for it took row_bytes 11.7 ns
// a call, hot, against 2.7 this way (harness, Zen 5).
constexpr uint32_t kGgmlIds = 32, kOwnIdsFrom = 1000, kOwnIds = 8;
constexpr size_t index_slot(uint32_t id) {
  if (id < kGgmlIds) return id;
  return id >= kOwnIdsFrom && id < kOwnIdsFrom + kOwnIds ? kGgmlIds + (id - kOwnIdsFrom) : SIZE_MAX;
}
constexpr auto kRowById = [] {
  std::array<int8_t, kGgmlIds + kOwnIds> rows{};
  rows.fill(-1);
  for (size_t i = 0; i < std::size(kTypes); ++i)
    rows.at(index_slot(static_cast<uint32_t>(kTypes[i].type))) = static_cast<int8_t>(i);  // out of range: no build
  return rows;
}();
const TypeTraits* find_type(uint32_t id) {
  const size_t slot = index_slot(id);
  return slot < kRowById.size() && kRowById[slot] >= 0 ? &kTypes[kRowById[slot]] : nullptr;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::span<const TypeTraits> all_types() { return kTypes; }

std::optional<DType> dtype_from_id(uint32_t id) {
  if (const TypeTraits* t = find_type(id)) return t->type;
  return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& t : kTypes)
    if (iequals(t.name, name)) return t.type;
  return std::nullopt;
}

const TypeTraits& type_traits(DType type) {
  if (const TypeTraits* t = find_type(static_cast<uint32_t>(type))) return *t;
  fail("dtype", "unknown type id {}", static_cast<uint32_t>(type));
}

size_t row_bytes(DType type, int64_t n) {
  const auto& t = type_traits(type);
  return static_cast<size_t>(n / t.block_size) * t.block_bytes;
}

void to_float(DType type, const void* src, float* dst, int64_t n, std::string_view what) {
  const auto& t = type_traits(type);
  check(t.to_float != nullptr, what, "type {} cannot be converted to float", t.name);
  check(n % t.block_size == 0, what, "{} elements is not a multiple of the {} block size {}", n, t.name, t.block_size);
  t.to_float(src, dst, n);
}

void quantize_rows(DType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                   const float* importance, std::string_view what) {
  const auto& t = type_traits(type);
  check(t.quantize != nullptr, what, "lowbit cannot write type {}", t.name);
  check(n_per_row % t.block_size == 0, what, "row length {} is not a multiple of the {} block size {}", n_per_row,
        t.name, t.block_size);
  t.quantize(src, dst, nrows, n_per_row, importance);
}

}  // namespace lowbit
