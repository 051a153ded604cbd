// Whole-row work on floats, in SIMD. Conversions of the 16-bit float formats to float32: F16 through the F16C instruction (or Highway's
// exact emulation), BF16 by a shift. Bit-identical to float_formats.h's scalar f16_to_f32 / bf16_to_f32 for
// every input, NaN included (a half NaN becomes the canonical quiet NaN of its sign, as the scalar table has it).
// These are what the type table's to_float uses for F16/BF16 (core/dtype.h), so loading and quantizing F16
// models run at memory speed.
#pragma once

#include <cstdint>

namespace lowbit {

void f16_to_f32_row(const uint16_t* src, float* dst, int64_t n);
void bf16_to_f32_row(const uint16_t* src, float* dst, int64_t n);
// And back to F16, bit-identical to f32_to_f16 (round to nearest even, overflow to Inf, NaN to 0x7E00 with its
// sign): the F16 activations of every F16 matmul go through it.
void f32_to_f16_row(const float* src, uint16_t* dst, int64_t n);
// And to BF16, bit-identical to f32_to_bf16 (round to nearest even, NaN quieted keeping its top bits): the BF16
// activations of every BF16 matmul.
void f32_to_bf16_row(const float* src, uint16_t* dst, int64_t n);
// v[0..n) rounded to F16 and back, in place, in one pass (the bits of the two row conversions above): llama.cpp's
// F16 attention rounds Q and the softmax weights so.
void round_through_f16(float* v, int64_t n);

// Index of the first NaN or Inf in values[0..n), or -1 if every value is finite.
int64_t first_non_finite(const float* values, int64_t n);

}  // namespace lowbit
