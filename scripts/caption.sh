#!/usr/bin/env bash
# Image captioning with attention (Show, Attend and Tell; Bottom-Up and Top-Down), end to end:
# set up, build, draw the scenes corpus from Fashion-MNIST (test scenes from its test set only),
# train each captioner for the same number of steps (seeded), caption the test scenes with beam
# search (each model as it is after STEPS steps, last.ckpt: the same budget, no choice made on the
# dev set) and print BLEU-4, how many of the items each caption names are in the scene (and how
# many of the scene's items it names) against the five references and grounding (the share of the attention
# inside the box of the item a word names, with chance beside it), and draw where each model
# looked for each word of a few test captions.
#   MODELS  which captioners (default "soft hard none top-down top-down-true"): show-attend-tell
#           with soft, hard or no attention (the mean of the grid), top-down over region
#           proposals, and top-down over the items' true boxes (an upper bound for the proposals)
#   STEPS   training steps per model (default 2500)
#   JOBS    models trained at once, one thread each (default 2 on this 2-core machine)
#   OUT     output directory (default runs/caption; one subdirectory per model)
#   DATA    corpus directory (default data/scenes; built when missing)
set -euo pipefail
cd "$(dirname "$0")/.."

MODELS="${MODELS:-soft hard none top-down top-down-true}"
STEPS="${STEPS:-2500}"
JOBS="${JOBS:-2}"
OUT="${OUT:-runs/caption}"
DATA="${DATA:-data/scenes}"
BUILD_DIR="${BUILD_DIR:-build}"
EXTRA="${EXTRA:-}"  # more `attend train` options for every model

bash scripts/setup.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target attend_cli
ATTEND="$BUILD_DIR/attend"
if [ ! -f "$DATA/stats.json" ]; then "$ATTEND" corpus scenes --out "$DATA"; fi
mkdir -p "$OUT"

train() {  # model name -> OUT/NAME
  local name="$1" arch=(--arch show-attend-tell --image-attention "$1")
  if [ "$name" = top-down ]; then arch=(--arch top-down); fi
  if [ "$name" = top-down-true ]; then arch=(--arch top-down --true-boxes); fi
  "$ATTEND" train --task caption --data "$DATA" --out "$OUT/$name" "${arch[@]}" \
    --hidden-dim 256 --embed-dim 64 --attention-dim 128 --max-tokens 3072 --lr 1e-3 \
    --warmup 200 --max-steps "$STEPS" --valid-every 500 --valid-sentences 500 --log-every 50 \
    --threads 1 --no-progress $EXTRA > "$OUT/$name.log" 2>&1
  tail -n 1 "$OUT/$name.log"
}

echo "== training ($MODELS), $JOBS at a time, $STEPS steps each; logs in $OUT/NAME.log"
running=0
for m in $MODELS; do
  train "$m" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait

echo "== test scenes ($(cut -f1 "$DATA/test.tsv" | uniq | wc -l) images, 5 references each), beam 3"
for m in $MODELS; do
  printf '%-13s ' "$m"
  "$ATTEND" caption -m "$OUT/$m/last.ckpt" --tsv "$DATA/test.tsv" \
    --items "$DATA/test.items.jsonl" --beam 3 \
    -o "$OUT/$m/test.hyp" 2>&1 | tail -n 1
done

echo "== where each model looked, word by word: $OUT/NAME/pictures/00000{0..3}.png"
# The first four test scenes (all their reference lines), with absolute image paths.
head -n 20 "$DATA/test.tsv" | sed "s|^|$(realpath "$DATA")/|" > "$OUT/examples.tsv"
grep -F -f <(cut -f1 "$DATA/test.tsv" | head -n 20 | uniq | sed 's/$/"/; s/^/"/') \
  "$DATA/test.items.jsonl" | sed "s|\"image\":\"|\"image\":\"$(realpath "$DATA")/|" \
  > "$OUT/examples.items.jsonl"
for m in $MODELS; do
  if [ "$m" = none ]; then continue; fi
  echo "-- $m"
  "$ATTEND" caption -m "$OUT/$m/last.ckpt" --beam 3 --tsv "$OUT/examples.tsv" \
    --items "$OUT/examples.items.jsonl" --attention-png "$OUT/$m/pictures" 2>/dev/null
done
