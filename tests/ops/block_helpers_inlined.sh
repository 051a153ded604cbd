#!/bin/sh
# The matmul tiles' per-block helpers (a family's Levels, Load, Position, Decode, BlockDot, Dot, ScalePairs,
# ReadHead, PairProducts; src/ops/simd_legacy-inl.h, simd_kquants-inl.h) are inlined into their tiles on every
# target. GCC once left IQ4_NL's Levels a function of its own, called once per block with its eight vectors passed
# through the stack: IQ4_NL read 2.6x slower from L3 (BM_IQ4_NL_Simd 22.7 against Q4_0's 64 GB/s) with every test
# still passing. So are the passes' primitives (V::...): SSE4's software Fma, a function of its own, took 13.5 % of
# BM_Q4_K_Simd there.
# Usage: block_helpers_inlined.sh OBJDUMP BINARY
"$1" -d -C --no-show-raw-insn "$2" | awk '
  /^[0-9a-f]+ <.*>:$/ {
    if (match($0, /lowbit::N_[A-Z0-9_]+::.*::(Levels|Load|Position|Decode|BlockDot|Dot|ScalePairs|ReadHead|PairProducts)\(/)) {
      print "not inlined: " substr($0, RSTART, RLENGTH - 1); bad = 1
    }
    if (match($0, /lowbit::N_[A-Z0-9_]+::V::[A-Za-z0-9_]+/)) { print "not inlined: " substr($0, RSTART, RLENGTH); bad = 1 }
    if (match($0, /lowbit::N_[A-Z0-9_]+::RunTiles</)) runners++
  }
  END {
    if (runners < 10) { print "only " runners + 0 " tile runners found"; bad = 1 }
    exit bad
  }'
