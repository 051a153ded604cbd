#!/bin/sh
# The AVX3_DL kernels are compiled with AVX512-BF16 enabled, for the BF16 tile that runs only where the CPU has it
# (src/ops/simd_matmul.cc). Ice Lake runs the same target without it, so every bf16 instruction in the binary must
# sit in that tile's functions (Bf16Pairs<true>). Usage: bf16_confined.sh OBJDUMP BINARY
"$1" -d -C --no-show-raw-insn "$2" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $0 }
  /vdpbf16ps|vcvtne2ps2bf16|vcvtneps2bf16/ { found++; if (fn !~ /Bf16Pairs<true>/) { print "bf16 instruction outside the BF16 tile: " fn; bad = 1 } }
  END { if (found == 0) { print "no bf16 instruction at all: the BF16 tile is missing"; bad = 1 }; exit bad }'
