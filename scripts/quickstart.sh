#!/usr/bin/env bash
# The toolkit's main job: set up, build, build the default en-de corpus from Debian's gettext
# catalogs, train an RNN with attention for a fixed number of steps (seeded: the same batches and
# the same model on every machine, up to floating-point differences), score it on the test set
# (BLEU, chrF), translate a few sentences and draw where the model attends.
#   STEPS     training steps (default 2000, about 4 epochs; the progress line shows the ETA)
#   MINUTES   train for this many minutes instead of STEPS (the result then depends on the machine)
#   ARCH      rnn-attention | rnn | transformer
#   OUT       output directory (default runs/quickstart)
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS="${STEPS:-2000}"
MINUTES="${MINUTES:-}"
ARCH="${ARCH:-rnn-attention}"
OUT="${OUT:-runs/quickstart}"
BUILD_DIR="${BUILD_DIR:-build}"
DATA="${DATA:-data/en-de}"

bash scripts/setup.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target attend_cli
ATTEND="$BUILD_DIR/attend"

# Only the pinned packages' catalogs (not whatever else this machine's image carries).
source scripts/corpus_packages.sh
corpus_locale_dir "$DATA.locale" de
"$ATTEND" corpus debian --src en --tgt de --locale-dir "$DATA.locale" --out "$DATA"

if [ -n "$MINUTES" ]; then LIMIT=(--max-minutes "$MINUTES"); else LIMIT=(--max-steps "$STEPS"); fi
"$ATTEND" train --data "$DATA" --src en --tgt de --out "$OUT" --arch "$ARCH" \
  "${LIMIT[@]}" --valid-every 500 --valid-sentences 300 --max-tokens 2048

echo "== test set (${DATA}/test.en, $(wc -l < "$DATA/test.en") sentences), beam 4"
"$ATTEND" translate -m "$OUT/best.ckpt" -i "$DATA/test.en" -o "$OUT/test.hyp.de" --beam 4 --timing
"$ATTEND" score -r "$DATA/test.de" -i "$OUT/test.hyp.de" --metrics bleu,chrf

echo "== a few sentences, with hard alignments (source-target subword positions)"
head -n 5 "$DATA/test.en" | tee "$OUT/examples.en"
"$ATTEND" translate -m "$OUT/best.ckpt" -i "$OUT/examples.en" --beam 4 --alignment hard \
  --attention-png "$OUT/attention"
echo "== attention heatmaps: $OUT/attention/sentence-0000{1..5}.png"
