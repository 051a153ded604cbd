// CPU features the kernels check at run time beyond what Highway 1.0.3's targets name.
#pragma once

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

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
// Highway 1.0.3 does not require it, and every CPU with AVX-VNNI (whose AVX2 kernels take it too).
inline bool cpu_has_gfni() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = __builtin_cpu_supports("gfni");
  return has;
#else
  return false;
#endif
}

// AVX-VNNI (vpdpbusd, vpdpwssd on 256-bit vectors, VEX-encoded): Intel's cores since Alder Lake and Sapphire
// Rapids, Zen 5. CPUID.(EAX=7, ECX=1):EAX bit 4.
inline bool cpu_has_avx_vnni() {
#if defined(__x86_64__) && defined(__linux__)
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __builtin_cpu_supports("avx2") && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 4 & 1) != 0;
  }();
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

// AMX's int8 tiles (Sapphire Rapids and later) and Linux's leave to use them: a process asks for the tile data
// state once (arch_prctl ARCH_REQ_XCOMP_PERM, for all its threads) before its first tile instruction, which would
// otherwise kill it with SIGILL. A kernel without the request's support answers no, and the tiles stay unused.
inline bool cpu_has_amx_int8() {
#if defined(__x86_64__) && defined(__linux__)
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    constexpr unsigned kAmxTile = 1u << 24, kAmxInt8 = 1u << 25;  // CPUID.(EAX=7, ECX=0):EDX
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || (d & (kAmxTile | kAmxInt8)) != (kAmxTile | kAmxInt8)) return false;
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return has;
#else
  return false;
#endif
}

}  // namespace lowbit
