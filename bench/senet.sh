#!/usr/bin/env bash
# SENet's row of the results table (issue 17): the CNN with squeeze-and-excitation after every
# stage and the same CNN without it, trained on the same Fashion-MNIST images (the first 55,000
# training images; dev: the last 5,000) for the same epochs, batches and seed on one thread, each
# best dev checkpoint evaluated on the 10,000 test images. Each run prints
#   senet train N steps, X images/s, best dev accuracy D
#   senet test accuracy XX.XX (channel-attention se|none)
# collected in OUT/results.txt; the SE run draws OUT/se/se-weights.png (+ .tsv).
#   bash bench/senet.sh       # EPOCHS=1 THREADS=1 OUT=runs/senet-bench EXTRA="--train-size 20000"
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS="${EPOCHS:-1}"
THREADS="${THREADS:-1}"
OUT="${OUT:-runs/senet-bench}"
BIN="${BIN:-build/attend-senet}"
EXTRA="${EXTRA:-}"
[ -x "$BIN" ] || { echo "senet.sh: $BIN is missing (cmake --build build --target attend_task_senet)" >&2; exit 1; }
mkdir -p "$OUT"
: > "$OUT/results.txt"
for attention in se none; do
  rm -rf "${OUT:?}/$attention"
  # shellcheck disable=SC2086
  "$BIN" --channel-attention "$attention" --out "$OUT/$attention" --max-epochs "$EPOCHS" \
    --batch-size 64 --lr 3e-3 --warmup 100 --valid-every 250 --threads "$THREADS" --no-progress \
    $EXTRA 2> "$OUT/$attention.log" | tee -a "$OUT/results.txt"
done
