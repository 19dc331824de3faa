#!/usr/bin/env bash
# The Perceiver's row of the results table (issue 17): the Perceiver and the CNN baseline trained
# on the same Fashion-MNIST images for the same number of steps on one thread, each evaluated on
# the 10,000 test images, then the cost table (cross-attention against full self-attention over
# the pixels, as the image grows). Each model at its better peak learning rate of {1e-3, 3e-3}
# (measured: the Perceiver 1e-3, the CNN 3e-3). About 10 minutes on 2 cores with the defaults.
#   bash bench/perceiver.sh   # TRAIN=20000 EPOCHS=2 THREADS=1 OUT=runs/perceiver-bench
set -euo pipefail
cd "$(dirname "$0")/.."
TRAIN="${TRAIN:-20000}"
EPOCHS="${EPOCHS:-2}"
THREADS="${THREADS:-1}"
OUT="${OUT:-runs/perceiver-bench}"
BIN="${BIN:-build/attend-perceiver}"
[ -x "$BIN" ] || { echo "perceiver.sh: $BIN is missing (cmake --build build --target attend_task_perceiver)" >&2; exit 1; }
mkdir -p "$OUT"
LR_PERCEIVER="${LR_PERCEIVER:-1e-3}"
LR_CNN="${LR_CNN:-3e-3}"
COMMON=(--train-size "$TRAIN" --dev-size 1000 --max-epochs "$EPOCHS" --batch-size 32 --warmup 100 --valid-every 100000 --threads "$THREADS" --no-progress)
for model in perceiver cnn; do
  rm -rf "$OUT/$model"
  lr="$LR_PERCEIVER"
  [ "$model" = cnn ] && lr="$LR_CNN"
  "$BIN" --model "$model" --lr "$lr" --out "$OUT/$model" "${COMMON[@]}" | tee "$OUT/$model.txt"
done
"$BIN" --cost --threads "$THREADS" | tee "$OUT/cost.txt"
