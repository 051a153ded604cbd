#!/bin/sh
# Attention's tiles keep their sums in registers (src/ops/attention.cc: ScoreVectors, ScoreTail, WeightedVectors):
# inlined into the large attention function, GCC kept them on the stack, each add waiting on the store before it,
# and long contexts generated 7-12 % slower with every test still passing (a short context's last keys, ScoreTail,
# 1.9x slower with the F16 loads' copies); a tile of eight heads whose loops were unrolled only four times kept them
# in an array on the stack (2026-12-07: 1.6x slower at 256 keys). On the AVX2 and AVX-512 targets each tile must be
# a function of its own, and no loop in it that sums (the code from a conditional backward branch's target to the branch, with an
# add or a multiply-add) may store a vector register to memory. (SSE4 takes the plain loops.)
# Usage: attention_tiles_in_registers.sh OBJDUMP BINARY
"$1" -d -C --no-show-raw-insn "$2" | awk '
  function flush() {
    if (key == "") return
    for (j = 1; j <= n; j++)
      if (op[j] ~ /^j/ && op[j] != "jmp" && target[j] != "" && target[j] < addr[j]) {
        sums = 0; stored = 0
        for (i = 1; i < j; i++)
          if (addr[i] >= target[j]) {
            if (op[i] ~ /^v(fmadd|add)/) sums++
            if (op[i] ~ /^vmov/ && args[i] ~ /^%[xyz]mm[0-9]+,.*\(/) stored++
          }
        if (sums > 0) stores[key] += stored
      }
  }
  /^[0-9a-f]+ <.*>:$/ {
    flush(); key = ""; n = 0
    if (match($0, /lowbit::N_(AVX2|AVX3|AVX3_DL|AVX3_ZEN4)::(ScoreVectors|ScoreTail|WeightedVectors)<[^>]*>/)) {
      key = substr($0, RSTART, RLENGTH); tiles[key] = 1
    }
    next
  }
  key != "" && /^ *[0-9a-f]+:\t/ {
    n++; split($0, f, "\t"); sub(/:$/, "", f[1]); gsub(/ /, "", f[1]); addr[n] = sprintf("%016s", f[1])
    split(f[2], w, " "); op[n] = w[1]; args[n] = w[2]; target[n] = ""
    if (op[n] ~ /^j/ && w[2] ~ /^[0-9a-f]+$/) target[n] = sprintf("%016s", w[2])
  }
  END {
    flush()
    for (k in tiles) { m++; if (stores[k] > 0) { print k " stores a vector in a loop " stores[k] " times"; bad = 1 } }
    if (m < 48) { print "only " m " attention tiles found as functions (inlined again?)"; bad = 1 }
    exit bad
  }'
