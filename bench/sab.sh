#!/usr/bin/env bash
# Sparse Attentive Backtracking's row of the results table (issue 17): SAB (ktop 5, katt 10,
# ktrunc 10) against an LSTM trained with full BPTT and one with truncated BPTT (the state
# detached every 10 steps), all hidden 64, each for the same number of steps (the same batches)
# on one thread, the best dev checkpoint tested:
#   copy    10 symbols of 8, a gap of 100 blank steps, the delimiter, the 10 symbols back
#           (121 steps; 4,000 training sequences; 10,000 steps)
#   pixels  Fashion-MNIST averaged down to 14 x 14, one pixel per step (196 steps; 10,000
#           training images; 4,000 steps)
# Each run prints "sab test accuracy X (task T, model M) | ms/step Y | peak MiB Z" (the median
# time of 7 training steps of 32 sequences and the allocator's peak, measured after training); the
# lines are collected in OUT/results.txt and SAB's choices drawn in OUT/TASK-sab/sab-attention.png.
#   bash bench/sab.sh   # JOBS=2 THREADS=1 OUT=runs/sab-bench TASKS="copy pixels"
#                       # MODELS="sab lstm-full lstm-truncated" COPY_STEPS=10000 PIXEL_STEPS=4000
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-2}"
THREADS="${THREADS:-1}"
OUT="${OUT:-runs/sab-bench}"
BIN="${BIN:-build/attend-sab}"
TASKS="${TASKS:-copy pixels}"
MODELS="${MODELS:-sab lstm-full lstm-truncated}"
COPY_STEPS="${COPY_STEPS:-10000}"
PIXEL_STEPS="${PIXEL_STEPS:-4000}"
[ -x "$BIN" ] || { echo "sab.sh: $BIN is missing (cmake --build build --target attend_task_sab)" >&2; exit 1; }
mkdir -p "$OUT"
run() {  # task model
  local task="$1" model="$2" args
  if [ "$task" = copy ]; then
    args="--gap 100 --train-size 4000 --dev-size 200 --test-size 500 --max-steps $COPY_STEPS"
  else
    args="--image-size 14 --train-size 10000 --dev-size 1000 --test-size 2000 --max-steps $PIXEL_STEPS"
  fi
  rm -rf "${OUT:?}/$task-$model"
  # shellcheck disable=SC2086
  "$BIN" --task "$task" --model "$model" --out "$OUT/$task-$model" $args --hidden 64 \
    --ktop 5 --katt 10 --ktrunc 10 --batch-size 32 --lr 3e-3 --warmup 100 --valid-every 500 \
    --log-every 500 --threads "$THREADS" --no-progress 2> "$OUT/$task-$model.log" \
    > "$OUT/$task-$model.txt"
}
export -f run
export BIN OUT THREADS COPY_STEPS PIXEL_STEPS
for task in $TASKS; do
  for model in $MODELS; do echo "$task $model"; done
done | xargs -P "$JOBS" -L 1 bash -c 'run "$0" "$1"'
: > "$OUT/results.txt"
for task in $TASKS; do
  for model in $MODELS; do cat "$OUT/$task-$model.txt" >> "$OUT/results.txt"; done
done
cat "$OUT/results.txt"
