#!/bin/sh
# VEX-encoded VNNI (AVX-VNNI) only in the AVX2 kernels built for it (namespace N_AVX2_VNNI,
# src/ops/simd_matmul_avx_vnni.cc), which run only where the CPU has it. The AVX-512 kernels must use the EVEX forms:
# with AVX-VNNI enabled beside AVX512-VNNI GCC encodes the 256-bit vpdpbusd as VEX, which AVX-512 CPUs without
# AVX-VNNI (Ice Lake, Zen 4) do not have (src/ops/simd_vectors-inl.h). And the AVX-VNNI kernels must hold some.
# Usage: vex_vnni_confined.sh OBJDUMP BINARY
"$1" -d -C --no-show-raw-insn "$2" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $0 }
  /\{vex\} *vpdp/ { found++; if (fn !~ /lowbit::N_AVX2_VNNI::/) { print "AVX-VNNI instruction outside the AVX-VNNI kernels: " fn; bad = 1 } }
  END { if (found == 0) { print "no AVX-VNNI instruction at all: the AVX-VNNI kernels are missing"; bad = 1 }; exit bad }'
