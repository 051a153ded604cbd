#!/usr/bin/env bash
# `make demo`: the main job on the bundled model (models/tiny-gutenberg, a 3.7M-parameter Llama trained on
# public-domain books). Converts it to GGUF, quantizes it with llama.cpp's file types, and measures what each
# quantization lost (perplexity and KL-divergence against the original), then generates a little text.
set -euo pipefail
LOWBIT=${1:-build/lowbit}
cd "$(dirname "$0")/.."
OUT=out/demo
mkdir -p "$OUT"
T=$(nproc)
TEXT=data/wiki.test.head.raw

echo "== lowbit inspect models/tiny-gutenberg (head)"
"$LOWBIT" inspect models/tiny-gutenberg | head -4

echo; echo "== lowbit convert: Hugging Face folder -> GGUF F32 (what llama.cpp's converter writes)"
"$LOWBIT" convert --quiet models/tiny-gutenberg -o "$OUT/tiny-f32.gguf" --type f32 | head -1

echo; echo "== base log-probabilities for KL-divergence"
"$LOWBIT" perplexity "$OUT/tiny-f32.gguf" -f "$TEXT" -c 256 --chunks 40 -t "$T" --save-logits "$OUT/base.logits" 2>/dev/null \
  | tail -1 | tee "$OUT/f32.txt"

printf '\n| file | size | PPL | mean KLD | same top token |\n|---|---:|---:|---:|---:|\n' > "$OUT/table.md"
ppl() { grep -o 'PPL = [0-9.]*' "$1" | cut -d' ' -f3; }
printf '| %s | %s | %s | 0 | 100 %% |\n' F32 "$(du -h "$OUT/tiny-f32.gguf" | cut -f1)" "$(ppl "$OUT/f32.txt")" >> "$OUT/table.md"
for TYPE in Q8_0 Q4_0 Q4_K_M Q2_K; do
  F="$OUT/tiny-$TYPE.gguf"
  echo; echo "== lowbit quantize $TYPE"
  "$LOWBIT" quantize --quiet -t "$T" "$OUT/tiny-f32.gguf" "$F" "$TYPE" | tail -2
  "$LOWBIT" perplexity "$F" -f "$TEXT" -c 256 --chunks 40 -t "$T" --kl-divergence "$OUT/base.logits" 2>/dev/null > "$OUT/$TYPE.txt"
  printf '| %s | %s | %s | %s | %s %% |\n' "$TYPE" "$(du -h "$F" | cut -f1)" "$(ppl "$OUT/$TYPE.txt")" \
    "$(grep 'Mean    KLD' "$OUT/$TYPE.txt" | awk '{print $3}')" "$(grep 'Same top p' "$OUT/$TYPE.txt" | awk '{print $4}')" >> "$OUT/table.md"
done

echo; echo "== what each file lost (wiki.test.raw, ctx 256, 40 chunks)"
cat "$OUT/table.md"

echo; echo "== lowbit run $OUT/tiny-Q4_K_M.gguf -p 'The old man' -n 40"
"$LOWBIT" run "$OUT/tiny-Q4_K_M.gguf" -p "The old man" -n 40 -t "$T"

echo; echo "== lowbit compare: every variant side by side; importance matrix, GPTQ and AWQ calibrated on tinyshakespeare"
"$LOWBIT" compare models/tiny-gutenberg --text "$TEXT" --calib data/calib-shakespeare.txt -o "$OUT/report" -t "$T" \
  --nsamples 64 --variants f16,q8_0,q4_0,q4_k_m,q4_k_m+imatrix,gptq-gguf:q4_k_m,q2_k,rtn:w4g128,gptq:w4g128,awq:w4g128 \
  2>/dev/null
echo "open $OUT/report/report.html for the plots"

echo; echo "== lowbit plan --params 8B --mem 8GiB"
"$LOWBIT" plan --params 8B --mem 8GiB | tail -18
