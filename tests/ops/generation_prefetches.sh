#!/bin/sh
# Every generation tile prefetches its stream ahead (src/ops/simd_vectors-inl.h, PrefetchTileAhead): GCC 12 silently
# dropped those prefetch loops once, when the helper was always_inline, and Q4_K's AVX2 tile read ~10 % slower with
# every test still passing. For each family's one-token runner RunTiles<RowLanes<F>, P, 1> on every target, the
# runner and F::Tile<1>, F::Tiles<1, 1> or the one-token loop Tile<1> hands over to (F::OneTokenLoop), inlined into
# the runner or not, must hold a prefetch besides the runner's stream start, and so must a tile of several row tiles
# at once (F::Tiles<1, R>) where it is a function of its own. A tile's instances for each stream policy (FarAhead,
# NearAhead) count with it.
# Usage: generation_prefetches.sh OBJDUMP BINARY
"$1" -d -C --no-show-raw-insn "$2" | awk '
  /^[0-9a-f]+ <.*>:$/ {
    fn = $0; key = ""
    if (match(fn, /RunTiles<lowbit::N_[A-Z0-9_]+::RowLanes<.*>, [0-9]+, 1>\(/)) {
      key = substr(fn, RSTART, RLENGTH); sub(/^.*::RowLanes</, "", key); sub(/>, [0-9]+, 1>\($/, "", key)
      sub(/ +$/, "", key); runners[key] = 1
    } else if (match(fn, /lowbit::N_[A-Z0-9_]+::.*::Tiles<1, [2-9]>\(/)) {
      key = substr(fn, RSTART, RLENGTH - 1); runners[key] = 1
    } else if (match(fn, /lowbit::N_[A-Z0-9_]+::.*::(Tiles?<1(, 1)?(, lowbit::N_[A-Z0-9_]+::[A-Za-z]+Ahead)?>|OneTokenLoop(<lowbit::N_[A-Z0-9_]+::[A-Za-z]+Ahead>)?)\(/)) {
      key = substr(fn, RSTART, RLENGTH); sub(/::(Tiles?<1(, 1)?(, lowbit::N_[A-Z0-9_]+::[A-Za-z]+Ahead)?>|OneTokenLoop(<lowbit::N_[A-Z0-9_]+::[A-Za-z]+Ahead>)?)\($/, "", key)
    }
  }
  /prefetch/ { if (key != "") count[key]++ }
  END {
    for (k in runners) { n++; if (count[k] < 2) { print "no prefetch ahead in the one-token tile of " k; bad = 1 } }
    if (n < 10) { print "only " n " one-token runners found"; bad = 1 }
    exit bad
  }'
