#!/usr/bin/env bash
# The Neural Turing Machine's row of the results table (issue 17): the copy task trained on
# sequences of length 1..20 and tested on lengths 20, 40, 60 and 80, the NTM (memory 128 x 20,
# LSTM controller 100, one read and one write head) against an LSTM with about as many
# parameters, each for the same number of steps (the same sequences) on one thread, the best dev
# checkpoint tested.
# Each prints "ntm test bits-per-sequence L20 x L40 y L60 z L80 w (controller NAME)"; the lines
# are collected in OUT/results.txt and the NTM's weights are drawn in OUT/ntm/ntm-weights.png.
#   bash bench/ntm.sh        # STEPS=2000 THREADS=1 OUT=runs/ntm-bench CONTROLLERS="ntm lstm"
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-2000}"
THREADS="${THREADS:-1}"
OUT="${OUT:-runs/ntm-bench}"
BIN="${BIN:-build/attend-ntm}"
CONTROLLERS="${CONTROLLERS:-ntm lstm}"
[ -x "$BIN" ] || { echo "ntm.sh: $BIN is missing (cmake --build build --target attend_task_ntm)" >&2; exit 1; }
mkdir -p "$OUT"
: > "$OUT/results.txt"
for controller in $CONTROLLERS; do
  rm -rf "${OUT:?}/$controller"
  "$BIN" --controller "$controller" --out "$OUT/$controller" --max-steps "$STEPS" \
    --batch-size 16 --lr 1e-3 --warmup 200 --clip-norm 10 --valid-every 250 \
    --threads "$THREADS" --no-progress 2> "$OUT/$controller.log" | tee -a "$OUT/results.txt"
done
