#!/usr/bin/env bash
# GAU's row of the results table (issue 17): the segmentation network with global attention
# upsample (Li et al. 2018) and the same network with plain skip connections, trained on the
# same scenes (Fashion-MNIST items on a 64 x 64 canvas; training and dev scenes from the training
# images, test scenes from the test images) for the same steps, batches and seed, one thread
# each, the two side by side on two cores; each best dev checkpoint evaluated on the test scenes.
# Each run prints
#   gau train N steps, X scenes/s, best dev mIoU D
#   gau test IoU per class: ...
#   gau test mIoU XX.XX pixel-accuracy YY.YY (decoder gau|skip)
# collected in OUT/results.txt; each run draws OUT/<decoder>/gau-segmentation.png.
#   bash bench/gau.sh       # STEPS=2500 THREADS=1 OUT=runs/gau-bench EXTRA=""
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-2500}"
THREADS="${THREADS:-1}"
OUT="${OUT:-runs/gau-bench}"
BIN="${BIN:-build/attend-gau}"
EXTRA="${EXTRA:-}"
[ -x "$BIN" ] || { echo "gau.sh: $BIN is missing (cmake --build build --target attend_task_gau)" >&2; exit 1; }
mkdir -p "$OUT"
pids=()
for decoder in gau skip; do
  rm -rf "${OUT:?}/$decoder"
  # shellcheck disable=SC2086
  "$BIN" --decoder "$decoder" --out "$OUT/$decoder" --train-size 8000 --dev-size 500 \
    --test-size 1000 --max-steps "$STEPS" --batch-size 16 --lr 1e-2 --warmup 100 \
    --valid-every 500 --threads "$THREADS" --no-progress $EXTRA \
    > "$OUT/$decoder.txt" 2> "$OUT/$decoder.log" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
cat "$OUT/gau.txt" "$OUT/skip.txt" > "$OUT/results.txt"
cat "$OUT/results.txt"
exit "$status"
