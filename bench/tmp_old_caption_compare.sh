#!/usr/bin/env bash
# Trains attend's image captioner (Show, Attend and Tell) and its PyTorch mirror for the same
# steps on the same data and prints one table of training throughput.
#
#   bash bench/caption_compare.sh [--data DIR] [--steps N] [--threads "1 2"] [--build DIR]
#                                 [--out DIR] [--max-train N] [-- model / training options]
#
# For each thread count T of --threads (default "1 2"), one after the other:
# 1. `attend train --task caption --arch show-attend-tell` on DIR/train.tsv (the scenes corpus
#    of `attend corpus scenes`: image<TAB>caption lines, several per image; its first
#    --max-train images, default 2000, 0 = all) for --steps steps with --threads T, logging every
#    step; it trains the word vocabulary and writes OUT/tT/attend/vocab.model. Validation runs
#    only once, after the last step, on the first 8 images of DIR/dev.tsv (not timed).
# 2. bench/torch_reference/caption_sat.py: the same model (tests/reference/models/
#    captioner_model.py, checked against attend's by tests/reference/captioner_reference.py) with
#    the same options, on the same images (pixels / 255) and captions (encoded with that
#    vocab.model), the same batches in the same order (nmt::MakeBatches: an image counts as
#    C * H source tokens, so a batch holds max_tokens / (C * H) captions), the same optimiser and
#    schedule, the same loss (label-smoothed cross-entropy plus the doubly stochastic penalty),
#    torch.set_num_threads(T).
# Both run with OMP_NUM_THREADS=T and OPENBLAS_NUM_THREADS=T; OPENBLAS_CORETYPE is left as the
# environment has it and printed.
# 3. One table: images/s and target tokens/s (caption ids + eos) as both train, attend vs
#    PyTorch and the ratio, over steps 2..N (the first step's warm-up left out) and over steps
#    1..N, per thread count. attend's per-step times come from its "step k | ... | X src+tgt
#    tok/s" lines (one step each with --log-every 1; source tokens = C * H per image) and the
#    batch sizes, which are the torch side's (same batches); the checks under the table confirm
#    that both sides saw the same images, captions, parameters and batches.
#
# The options after `--` go to both sides (caption_sat.py takes attend's names: --embed-dim,
# --hidden-dim, --attention-dim, --cnn-channels, --image-size, --image-channels,
# --image-attention soft|none, --attention-penalty, --dropout, --max-tokens, --max-len, --lr,
# --warmup, --clip-norm, --label-smoothing, --seed) and replace the default model, attend's
# defaults: --image-attention soft (embed, hidden and attention 256, cnn-channels 16, 96 x 96
# gray images, dropout 0.1). Run it on a quiet machine: the load average at the start is printed
# with the table.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
data="$root/data/scenes" steps=100 threads="1 2" build="$root/build" out="" max_train=2000
model=(--image-attention soft)
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --max-train) max_train="$2"; shift 2 ;;
    --) shift; model=("$@"); break ;;
    -h|--help) sed -n '2,36p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "caption_compare.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "caption_compare.sh: $*" >&2; exit 1; }
[[ "$steps" =~ ^[1-9][0-9]*$ ]] || die "--steps must be a positive integer, got '$steps'"
[[ "$max_train" =~ ^[0-9]+$ ]] || die "--max-train must be a non-negative integer"
for t in $threads; do
  [[ "$t" =~ ^[1-9][0-9]*$ ]] || die "--threads takes positive integers, got '$t'"
done
[ -n "${threads// /}" ] || die "--threads is empty"
attend="$build/attend"
[ -x "$attend" ] || die "$attend is not built (cmake --build $build --target attend_cli)"
torch_python=/usr/bin/python3  # Debian's python3-torch, python3-sentencepiece, python3-numpy
"$torch_python" -c "import torch, sentencepiece, numpy" 2>/dev/null ||
  die "$torch_python lacks torch, sentencepiece or numpy (scripts/setup.sh)"
for f in train.tsv dev.tsv; do
  [ -f "$data/$f" ] || die "$data/$f is missing (build/attend corpus scenes --out $data)"
done
data="$(cd "$data" && pwd)"
# A typo in the shared options should fail now, not after attend's run.
"$torch_python" "$here/torch_reference/caption_sat.py" --parse-only --vocab - "${model[@]}" ||
  die "caption_sat.py does not take these options: ${model[*]}"
[ -n "$out" ] || out="$(mktemp -d /tmp/caption_compare.XXXXXX)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# Validation after the last step is not timed but costs time: the first 8 dev images only (all
# their lines; absolute paths, as the file's relative ones are relative to its own directory).
awk -F'\t' -v d="$data" '{ if (!($1 in seen)) { seen[$1] = 1; n++ } if (n > 8) exit
                           p = $1; if (substr(p, 1, 1) != "/") p = d "/" p; print p "\t" $2 }' \
  "$data/dev.tsv" > "$out/dev_head.tsv"
load="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "caption_compare: $data, $steps steps, threads: $threads, max-train $max_train images," \
  "OPENBLAS_CORETYPE ${OPENBLAS_CORETYPE:-unset}, load average $load"
echo "model and training options (both sides): ${model[*]}"

# Shows progress lines every 10th step (and the last); everything goes to the log file.
show() {
  awk -v n="$steps" '{ if ($1 == "step" && $3 == "|") { if ($2 % 10 == 0 || $2 == n) print }
                       else print; fflush() }'
}

