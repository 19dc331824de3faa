#!/usr/bin/env bash
# The sentence-pair row of the results table (issue 17): paraphrase or not on the corpus built
# from the pinned packages' gettext catalogs, each model trained for the same number of epochs
# on one thread and its best dev checkpoint evaluated on the test split: the siamese CNN and
# ABCNN-1/2/3, then the siamese BiGRU and MwAN (its four attention functions). Each prints
# "pairs test accuracy XX.XX F1 YY.YY (model NAME)"; the lines are collected in OUT/results.txt.
#   bash bench/pairs.sh              # EPOCHS=10 THREADS=1 OUT=runs/pairs-bench MODELS="siamese ..."
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS="${EPOCHS:-10}"
THREADS="${THREADS:-1}"
OUT="${OUT:-runs/pairs-bench}"
BIN="${BIN:-build/attend-pairs}"
MODELS="${MODELS:-siamese abcnn1 abcnn2 abcnn3 siamese-gru mwan}"
[ -x "$BIN" ] || { echo "pairs.sh: $BIN is missing (cmake --build build --target attend_task_pairs)" >&2; exit 1; }
mkdir -p "$OUT"
: > "$OUT/results.txt"
for model in $MODELS; do
  rm -rf "${OUT:?}/$model"
  "$BIN" --model "$model" --out "$OUT/$model" --max-epochs "$EPOCHS" --batch-size 32 --lr 2e-3 \
    --warmup 100 --valid-every 100 --threads "$THREADS" --no-progress 2> "$OUT/$model.log" \
    | tee -a "$OUT/results.txt"
  grep -E "trained [0-9]+ steps" "$OUT/$model.log" || true
done
