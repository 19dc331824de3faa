#!/usr/bin/env bash
# Translation speed and quality per decoding precision, beside PyTorch on the same weights.
#
#   bash bench/decoding_precision.sh CKPT [--arch rnn-attention|transformer] [--data DIR]
#                                    [--src en] [--tgt de] [--threads N] [--out DIR] [--build DIR]
#                                    [--beams "1 4"] [--no-torch]
#
# For the checkpoint CKPT (an `attend train` checkpoint of the en-de corpus by default):
#  1. `attend quantize` (the int8 checkpoint) and `attend shortlist` from DIR's training data;
#  2. `attend translate` of DIR/test.SRC with --precision f32, bf16, int8, int8 + --shortlist and
#     the int8 checkpoint, greedy and beam 4: sentences/s and target tokens/s (--timing: subword
#     encoding and search, not loading), peak resident memory (/usr/bin/time), BLEU and chrF
#     (`attend score`), the share of the vocabulary the shortlist scores;
#  3. the PyTorch mirror (bench/torch_reference/ARCH.py --init-from CKPT --steps 0) greedy on the
#     same weights in f32 and with quantize_dynamic (int8 nn.Linear), same threads.
# Prints one table. Threads default to 1; the OpenBLAS kernels are whatever the environment
# selects (run it with OPENBLAS_CORETYPE unset for OpenBLAS's own choice on both sides).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
ckpt="" arch="" data="$root/data/en-de" src=en tgt=de threads=1 out="" build="$root/build"
beams="1 4" torch=1
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --src) src="$2"; shift 2 ;;
    --tgt) tgt="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --beams) beams="$2"; shift 2 ;;
    --no-torch) torch=0; shift ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "decoding_precision.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) ckpt="$1"; shift ;;
  esac
done
[ -n "$ckpt" ] || { echo "decoding_precision.sh: give a checkpoint (see --help)" >&2; exit 2; }
attend="$build/attend"
[ -x "$attend" ] || { echo "decoding_precision.sh: $attend is not built" >&2; exit 1; }
[ -n "$out" ] || out="$(mktemp -d /tmp/decoding_precision.XXXXXX)"
mkdir -p "$out"
if [ -z "$arch" ]; then
  arch=$(/usr/bin/python3 - "$ckpt" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    print(json.loads(json.loads(f.read(n))["__metadata__"]["config"])["model"]["arch"])
PY
)
fi

"$attend" quantize -m "$ckpt" -o "$out/int8.ckpt" 2>&1 | tee "$out/quantize.txt"
/usr/bin/time -f "%e s %M KB" "$attend" shortlist -m "$ckpt" --data "$data" --src "$src" \
  --tgt "$tgt" -o "$out/shortlist.txt" 2>&1 | tee "$out/shortlist_build.txt"

run() {  # name, beam, checkpoint, extra options...
  local name="$1" beam="$2" model="$3"
  shift 3
  /usr/bin/time -f "peak_rss_kb %M" "$attend" translate -m "$model" -i "$data/test.$src" \
    -o "$out/$name.b$beam.hyp" --beam "$beam" --timing --threads "$threads" "$@" \
    > "$out/$name.b$beam.txt" 2>&1
  "$attend" score -r "$data/test.$tgt" -i "$out/$name.b$beam.hyp" --metrics bleu,chrf --json \
    > "$out/$name.b$beam.score.json"
}
for beam in $beams; do
  run f32 "$beam" "$ckpt" --precision f32
  run bf16 "$beam" "$ckpt" --precision bf16
  run int8 "$beam" "$ckpt" --precision int8
  run int8_shortlist "$beam" "$ckpt" --precision int8 --shortlist "$out/shortlist.txt"
  run f32_shortlist "$beam" "$ckpt" --precision f32 --shortlist "$out/shortlist.txt"
  run int8_ckpt "$beam" "$out/int8.ckpt"
done

if [ "$torch" = 1 ]; then
  script="$here/torch_reference/${arch//-/_}.py"
  for q in "" --quantize-dynamic; do
    name=torch_f32
    [ -n "$q" ] && name=torch_int8
    /usr/bin/time -f "peak_rss_kb %M" /usr/bin/python3 "$script" --data "$data" --src "$src" \
      --tgt "$tgt" --vocab "$(dirname "$ckpt")/vocab.model" --steps 0 --init-from "$ckpt" \
      --threads "$threads" --output "$out/$name.b1.hyp" --json "$out/$name.json" $q \
      > "$out/$name.b1.txt" 2>&1
    "$attend" score -r "$data/test.$tgt" -i "$out/$name.b1.hyp" --metrics bleu,chrf --json \
      > "$out/$name.b1.score.json"
  done
fi

/usr/bin/python3 - "$out" "$ckpt" "$arch" "$threads" "$beams" <<'PY'
import glob, json, os, re, sys
out, ckpt, arch, threads, beams = sys.argv[1:]
def grab(path, pattern):
    m = re.findall(pattern, open(path).read())
    return float(m[-1]) if m else float("nan")
rows = [("attend f32", "f32"), ("attend bf16", "bf16"), ("attend int8", "int8"),
        ("attend f32 + shortlist", "f32_shortlist"), ("attend int8 + shortlist", "int8_shortlist"),
        ("attend int8 checkpoint (attend quantize)", "int8_ckpt"),
        ("PyTorch f32", "torch_f32"), ("PyTorch quantize_dynamic int8", "torch_int8")]
print("\n%s, %s, %s thread(s); sentences/s and target tokens/s from --timing (torch: its own "
      "timer, same span)" % (arch, ckpt, threads))
print("| decoder | beam | sentences/s | target tok/s | vs attend f32 | BLEU | chrF | peak RSS MB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for beam in beams.split():
    base = None
    for label, name in rows:
        txt = "%s/%s.b%s.txt" % (out, name, beam)
        if not os.path.exists(txt):
            continue
        sps = grab(txt, r"([0-9.]+) sentences/s")
        tps = grab(txt, r"([0-9.]+) target tokens/s")
        rss = grab(txt, r"peak_rss_kb ([0-9]+)") / 1024
        scores = {m["name"]: m["score"] for m in json.load(open(txt.replace(".txt", ".score.json")))}
        if name == "f32":
            base = sps
        ratio = "%.2fx" % (sps / base) if base else "-"
        print("| %s | %s | %.1f | %.0f | %s | %.2f | %.2f | %.0f |" %
              (label, beam, sps, tps, ratio, scores["BLEU"], scores["chrF2"], rss))
sizes = [(os.path.basename(p), os.path.getsize(p) / 1e6) for p in (ckpt, out + "/int8.ckpt")]
print("\ncheckpoint sizes: " + ", ".join("%s %.1f MB" % s for s in sizes))
print(open(out + "/shortlist_build.txt").read().strip())
PY
echo "(files in $out)"
