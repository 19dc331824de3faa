#!/usr/bin/env bash
# RA-CNN (Fu, Zheng and Mei 2017) against the plain CNN on cluttered Fashion-MNIST, end to end:
# set up, build, make the corpus (96 x 96 canvases, one small item among clutter; built when
# missing), train the one-scale CNN and the two-scale RA-CNN for the same number of steps (the two
# runs side by side, one thread each), evaluate both on the test split and print one table
# (accuracy per scale and combined, the mean IoU of RA-CNN's box with the item's true box), then
# where RA-CNN's crops land on a few test images (pictures in $OUT/crops).
#   STEPS    training steps of each model (default 4000: about 13 minutes, the two side by side)
#   VALID    steps between validations (default 500)
#   OUT      output directory (default runs/racnn)
#   DATA     corpus directory (default data/cluttered)
#   EXTRA    more `attend train` options for both models, e.g. "--lr 2e-3"
#   SKIP_SETUP=1, SKIP_BUILD=1  when the packages and build/attend are already there
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS="${STEPS:-4000}"
VALID="${VALID:-500}"
OUT="${OUT:-runs/racnn}"
DATA="${DATA:-data/cluttered}"
BUILD_DIR="${BUILD_DIR:-build}"
EXTRA="${EXTRA:-}"

if [ "${SKIP_SETUP:-0}" != 1 ]; then bash scripts/setup.sh; fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release > /dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target attend_cli
fi
ATTEND="$BUILD_DIR/attend"

if [ ! -f "$DATA/stats.json" ] || [ ! -f "$DATA/test.items.jsonl" ]; then
  "$ATTEND" corpus cluttered --out "$DATA"
fi
mkdir -p "$OUT"

# Both models: the same data, seed, batches, schedule and steps; only the architecture differs.
train() {  # train ARCH
  local start=$SECONDS
  "$ATTEND" train --task classify --data "$DATA" --arch "$1" --out "$OUT/$1" \
    --max-steps "$STEPS" --valid-every "$VALID" --log-every 100 --threads 1 --no-progress \
    $EXTRA > "$OUT/$1.out" 2>&1
  echo "$((SECONDS - start))" > "$OUT/$1.seconds"
}
echo "== training cnn and racnn for $STEPS steps each, side by side (logs: $OUT/{cnn,racnn}.out)"
train cnn & cnn_pid=$!
train racnn & racnn_pid=$!
status=0
wait "$cnn_pid" || { echo "cnn training failed:"; tail -n 5 "$OUT/cnn.out"; status=1; }
wait "$racnn_pid" || { echo "racnn training failed:"; tail -n 5 "$OUT/racnn.out"; status=1; }
[ "$status" = 0 ] || exit 1
for arch in cnn racnn; do
  echo "$arch: $(tail -n 1 "$OUT/$arch.out") ($(cat "$OUT/$arch.seconds") s wall)"
done

echo "== test split ($(wc -l < "$DATA/test.tsv") images)"
for arch in cnn racnn; do
  "$ATTEND" classify -m "$OUT/$arch/best.ckpt" --tsv "$DATA/test.tsv" \
    --items "$DATA/test.items.jsonl" --json > "$OUT/$arch.test.json"
done
python3 - "$OUT" "$STEPS" <<'EOF'
import json, sys
out, steps = sys.argv[1], sys.argv[2]
rows = []
for arch in ("cnn", "racnn"):
    e = json.load(open(f"{out}/{arch}.test.json"))
    minutes = int(open(f"{out}/{arch}.seconds").read()) / 60
    acc = e["accuracy"] + [None] * (3 - len(e["accuracy"]))
    iou = (e["iou"] + [None])[0]
    iou50 = (e["iou50"] + [None])[0]
    rows.append((arch, *acc, e["combined"], iou, iou50, minutes))
def fmt(v, f):  # f is "%W.Pf": "-" for a missing figure, at the same width
    return f % v if v is not None else "-".rjust(int(f[1:].split(".")[0]))
print(f"{'model':6} {'scale1':>7} {'scale2':>7} {'scale3':>7} {'combined':>9} "
      f"{'IoU(s2)':>8} {'IoU>=.5':>8} {'minutes':>8}   ({steps} steps each; accuracy in %)")
for arch, a1, a2, a3, comb, iou, iou50, minutes in rows:
    print(f"{arch:6} {fmt(a1, '%7.2f')} {fmt(a2, '%7.2f')} {fmt(a3, '%7.2f')} "
          f"{comb:9.2f} {fmt(iou, '%8.3f')} {fmt(iou50, '%8.2f')} {minutes:8.1f}")
EOF

echo "== where RA-CNN looks: the first 6 test images (pictures: $OUT/crops/00000{0..5}.png)"
head -n 6 "$DATA/test.tsv" | cut -f1 | sed "s|^|$DATA/|" > "$OUT/examples.txt"
mapfile -t images < "$OUT/examples.txt"
"$ATTEND" classify -m "$OUT/racnn/best.ckpt" --crops-png "$OUT/crops" "${images[@]}" |
  paste - <(head -n 6 "$DATA/test.items.jsonl" | python3 -c '
import json, sys
for line in sys.stdin:
    item = json.loads(line)["items"][0]
    print("true %s box %s" % (item["label"], " ".join(str(v) for v in item["box"])))')
