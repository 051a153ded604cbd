// Scalar conversions between float32 and the small float formats (IEEE half, bfloat16, OCP FP8 E4M3/E5M2).
// All encoders round to nearest, ties to even, and keep NaN a NaN. These are the reference definitions;
// SIMD paths must agree with them bit for bit.
#pragma once

#include <bit>
#include <cstdint>

namespace lowbit {

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // overflow -> Inf, NaN -> 0x7E00 (sign kept)

inline float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }
uint16_t f32_to_bf16(float f);  // as ggml: NaN keeps its top bits and is forced quiet

// OCP FP8. E4M3 ("e4m3fn") has no infinities: 0x7F/0xFF are NaN, the largest finite value is 448, and
// anything that rounds beyond it becomes NaN unless `saturate` (then +-448). E5M2 is IEEE-like with infinities.
float fp8_e4m3_to_f32(uint8_t v);
uint8_t f32_to_fp8_e4m3(float f, bool saturate = false);
float fp8_e5m2_to_f32(uint8_t v);
uint8_t f32_to_fp8_e5m2(float f, bool saturate = false);

}  // namespace lowbit
