#!/bin/sh
# GFNI (vgf2p8*) only in the kernels of the passes that check the CPU for it: AVX3_DL (namespace N_AVX3_DL, a target
# src/ops/simd_matmul.cc turns off without GFNI) and AVX2 with AVX-VNNI (N_AVX2_VNNI, which runs only where
# cpu_runs_avx_vnni_kernels). The CPUs of the plain AVX2 and AVX3 passes (Haswell, Zen 2 and 3, Skylake-X) have no
# GFNI. And both kinds of kernels must hold some. Usage: gfni_confined.sh OBJDUMP BINARY
"$1" -d -C --no-show-raw-insn "$2" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $0 }
  /vgf2p8/ {
    if (fn ~ /lowbit::N_AVX3_DL::/) dl++
    else if (fn ~ /lowbit::N_AVX2_VNNI::/) vnni++
    else { print "GFNI instruction outside the kernels that check for it: " fn; bad = 1 }
  }
  END {
    if (dl == 0) { print "no GFNI instruction in the AVX3_DL kernels"; bad = 1 }
    if (vnni == 0) { print "no GFNI instruction in the AVX-VNNI kernels"; bad = 1 }
    exit bad
  }'
