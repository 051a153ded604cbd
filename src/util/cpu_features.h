// CPU features the kernels check at run time beyond what Highway 1.0.3's targets name.
#pragma once

namespace lowbit {

// AVX512-BF16 (vdpbf16ps): Zen 4 and later, Cooper Lake, Sapphire Rapids and later. Highway's AVX3_DL target
// (Ice Lake) does not imply it.
inline bool cpu_has_avx512_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

// GFNI (vgf2p8affineqb): Ice Lake, Zen 4 and later, every CPU with the rest of Highway's AVX3_DL target, which in
// Highway 1.0.3 does not require it.
inline bool cpu_has_gfni() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = __builtin_cpu_supports("gfni");
  return has;
#else
  return false;
#endif
}

// AMD's CPUs: the one-token matmul tiles open their weights' stream ahead as measured on Zen 5 (FarAhead in
// ops/simd_vectors-inl.h), others as measured on Sapphire Rapids (NearAhead).
inline bool cpu_is_amd() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool is = __builtin_cpu_is("amd");
  return is;
#else
  return false;
#endif
}

}  // namespace lowbit
