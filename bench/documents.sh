#!/usr/bin/env bash
# The documents rows of the results table (issue 17): manual pages classified by section (the
# pinned packages' English pages, hash-split 80/10/10), HAN against flat attention and mean
# pooling, and HAN with stacked latent attention against HAN with single attention layers. Every
# run has the same budget (STEPS steps of 32 documents, the same seed, one thread); each best dev
# checkpoint (by macro-F1) is scored on the test split. Each run prints
#   documents test accuracy XX.XX macro-F1 YY.YY (model M, attention A)
# collected in OUT/results.txt; OUT/NAME/weights.html draws the weights of the first test pages.
#   bash bench/documents.sh      # STEPS=1000 THREADS=1 OUT=runs/documents-bench JOBS=1
# JOBS=2 runs two trainings at a time (2 cores, one thread each).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-1000}"
THREADS="${THREADS:-1}"
JOBS="${JOBS:-1}"
OUT="${OUT:-runs/documents-bench}"
BIN="${BIN:-build/attend-documents}"
EXTRA="${EXTRA:-}"
[ -x "$BIN" ] || { echo "documents.sh: $BIN is missing (cmake --build build --target attend_task_documents)" >&2; exit 1; }
mkdir -p "$OUT"
run() {  # NAME MODEL ATTENTION
  rm -rf "${OUT:?}/$1"
  # shellcheck disable=SC2086
  "$BIN" --model "$2" --attention "$3" --out "$OUT/$1" --max-steps "$STEPS" --max-minutes 0 \
    --batch-size 32 --lr 2e-3 --warmup 100 --valid-every 100 --threads "$THREADS" --no-progress \
    $EXTRA 2> "$OUT/$1.log" > "$OUT/$1.txt"
}
names=(han-single flat-single mean han-stacked)
models=(han flat mean han)
attentions=(single single single stacked)
for i in "${!names[@]}"; do
  run "${names[$i]}" "${models[$i]}" "${attentions[$i]}" &
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
done
wait
: > "$OUT/results.txt"
for n in "${names[@]}"; do
  grep -h "steps in" "$OUT/$n.log" | sed "s/^/$n: /" >> "$OUT/results.txt"
  cat "$OUT/$n.txt" >> "$OUT/results.txt"
done
cat "$OUT/results.txt"
