#!/usr/bin/env bash
# Trains attend's speech model (Listen, Attend and Spell) and its PyTorch mirror for the same
# steps on the same data and prints one table of training throughput.
#
#   bash bench/speech_compare.sh [--data DIR] [--steps N] [--threads "1 2"] [--build DIR]
#                                [--out DIR] [--max-train N] [-- model / training options]
#
# For each thread count T of --threads (default 2), one after the other:
# 1. `attend train --task speech` on DIR/train.tsv (its first --max-train utterances; 0 = all)
#    for --steps steps with --threads T, logging every step; it trains the character
#    vocabulary and writes OUT/tT/attend/vocab.model. Validation runs only once, after the last
#    step, on the first 8 utterances of DIR/dev.tsv (not timed).
# 2. bench/torch_reference/speech_las.py: the same model (tests/reference/models/rnn_model.py)
#    with the same options, on the same utterances (features from the NumPy log-mel reference,
#    normalised per utterance; transcripts encoded with that vocab.model), the same batches in
#    the same order, the same optimiser and schedule, torch.set_num_threads(T). Its features are
#    cached in OUT/features.npz, so the next thread count (or a rerun with the same --out) skips
#    the extraction.
# Both run with OMP_NUM_THREADS=T and OPENBLAS_NUM_THREADS=T; OPENBLAS_CORETYPE is left as the
# environment has it and printed.
# 3. One table: source+target tokens/s as attend's progress line counts them (source = feature
#    frames, target = transcript ids + eos) and utterances/s, attend vs PyTorch and the ratio,
#    over steps 2..N (the first step's warm-up left out) and over steps 1..N, per thread count.
#    attend's per-step figures come from its "step k | ... | X src+tgt tok/s" lines (one step
#    each with --log-every 1) and the batch sizes, which are the torch side's (same batches); the
#    checks under the table confirm that both sides saw the same utterances and batches.
#
# The options after `--` go to both sides (speech_las.py takes attend's names: --cell,
# --score, --hidden-dim, --embed-dim, --attention-dim, --frame-stacking, --pyramid-levels,
# --location-filters, --location-width, --sharpening, --dropout, --encoder-layers,
# --decoder-layers, --no-input-feeding, --teacher-forcing, --max-tokens, --lr, --warmup,
# --clip-norm, --label-smoothing, --seed, --max-frames, --max-len, --mel-bins) and replace the
# default model: --arch rnn-attention --cell lstm --score location-aware --hidden-dim 256
# --embed-dim 64 --attention-dim 128 --frame-stacking 3 --pyramid-levels 1 --dropout 0.1.
# Run it on a quiet machine: the load average at the start is printed with the table.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
data="$root/data/speech" steps=100 threads=2 build="$root/build" out="" max_train=0
model=(--arch rnn-attention --cell lstm --score location-aware --hidden-dim 256 --embed-dim 64
       --attention-dim 128 --frame-stacking 3 --pyramid-levels 1 --dropout 0.1)
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --max-train) max_train="$2"; shift 2 ;;
    --) shift; model=("$@"); break ;;
    -h|--help) sed -n '2,33p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "speech_compare.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "speech_compare.sh: $*" >&2; exit 1; }
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
  [ -f "$data/$f" ] || die "$data/$f is missing (build/attend corpus speech --out $data)"
done
data="$(cd "$data" && pwd)"
# A typo in the shared options should fail now, not after attend's run.
"$torch_python" "$here/torch_reference/speech_las.py" --parse-only --vocab - "${model[@]}" ||
  die "speech_las.py does not take these options: ${model[*]}"
[ -n "$out" ] || out="$(mktemp -d /tmp/speech_compare.XXXXXX)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# Validation after the last step is not timed but costs time: the first 8 dev utterances only
# (absolute paths, as the manifest's relative ones are relative to its own directory).
awk -F'\t' -v d="$data" 'NR <= 8 { p = $1; if (substr(p, 1, 1) != "/") p = d "/" p;
                                   print p "\t" $2 }' "$data/dev.tsv" > "$out/dev_head.tsv"
