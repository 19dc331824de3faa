#!/usr/bin/env bash
# Trains each model of the comparison in docs/results.md for the same number of steps on one
# corpus (deterministic: the results do not depend on the machine's load), translates the test
# set and scores it (BLEU, chrF); with ALIGN=1 also measures attention as alignment against the
# corpus's true links (test.align: `attend corpus synthetic`).
#   bash bench/translation_experiments.sh [STEPS] [PARALLEL]
# Runs PARALLEL trainings at a time, one thread each. Output: $OUT/<name>/.
# MODELS names presets (below); the older "arch:score" spelling still works
# ("rnn-attention:dot" is the preset rnn-attention-dot). EXTRA is added to every training
# (e.g. "--vocab-type word --vocab-size 2000"); SRC and TGT are the corpus's file suffixes;
# METRICS=bracket scores linearised trees (TGT=tree: parsing as translation).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-800}"
PARALLEL="${2:-2}"
BUILD_DIR="${BUILD_DIR:-build}"
DATA="${DATA:-data/en-de}"
SRC="${SRC:-en}"
TGT="${TGT:-de}"
OUT="${OUT:-runs/experiments}"
EXTRA="${EXTRA:-}"
ALIGN="${ALIGN:-0}"
BEAM="${BEAM:-4}"
METRICS="${METRICS:-bleu,chrf}"  # bracket: the targets are linearised trees (parsing)
MODELS="${MODELS:-rnn rnn-attention-additive rnn-attention-dot rnn-attention-general rnn-attention-concat rnn-attention-location transformer}"

# The model options of each preset (the training options are shared, below).
# shellcheck source=bench/translation_presets.sh
source bench/translation_presets.sh

mkdir -p "$OUT"
# A private copy of the binary, so rebuilding during the runs changes nothing (every model of
# one comparison runs the same binary; delete it to take a new build).
[ -x "$OUT/attend" ] || cp "$BUILD_DIR/attend" "$OUT/attend"
ATTEND="$OUT/attend"
[ -f "$DATA/train.$SRC" ] || "$ATTEND" corpus debian --src "$SRC" --tgt "$TGT" --out "$DATA"
# One vocabulary for every model.
if [ ! -f "$OUT/vocab.model" ]; then
  # shellcheck disable=SC2086
  "$ATTEND" train --data "$DATA" --src "$SRC" --tgt "$TGT" --out "$OUT/vocab" --max-steps 1 \
    --valid-every 1 --valid-sentences 1 --no-progress --threads 1 $EXTRA > /dev/null
  cp "$OUT/vocab/vocab.model" "$OUT/vocab.model"
fi

run() {
  local name="$1" options
  options="$(preset "$name")"
  local dir="$OUT/$name"
  if [ -f "$dir/score.txt" ]; then return; fi
  # A finished training (killed before translating) is not repeated.
  # shellcheck disable=SC2086
  grep -q "^stopped" "$dir.train.out" 2>/dev/null ||
  "$ATTEND" train --data "$DATA" --src "$SRC" --tgt "$TGT" --out "$dir" \
    --vocab "$OUT/vocab.model" $options --max-steps "$STEPS" --valid-every "$STEPS" \
    --valid-sentences 300 --warmup 200 --threads 1 --no-progress $EXTRA > "$dir.train.out" 2>&1
  "$ATTEND" translate -m "$dir/best.ckpt" -i "$DATA/test.$SRC" -o "$dir/test.hyp.$TGT" \
    --beam "$BEAM" --threads 1 --timing 2> "$dir/translate.out"
  "$ATTEND" score -r "$DATA/test.$TGT" -i "$dir/test.hyp.$TGT" --metrics "$METRICS" \
    > "$dir/score.tmp"
  if [ "$ALIGN" = 1 ] && [ "$name" != rnn ]; then
    # Attention read as alignment on the reference translations, every site and head.
    "$ATTEND" align -m "$dir/best.ckpt" --src "$DATA/test.$SRC" --tgt "$DATA/test.$TGT" \
      --ref "$DATA/test.align" --all-heads -o "$dir/test.align" --threads 1 \
      > "$dir/align.txt" 2>&1
  fi
  mv "$dir/score.tmp" "$dir/score.txt"
  echo "$name: $(tr '\n' ' ' < "$dir/score.txt")"
}

for name in $MODELS; do preset "${name/:/-}" > /dev/null; done
pids=()
for name in $MODELS; do
  run "${name/:/-}" &
  pids+=($!)
  if [ "${#pids[@]}" -ge "$PARALLEL" ]; then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
done
wait
