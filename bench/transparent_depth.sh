#!/usr/bin/env bash
# Bapna et al. 2018's claim on attend: a deep post-norm Transformer encoder trains badly or not
# at all, the same model with transparent attention trains. For each encoder depth in DEPTHS,
# trains the plain and the transparent model (post-norm, DECODER decoder layers) for STEPS steps
# on the en-de corpus, one thread each, two at a time; prints the training loss every 100 steps,
# the dev loss and the test BLEU/chrF (greedy, to keep the comparison cheap).
#   bash bench/transparent_depth.sh [STEPS] [DEPTHS]      e.g. bash bench/transparent_depth.sh 800 "12 18"
# Output: runs/transparent/<depth>-{plain,transparent}/.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-800}"
DEPTHS="${2:-12}"
DECODER="${DECODER:-2}"
BUILD_DIR="${BUILD_DIR:-build}"
DATA="${DATA:-data/en-de}"
OUT="${OUT:-runs/transparent}"
MODEL="${MODEL:---d-model 256 --heads 4 --ff-dim 1024}"
mkdir -p "$OUT"
[ -x "$OUT/attend" ] || cp "$BUILD_DIR/attend" "$OUT/attend"
ATTEND="$OUT/attend"
[ -f "$DATA/train.en" ] || "$ATTEND" corpus debian --src en --tgt de --out "$DATA"
if [ ! -f "$OUT/vocab.model" ]; then
  "$ATTEND" train --data "$DATA" --out "$OUT/vocab" --max-steps 1 --valid-every 1 \
    --valid-sentences 1 --no-progress --threads 1 > /dev/null
  cp "$OUT/vocab/vocab.model" "$OUT/vocab.model"
fi

run() {
  local depth="$1" kind="$2" dir="$OUT/$1-$2" flag=""
  [ "$kind" = transparent ] && flag="--transparent"
  if [ ! -f "$dir/score.txt" ]; then
    # shellcheck disable=SC2086
    "$ATTEND" train --data "$DATA" --out "$dir" --vocab "$OUT/vocab.model" --arch transformer \
      --post-norm --layers "$depth" --decoder-depth "$DECODER" $MODEL $flag \
      --max-steps "$STEPS" --valid-every "$STEPS" --valid-sentences 300 --warmup 200 \
      --log-every 100 --threads 1 --no-progress > "$dir.train.out" 2>&1 || true
    if [ -f "$dir/best.ckpt" ]; then
      "$ATTEND" translate -m "$dir/best.ckpt" -i "$DATA/test.en" -o "$dir/test.hyp.de" \
        --beam 1 --threads 1 2> /dev/null
      "$ATTEND" score -r "$DATA/test.de" -i "$dir/test.hyp.de" --metrics bleu,chrf \
        > "$dir/score.txt"
    else
      echo "no checkpoint (training failed: $dir.train.out)" > "$dir/score.txt"
    fi
  fi
  echo "== $depth encoder layers, $kind"
  grep -E "^step [0-9]+ " "$dir/train.log" | awk '{printf "step %s loss %s\n", $2, $8}' | tr '\n' ';'
  echo
  grep -E "^validation" "$dir/train.log" | tail -1
  cat "$dir/score.txt"
}

for depth in $DEPTHS; do
  run "$depth" plain > "$OUT/$depth-plain.summary" &
  run "$depth" transparent > "$OUT/$depth-transparent.summary" &
  wait
  cat "$OUT/$depth-plain.summary" "$OUT/$depth-transparent.summary"
done
