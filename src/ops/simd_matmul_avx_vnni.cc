// The AVX2 kernels built a second time, with AVX-VNNI: vpdpbusd and vpdpwssd on 256-bit vectors in place of
// maddubs, madd and add (the same exact sums, so the same bits). Intel's cores since Alder Lake have AVX-VNNI but
// not AVX-512, so AVX2 is the best Highway target they run, and Highway 1.0.3 has no target for AVX2 with VNNI.
// ops/simd_matmul.cc calls these kernels where the CPU has AVX-VNNI and AVX2 is the target in use.
//
// This file is one pass of what foreach_target does for ops/simd_matmul.cc: Highway's ops for AVX2 as usual (the
// same code as that file's AVX2 pass), then the kernels in the namespace N_AVX2_VNNI, with LOWBIT_AVX_VNNI
// switching V's forms (ops/simd_vectors-inl.h) and adding avxvnni to the pass's instructions.
#include <hwy/detect_targets.h>

#if HWY_ARCH_X86
#undef HWY_TARGET
#define HWY_TARGET HWY_AVX2
#include <hwy/highway.h>
#undef HWY_NAMESPACE
#define HWY_NAMESPACE N_AVX2_VNNI
#define LOWBIT_AVX_VNNI 1
#include "ops/simd_matmul-inl.h"
#endif

#include "ops/simd_matmul.h"

namespace lowbit {

MatmulRowsFn avx_vnni_matmul_rows() {
#if HWY_ARCH_X86
  return &N_AVX2_VNNI::MatmulRows;
#else
  return nullptr;
#endif
}

}  // namespace lowbit
