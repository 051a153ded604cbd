#!/bin/sh
# Attention's tiles keep their sums in registers (src/ops/attention.cc: ScoreVectors, ScoreTail, WeightedVectors):
# inlined into the large attention function, GCC kept them on the stack, each add waiting on the store before it,
# and long contexts generated 7-12 % slower with every test still passing (a short context's last keys, ScoreTail,
# 1.9x slower with the F16 loads' copies). On the AVX2 and AVX-512 targets each tile must be a function of its own
# with no add that reads the stack. (SSE4's sixteen registers do not hold the F16 tiles.)
# Usage: attention_tiles_in_registers.sh OBJDUMP BINARY
"$1" -d -C --no-show-raw-insn "$2" | awk '
  /^[0-9a-f]+ <.*>:$/ {
    key = ""
    if (match($0, /lowbit::N_(AVX2|AVX3|AVX3_DL|AVX3_ZEN4)::(ScoreVectors|ScoreTail|WeightedVectors)<[^>]*>/)) {
      key = substr($0, RSTART, RLENGTH); tiles[key] = 1
    }
  }
  key != "" && /add[a-z]* [^,]*\(%rsp\)/ { from_stack[key]++ }
  END {
    for (k in tiles) { n++; if (from_stack[k] > 0) { print k " adds from the stack " from_stack[k] " times"; bad = 1 } }
    if (n < 48) { print "only " n " attention tiles found as functions (inlined again?)"; bad = 1 }
    exit bad
  }'