load="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "speech_compare: $data, $steps steps, threads: $threads, max-train $max_train," \
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
  OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" "$attend" train --task speech --data "$data" \
    --dev-tsv "$out/dev_head.tsv" --out "$dir/attend" --max-train "$max_train" \
    --max-steps "$steps" --threads "$t" --log-every 1 --valid-every $((steps + 1)) \
    --valid-sentences 8 --no-progress "${model[@]}" 2>&1 | tee "$dir/attend_train.txt" | show
  echo "== torch: $steps steps on $t threads"
  OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" "$torch_python" \
    "$here/torch_reference/speech_las.py" --data "$data" --vocab "$dir/attend/vocab.model" \
    --max-train "$max_train" --steps "$steps" --threads "$t" --log-every 10 \
    --json "$dir/torch.json" --feature-cache "$out/features.npz" "${model[@]}" 2>&1 |
    tee "$dir/torch.txt"
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
        sys.exit("speech_compare.sh: no '%s' in %s" % (pattern, path))
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
        sys.exit("speech_compare.sh: expected steps 1..%d from both sides, attend logged %d, "
                 "torch %d" % (steps, len(lines), len(per)))
    # attend's seconds per step: its batch's source+target tokens over its tokens/s.
    secs = [(p["frames"] + p["tgt_tokens"]) / x for (_, _, x), p in zip(lines, per)]
    def attend_rates(first):
        sl, ps = secs[first:], per[first:]
        if not sl:
            return None
        s = sum(sl)
        return {"tokens_per_s": sum(p["frames"] + p["tgt_tokens"] for p in ps) / s,
                "utterances_per_s": sum(p["utterances"] for p in ps) / s,
                "target_tokens_per_s": sum(p["tgt_tokens"] for p in ps) / s}
    ours = {"after_first": attend_rates(1), "all": attend_rates(0)}
    for key, label in (("after_first", "steps 2..%d" % steps), ("all", "steps 1..%d" % steps)):
        a, b = ours[key], torch[key]
        for measure, m, digits in (("src+tgt tok/s", "tokens_per_s", 0),
                                   ("utterances/s", "utterances_per_s", 2)):
            if key == "all" and m == "utterances_per_s":
                continue
            if a is None or b is None:
                continue  # --steps 1: no steps after the first
            av = a[m] if a else None
            bv = b[m] if b else None
            ratio = "%.2fx" % (av / bv) if av and bv else "-"
            rows.append((t, coretype, "%s, %s" % (measure, label), fmt(av, digits),
                         fmt(bv, digits), ratio))
    # Checks that both sides trained on the same utterances, model and batches.
    utts = int(find(text, r"^features: (\d+) training utterances", path).group(1))
    params = int(find(text, r"^training: \S+, (\d+) parameters", path).group(1))
    summary_tgt = float(find(text, r"^steps \d+, [0-9.]+ s, ([0-9.]+) target tokens/s",
                             path).group(1))
    same_epochs = all(e == p["epoch"] for (_, e, _), p in zip(lines, per))
    derived = ours["all"]["target_tokens_per_s"]
    checks.append("threads %s: training utterances attend %d / torch %d; parameters %d / %d; "
                  "epoch of every step %s; attend's own target tok/s over steps 1..%d %.0f vs "
                  "%.0f from its step lines and torch's batches (%+.1f%%)" %
                  (t, utts, torch["training_utterances"], params, torch["parameters"],
                   "the same" if same_epochs else "DIFFERENT", steps, summary_tgt, derived,
                   100.0 * (derived / summary_tgt - 1.0) if summary_tgt else 0.0))

print("\nspeech (Listen, Attend and Spell): %s, %d steps, torch %s, load average at start %s" %
      (data, steps, torch_version, load))
print("| threads | OPENBLAS_CORETYPE | measure | attend | PyTorch | attend / PyTorch |")
print("|---:|---|---|---:|---:|---:|")
for r in rows:
    print("| %s | %s | %s | %s | %s | %s |" % r)
print("\nsrc+tgt tokens = feature frames + transcript ids + eos, as attend's progress line counts "
      "them.\nChecks:")
for c in checks:
    print("  " + c)
EOF
echo "(files in $out)"
