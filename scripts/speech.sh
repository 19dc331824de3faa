#!/usr/bin/env bash
# Speech recognition with attention (Listen, Attend and Spell with Chorowski's location-aware
# attention), end to end: set up, build, synthesise the speech corpus with espeak-ng (test
# voices never heard in training), train for a fixed number of steps (seeded), transcribe the
# test sets (digits, phrases, and the long and repeated digit strings of
# scripts/speech_stress.py) and print WER/CER, and draw a few alignments over their spectrograms.
#   STEPS   training steps (default 2000)
#   SCORE   attention score: location-aware (default) | additive (content only)
#   ARCH    rnn-attention (default) | rnn (no attention: the listener's final state only)
#   OUT     output directory (default runs/speech)
#   DATA    corpus directory (default data/speech; built when missing)
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS="${STEPS:-2000}"
SCORE="${SCORE:-location-aware}"
ARCH="${ARCH:-rnn-attention}"
OUT="${OUT:-runs/speech}"
DATA="${DATA:-data/speech}"
BUILD_DIR="${BUILD_DIR:-build}"
THREADS="${THREADS:-0}"
EXTRA="${EXTRA:-}"  # more `attend train` options, e.g. --spec-augment

bash scripts/setup.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target attend_cli
ATTEND="$BUILD_DIR/attend"

if [ ! -f "$DATA/stats.json" ]; then "$ATTEND" corpus speech --out "$DATA"; fi
if [ ! -f "$DATA/test-repeated.tsv" ]; then python3 scripts/speech_stress.py --data "$DATA"; fi

"$ATTEND" train --task speech --data "$DATA" --out "$OUT" --arch "$ARCH" --score "$SCORE" \
  --cell lstm --hidden-dim 256 --embed-dim 64 --attention-dim 128 --frame-stacking 3 \
  --pyramid-levels 1 --dropout 0.1 --max-tokens 8000 --lr 2e-3 --warmup 300 \
  --max-steps "$STEPS" --valid-every 250 --valid-sentences 100 --threads "$THREADS" $EXTRA

for set in digits phrases long repeated; do
  echo "== test-$set ($(wc -l < "$DATA/test-$set.tsv") utterances, unseen voices), beam 4"
  "$ATTEND" transcribe -m "$OUT/best.ckpt" --manifest "$DATA/test-$set.tsv" --beam 4 --score \
    --timing -o "$OUT/test-$set.hyp" --threads "$THREADS"
done

echo "== a few utterances and their alignments"
head -n 3 "$DATA/test-phrases.tsv" > "$OUT/examples.tsv"
head -n 2 "$DATA/test-repeated.tsv" >> "$OUT/examples.tsv"
sed "s|^wav/|$(realpath "$DATA")/wav/|" "$OUT/examples.tsv" > "$OUT/examples.abs.tsv"
"$ATTEND" transcribe -m "$OUT/best.ckpt" --manifest "$OUT/examples.abs.tsv" --beam 4 \
  --attention-png "$OUT/alignments" | paste - <(cut -f2 "$OUT/examples.tsv") |
  awk -F'\t' '{ printf "heard:  %s\nspoken: %s\n", $1, $2 }'
echo "== spectrograms with the alignment path: $OUT/alignments/00000{0..4}.png"
