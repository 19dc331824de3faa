#!/usr/bin/env bash
# Trains each model of the comparison in docs/results.md for the same number of steps on the
# default corpus (deterministic: the results do not depend on the machine's load), translates
# the test set and scores it, overall and by source length.
#   bash bench/translation_experiments.sh [STEPS] [PARALLEL]
# Runs PARALLEL trainings at a time, one thread each. Output: runs/experiments/<name>/.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-800}"
PARALLEL="${2:-2}"
BUILD_DIR="${BUILD_DIR:-build}"
DATA="${DATA:-data/en-de}"
OUT="${OUT:-runs/experiments}"
MODELS="${MODELS:-rnn rnn-attention:additive rnn-attention:dot rnn-attention:general rnn-attention:concat rnn-attention:location transformer}"
mkdir -p "$OUT"
# A private copy of the binary, so rebuilding during the runs changes nothing (every model of
# one comparison runs the same binary; delete it to take a new build).
[ -x "$OUT/attend" ] || cp "$BUILD_DIR/attend" "$OUT/attend"
ATTEND="$OUT/attend"
[ -f "$DATA/train.en" ] || "$ATTEND" corpus debian --src en --tgt de --out "$DATA"
# One vocabulary for every model.
if [ ! -f "$OUT/vocab.model" ]; then
  "$ATTEND" train --data "$DATA" --out "$OUT/vocab" --max-steps 1 --valid-every 1 \
    --valid-sentences 1 --no-progress --threads 1 > /dev/null
  cp "$OUT/vocab/vocab.model" "$OUT/vocab.model"
fi

run() {
  local spec="$1" arch score name
  arch="${spec%%:*}"
  score="${spec#*:}"
  [ "$score" = "$spec" ] && score=additive
  name="${arch}${score:+-$score}"
  [ "$arch" = rnn-attention ] || name="$arch"
  local dir="$OUT/$name"
  if [ -f "$dir/test.hyp.de" ]; then return; fi
  # A finished training (killed before translating) is not repeated.
  grep -q "^stopped" "$dir.train.out" 2>/dev/null ||
  "$ATTEND" train --data "$DATA" --out "$dir" --vocab "$OUT/vocab.model" --arch "$arch" \
    --score "$score" --max-steps "$STEPS" --valid-every "$STEPS" --valid-sentences 300 \
    --warmup 200 --threads 1 --no-progress > "$dir.train.out" 2>&1
  "$ATTEND" translate -m "$dir/best.ckpt" -i "$DATA/test.en" -o "$dir/test.hyp.de" --beam 4 \
    --threads 1 --timing 2> "$dir/translate.out"
  "$ATTEND" score -r "$DATA/test.de" -i "$dir/test.hyp.de" --metrics bleu,chrf > "$dir/score.txt"
  echo "$name: $(tr '\n' ' ' < "$dir/score.txt")"
}

pids=()
for spec in $MODELS; do
  run "$spec" &
  pids+=($!)
  if [ "${#pids[@]}" -ge "$PARALLEL" ]; then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
done
wait