for t in $threads; do
  dir="$out/t$t"
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "== attend: $steps steps on $t threads"
  OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" "$attend" train --task caption \
    --arch show-attend-tell --data "$data" --dev-tsv "$out/dev_head.tsv" --out "$dir/attend" \
    --max-train "$max_train" --max-steps "$steps" --threads "$t" --log-every 1 \
    --valid-every $((steps + 1)) --valid-sentences 8 --no-progress "${model[@]}" 2>&1 |
    tee "$dir/attend_train.txt" | show
  echo "== torch: $steps steps on $t threads"
  OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" "$torch_python" \
    "$here/torch_reference/caption_sat.py" --data "$data" --vocab "$dir/attend/vocab.model" \
    --max-train "$max_train" --steps "$steps" --threads "$t" --log-every 10 \
    --json "$dir/torch.json" "${model[@]}" 2>&1 | tee "$dir/torch.txt"
done

# shellcheck disable=SC2086  # $threads: one argument per (validated) thread count
python3 - "$out" "$steps" "$data" "$load" "${OPENBLAS_CORETYPE:-unset}" $threads <<'EOF'
import json, re, sys
out, steps, data, load, coretype = sys.argv[1:6]
steps, threads = int(steps), sys.argv[6:]
step_re = re.compile(r"^step (\d+) \| epoch (\d+) \| loss \S+ \| ([0-9.]+) src\+tgt tok/s", re.M)

def find(text, pattern, path):
    m = re.search(pattern, text, re.M)
    if not m:
        sys.exit("caption_compare.sh: no '%s' in %s" % (pattern, path))
    return m

def fmt(x, digits):
    return "%.*f" % (digits, x) if x is not None else "-"

rows, checks, torch_version = [], [], "?"
for t in threads:
    path = "%s/t%s/attend_train.txt" % (out, t)
    text = open(path).read()
    torch = json.load(open("%s/t%s/torch.json" % (out, t)))
    torch_version = torch["torch_version"]
    per = torch["per_step"]
    lines = [(int(s), int(e), float(x)) for s, e, x in step_re.findall(text)]
    if [s for s, _, _ in lines] != list(range(1, steps + 1)) or len(per) != steps:
        sys.exit("caption_compare.sh: expected steps 1..%d from both sides, attend logged %d, "
                 "torch %d" % (steps, len(lines), len(per)))
    # attend's seconds per step: its batch's source+target tokens over its tokens/s.
    secs = [(p["src_tokens"] + p["tgt_tokens"]) / x for (_, _, x), p in zip(lines, per)]
    def attend_rates(first):
        sl, ps = secs[first:], per[first:]
        if not sl:
            return None
        s = sum(sl)
        return {"images_per_s": sum(p["images"] for p in ps) / s,
                "target_tokens_per_s": sum(p["tgt_tokens"] for p in ps) / s}
    ours = {"after_first": attend_rates(1), "all": attend_rates(0)}
    for key, label in (("after_first", "steps 2..%d" % steps), ("all", "steps 1..%d" % steps)):
        a, b = ours[key], torch[key]
        if a is None or b is None:
            continue  # --steps 1: no steps after the first
        for measure, m, digits in (("images/s", "images_per_s", 2),
                                   ("target tok/s", "target_tokens_per_s", 0)):
            ratio = "%.2fx" % (a[m] / b[m]) if a[m] and b[m] else "-"
            rows.append((t, coretype, "%s, %s" % (measure, label), fmt(a[m], digits),
                         fmt(b[m], digits), ratio))
    # Checks that both sides trained on the same images, captions, model and batches.
    m = find(text, r"^images: (\d+) training images with (\d+) captions", path)
    params = int(find(text, r"^training: \S+, (\d+) parameters", path).group(1))
    summary_tgt = float(find(text, r"^steps \d+, [0-9.]+ s, ([0-9.]+) target tokens/s",
                             path).group(1))
    same_epochs = all(e == p["epoch"] for (_, e, _), p in zip(lines, per))
    derived = ours["all"]["target_tokens_per_s"]
    checks.append("threads %s: training images attend %s / torch %d, captions %s / %d; "
                  "parameters %d / %d; epoch of every step %s; attend's own target tok/s over "
                  "steps 1..%d %.0f vs %.0f from its step lines and torch's batches (%+.1f%%)" %
                  (t, m.group(1), torch["training_images"], m.group(2),
                   torch["training_captions"], params, torch["parameters"],
                   "the same" if same_epochs else "DIFFERENT", steps, summary_tgt, derived,
                   100.0 * (derived / summary_tgt - 1.0) if summary_tgt else 0.0))

print("\ncaptioning (Show, Attend and Tell): %s, %d steps, torch %s, load average at start %s" %
      (data, steps, torch_version, load))
print("| threads | OPENBLAS_CORETYPE | measure | attend | PyTorch | attend / PyTorch |")
print("|---:|---|---|---:|---:|---:|")
for r in rows:
    print("| %s | %s | %s | %s | %s | %s |" % r)
print("\ntarget tokens = caption ids + eos; a step's images = its captions (one image per "
      "caption, several captions per image).\nChecks:")
for c in checks:
    print("  " + c)
EOF
echo "(files in $out)"
