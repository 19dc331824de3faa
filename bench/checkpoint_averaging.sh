#!/usr/bin/env bash
# BLEU of one run's last checkpoint, of the average of its newest numbered checkpoints (attend
# average), and of its moving average (--ema), on the same test set, beam 4.
#   bash bench/checkpoint_averaging.sh RUN_DIR [DATA] [SRC] [TGT]
# RUN_DIR: an `attend train ... --keep-checkpoints N --ema DECAY` output directory, e.g.
#   build/attend train --data data/en-de --src en --tgt de --out runs/avg/run --max-steps 1000 \
#     --valid-every 100 --valid-sentences 300 --max-tokens 2048 --threads 1 \
#     --keep-checkpoints 5 --ema 0.99
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="$1"
DATA="${2:-data/en-de}"
SRC="${3:-en}"
TGT="${4:-de}"
ATTEND="${ATTEND:-build/attend}"
mapfile -t numbered < <(ls "$RUN"/ckpt.*.ckpt | sort -t. -k2 -n)
"$ATTEND" average -o "$RUN/averaged.ckpt" "${numbered[@]}"
echo "| weights | test BLEU | chrF |"
echo "|---|---:|---:|"
for name in last averaged ema; do
  ckpt="$RUN/$name.ckpt"
  [ -f "$ckpt" ] || continue
  "$ATTEND" translate -m "$ckpt" -i "$DATA/test.$SRC" -o "$RUN/test.$name.$TGT" --beam 4 \
    --threads "${THREADS:-1}" 2> /dev/null
  line=$("$ATTEND" score -r "$DATA/test.$TGT" -i "$RUN/test.$name.$TGT" --metrics bleu,chrf)
  bleu=$(echo "$line" | sed -n 's/^ *BLEU[^=]*= \([0-9.]*\).*/\1/p')
  chrf=$(echo "$line" | sed -n 's/^ *chrF[^=]*= \([0-9.]*\).*/\1/p')
  case $name in
    last) what="last checkpoint (raw weights)" ;;
    averaged) what="mean of ${#numbered[@]} checkpoints: $(basename -a "${numbered[@]}" | tr '\n' ' ')" ;;
    ema) what="exponential moving average (ema.ckpt)" ;;
  esac
  echo "| $what | $bleu | $chrf |"
done
