#!/usr/bin/env bash
# Data-parallel training on this machine: tokens/s of 1 process x 2 threads against 2 ranks x 1
# thread (mpirun), the same global batch per step (2 batches of --max-tokens: --accumulate 2 in
# one process), and the time each step spends in the gradients' allreduce as the model grows.
#   bash bench/data_parallel.sh [STEPS] [DATA] [VOCAB]
# DATA: a corpus directory with train/dev.en/de (scripts/quickstart.sh builds data/en-de);
# VOCAB: a SentencePiece model to reuse (default: trained once into $OUT/vocab.model).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-60}"
DATA="${2:-data/en-de}"
OUT="${OUT:-runs/data_parallel}"
ATTEND="${ATTEND:-build/attend}"
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
VOCAB="${3:-$OUT/vocab.model}"
if [ ! -f "$VOCAB" ]; then
  "$ATTEND" train --data "$DATA" --src en --tgt de --out "$OUT/vocab-run" --max-steps 1 \
    --valid-sentences 1 --no-progress > /dev/null 2>&1
  cp "$OUT/vocab-run/vocab.model" "$VOCAB"
fi
common=(train --data "$DATA" --src en --tgt de --vocab "$VOCAB" --max-tokens 2048
        --valid-every 100000 --valid-sentences 1 --no-progress)

# "steps S, T s, N target tokens/s, ..." and "2 ranks: ... (M ms per step)" from the summary.
tokens() { sed -n 's/^steps [0-9]*, [0-9]* s, \([0-9]*\) target tokens\/s.*/\1/p' "$1"; }
reduce_ms() { sed -n 's/.*allreduce (\([0-9.]*\) ms per step).*/\1/p' "$1"; }
wait_ms() { sed -n 's/.*slowest rank (\([0-9.]*\) ms per step).*/\1/p' "$1"; }

echo "| layout | target tokens/s | allreduce ms/step | waiting for the slowest rank, ms/step |"
echo "|---|---:|---:|---:|"
"$ATTEND" "${common[@]}" --max-steps "$STEPS" --out "$OUT/t1" --threads 1 --accumulate 2 > "$OUT/t1.out" 2>&1
echo "| 1 process x 1 thread, --accumulate 2 | $(tokens "$OUT/t1.out") | | |"
"$ATTEND" "${common[@]}" --max-steps "$STEPS" --out "$OUT/t2" --threads 2 --accumulate 2 > "$OUT/t2.out" 2>&1
echo "| 1 process x 2 threads, --accumulate 2 | $(tokens "$OUT/t2.out") | | |"
mpirun --oversubscribe --bind-to core -np 2 "$ATTEND" "${common[@]}" --max-steps "$STEPS" --out "$OUT/r2" --threads 1 \
  > "$OUT/r2.out" 2>&1
echo "| 2 ranks x 1 thread (mpirun) | $(tokens "$OUT/r2.out") | $(reduce_ms "$OUT/r2.out") | $(wait_ms "$OUT/r2.out") |"

echo
echo "| model | parameters | f32 gradient MB | allreduce ms/step | GB/s (gradient bytes / time) |"
echo "|---|---:|---:|---:|---:|"
for spec in "rnn-attention --hidden-dim 128 --embed-dim 128 --attention-dim 128" \
            "rnn-attention" \
            "rnn-attention --hidden-dim 512 --embed-dim 512 --attention-dim 512" \
            "transformer" \
            "transformer --d-model 512 --ff-dim 2048 --heads 8"; do
  name=$(echo "$spec" | tr ' ' '_' | tr -d '-')
  mpirun --oversubscribe --bind-to core -np 2 "$ATTEND" "${common[@]}" --max-steps 20 \
    --out "$OUT/size_$name" --threads 1 --arch $spec > "$OUT/size_$name.out" 2>&1
  params=$(sed -n 's/.*, \([0-9]*\) parameters,.*/\1/p' "$OUT/size_$name/train.log" | head -1)
  mb=$(awk -v p="$params" 'BEGIN { printf "%.1f", p * 4 / 1e6 }')
  ms=$(reduce_ms "$OUT/size_$name.out")
  gbs=$(awk -v p="$params" -v t="$ms" 'BEGIN { printf "%.2f", p * 4 / (t * 1e6) }')
  echo "| \`--arch $spec\` | $params | $mb | $ms | $gbs |"
done
