#!/usr/bin/env bash
# The speed column of the translation comparison in docs/results.md, measured apart from the
# quality runs so that nothing else shares the cores: for each model preset
# (bench/translation_presets.sh), one at a time on one thread, trains STEPS steps of the same
# batches as bench/translation_experiments.sh and reports the median src+tgt tokens/s of the
# logged intervals after the first (warm-up); with the quality run's checkpoint at hand
# ($RUNS/<name>/best.ckpt), also translates the first SENTENCES test sentences with beam 4.
#   bash bench/translation_speed.sh [STEPS] [SENTENCES]
# Run it on a quiet machine: the figures are meant as ratios between the models of one run.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-100}"
SENTENCES="${2:-300}"
DATA="${DATA:-data/en-de}"
SRC="${SRC:-en}"
TGT="${TGT:-de}"
RUNS="${RUNS:-runs/en-de}"
OUT="${OUT:-runs/speed}"
MODELS="${MODELS:-rnn luong bahdanau tutorial encdec-dot encdec-qkv self-dot self-qkv advanced-lstm pervasive-128 transformer transparent}"
# The quality run's binary and vocabulary, so both columns describe the same program.
ATTEND="${ATTEND:-$RUNS/attend}"
VOCAB="${VOCAB:-$RUNS/vocab.model}"
# shellcheck source=bench/translation_presets.sh
source bench/translation_presets.sh
for f in "$ATTEND" "$VOCAB" "$DATA/train.$SRC"; do
  [ -e "$f" ] || { echo "translation_speed: $f is missing (run bench/translation_experiments.sh first)" >&2; exit 1; }
done
mkdir -p "$OUT"
head -n "$SENTENCES" "$DATA/test.$SRC" > "$OUT/test.$SRC"
echo "| model | training src+tgt tokens/s | translation sentences/s (beam 4) |"
echo "|---|---:|---:|"
for name in $MODELS; do
  options="$(preset "$name")"
  dir="$OUT/$name"
  rm -rf "$dir"
  # shellcheck disable=SC2086
  "$ATTEND" train --data "$DATA" --src "$SRC" --tgt "$TGT" --out "$dir" --vocab "$VOCAB" \
    $options --max-steps "$STEPS" --valid-every 1000000 --valid-sentences 1 --warmup 200 \
    --log-every 10 --threads 1 --no-progress > "$dir.train.out" 2>&1
  train=$(grep -o '^step [0-9]* .*| [0-9]* src+tgt tok/s' "$dir.train.out" | tail -n +2 |
    grep -o '[0-9]* src+tgt' | awk '{print $1}' | sort -n |
    awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : int((v[NR/2]+v[NR/2+1])/2)}')
  decode="-"
  if [ -f "$RUNS/$name/best.ckpt" ]; then
    "$ATTEND" translate -m "$RUNS/$name/best.ckpt" -i "$OUT/test.$SRC" -o "$dir.hyp" --beam 4 \
      --threads 1 --timing 2> "$dir.translate.out"
    decode=$(grep -o '[0-9.]* sentences/s' "$dir.translate.out" | tail -n 1 | awk '{print $1}')
  fi
  echo "| $name | $train | ${decode:--} |"
done
