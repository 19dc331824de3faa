#!/usr/bin/env bash
# Trains one of attend's sequence-to-sequence models and its PyTorch mirror (bench/torch_reference/)
# for the same steps on the same data and prints one table of training throughput. The tasks:
#   speech   Listen, Attend and Spell, bench/torch_reference/speech_las.py
#   caption  Show, Attend and Tell, bench/torch_reference/caption_sat.py
#
#   bash bench/seq2seq_compare.sh --task speech|caption [the task's options; --help lists them]
#
# bench/speech_compare.sh and bench/caption_compare.sh are this script with --task set (--task
# must come first). Everything that differs between the tasks is set in the `case "$task"` block
# below; --help prints the task's section of this comment (from its "#@ TASK" line to the next
# "#@" line).
#@ speech
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
#@ caption
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
#@ end
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# Prints the section of the comment above for task $1 ("" = the part before the tasks).
usage() {
  awk -v want="$1" 'NR == 1 { next } /^[^#]/ { exit } /^#@ / { cur = $2; next } cur == want' \
    "${BASH_SOURCE[0]}"
}

task=""
if [ "${1:-}" = --task ] && [ $# -ge 2 ]; then task="$2"; shift 2; fi
# Everything task-specific. The report (the Python at the end) gets the per-step source count
# field of the torch side's JSON (src_field), the unit of the per-step counts (unit: the table's
# "<unit>/s" and the torch JSON's "<unit>_per_s"), the measures of the table over steps 2..N and
# over steps 1..N (among tokens_per_s = src+tgt tok/s, <unit>_per_s, target_tokens_per_s), the
# line of attend's log with the training set's sizes (counts_re; torch's "training_<name>" for
# each name of counts), and the table's title and footnote.
case "$task" in
  speech)
    data="$root/data/speech" threads=2 max_train=0 corpus=speech
    model=(--arch rnn-attention --cell lstm --score location-aware --hidden-dim 256 --embed-dim 64
           --attention-dim 128 --frame-stacking 3 --pyramid-levels 1 --dropout 0.1)
    attend_args=(--task speech)
    torch_script=speech_las.py feature_cache=features.npz  # the torch side's cache, in OUT
    dev_head='NR > 8 { exit }'  # the first 8 dev utterances
    src_field=frames unit=utterances
    measures="tokens_per_s utterances_per_s" measures_all="tokens_per_s"
    counts_re='^features: (\d+) training utterances' counts="utterances"
    title="speech (Listen, Attend and Spell)"
    note="src+tgt tokens = feature frames + transcript ids + eos, as attend's progress line counts"
    note+=" them." ;;
  caption)
    data="$root/data/scenes" threads="1 2" max_train=2000 corpus=scenes
    model=(--image-attention soft)
    attend_args=(--task caption --arch show-attend-tell)
    torch_script=caption_sat.py feature_cache=""
    # shellcheck disable=SC2016  # awk's $1, not the shell's
    dev_head='!($1 in seen) { seen[$1] = 1; if (++n > 8) exit }'  # all lines of 8 dev images
    src_field=src_tokens unit=images
    measures="images_per_s target_tokens_per_s" measures_all="$measures"
    counts_re='^images: (\d+) training images with (\d+) captions' counts="images captions"
    title="captioning (Show, Attend and Tell)"
    note="target tokens = caption ids + eos; a step's images = its captions (one image per"
    note+=" caption, several captions per image)." ;;
  *)
    if [[ "${1:-}" =~ ^(-h|--help)$ ]]; then usage ""; exit 0; fi
    echo "seq2seq_compare.sh: the first option must be --task speech|caption (see --help)" >&2
    exit 2 ;;
esac
name="${task}_compare.sh"  # the wrapper's name, for messages

steps=100 build="$root/build" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --max-train) max_train="$2"; shift 2 ;;
    --) shift; model=("$@"); break ;;
    -h|--help) usage "$task"; exit 0 ;;
    *) echo "$name: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "$name: $*" >&2; exit 1; }
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
  [ -f "$data/$f" ] || die "$data/$f is missing (build/attend corpus $corpus --out $data)"
done
data="$(cd "$data" && pwd)"
# A typo in the shared options should fail now, not after attend's run.
"$torch_python" "$here/torch_reference/$torch_script" --parse-only --vocab - "${model[@]}" ||
  die "$torch_script does not take these options: ${model[*]}"
[ -n "$out" ] || out="$(mktemp -d "/tmp/${task}_compare.XXXXXX")"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# Validation after the last step is not timed but costs time: the head of the dev set only
# (absolute paths, as the file's relative ones are relative to its own directory).
awk -F'\t' -v d="$data" "$dev_head"'
     { p = $1; if (substr(p, 1, 1) != "/") p = d "/" p; print p "\t" $2 }' \
  "$data/dev.tsv" > "$out/dev_head.tsv"
load="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "${task}_compare: $data, $steps steps, threads: $threads, max-train $max_train $unit," \
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
  OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" "$attend" train "${attend_args[@]}" \
    --data "$data" --dev-tsv "$out/dev_head.tsv" --out "$dir/attend" --max-train "$max_train" \
    --max-steps "$steps" --threads "$t" --log-every 1 --valid-every $((steps + 1)) \
    --valid-sentences 8 --no-progress "${model[@]}" 2>&1 | tee "$dir/attend_train.txt" | show
  echo "== torch: $steps steps on $t threads"
  OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" "$torch_python" \
    "$here/torch_reference/$torch_script" --data "$data" --vocab "$dir/attend/vocab.model" \
    --max-train "$max_train" --steps "$steps" --threads "$t" --log-every 10 \
    --json "$dir/torch.json" ${feature_cache:+--feature-cache "$out/$feature_cache"} \
    "${model[@]}" 2>&1 | tee "$dir/torch.txt"
done

# shellcheck disable=SC2086  # $threads: one argument per (validated) thread count
name="$name" src_field="$src_field" unit="$unit" measures="$measures" \
  measures_all="$measures_all" counts_re="$counts_re" counts="$counts" title="$title" \
  note="$note" python3 - "$out" "$steps" "$data" "$load" "${OPENBLAS_CORETYPE:-unset}" \
  $threads <<'EOF'
import json, os, re, sys
out, steps, data, load, coretype = sys.argv[1:6]
steps, threads = int(steps), sys.argv[6:]
env = os.environ
name, src, unit = env["name"], env["src_field"], env["unit"]
step_re = re.compile(r"^step (\d+) \| epoch (\d+) \| loss \S+ \| ([0-9.]+) src\+tgt tok/s", re.M)
# The table's measures: label and decimals.
labels = {"tokens_per_s": ("src+tgt tok/s", 0), unit + "_per_s": (unit + "/s", 2),
          "target_tokens_per_s": ("target tok/s", 0)}

def find(text, pattern, path):
    m = re.search(pattern, text, re.M)
    if not m:
        sys.exit("%s: no '%s' in %s" % (name, pattern, path))
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
        sys.exit("%s: expected steps 1..%d from both sides, attend logged %d, torch %d" %
                 (name, steps, len(lines), len(per)))
    # attend's seconds per step: its batch's source+target tokens over its tokens/s.
    secs = [(p[src] + p["tgt_tokens"]) / x for (_, _, x), p in zip(lines, per)]
    def attend_rates(first):
        sl, ps = secs[first:], per[first:]
        if not sl:
            return None
        s = sum(sl)
        return {"tokens_per_s": sum(p[src] + p["tgt_tokens"] for p in ps) / s,
                unit + "_per_s": sum(p[unit] for p in ps) / s,
                "target_tokens_per_s": sum(p["tgt_tokens"] for p in ps) / s}
    ours = {"after_first": attend_rates(1), "all": attend_rates(0)}
    for key, label, ms in (("after_first", "steps 2..%d" % steps, env["measures"]),
                           ("all", "steps 1..%d" % steps, env["measures_all"])):
        a, b = ours[key], torch[key]
        if a is None or b is None:
            continue  # --steps 1: no steps after the first
        for m in ms.split():
            measure, digits = labels[m]
            ratio = "%.2fx" % (a[m] / b[m]) if a[m] and b[m] else "-"
            rows.append((t, coretype, "%s, %s" % (measure, label), fmt(a[m], digits),
                         fmt(b[m], digits), ratio))
    # Checks that both sides trained on the same examples, model and batches.
    m = find(text, env["counts_re"], path)
    sizes = ["%s %s%s / %s%d" % (c, "attend " if i == 0 else "", m.group(i + 1),
                                 "torch " if i == 0 else "", torch["training_" + c])
             for i, c in enumerate(env["counts"].split())]
    params = int(find(text, r"^training: \S+, (\d+) parameters", path).group(1))
    summary_tgt = float(find(text, r"^steps \d+, [0-9.]+ s, ([0-9.]+) target tokens/s",
                             path).group(1))
    same_epochs = all(e == p["epoch"] for (_, e, _), p in zip(lines, per))
    derived = ours["all"]["target_tokens_per_s"]
    checks.append("threads %s: training %s; parameters %d / %d; epoch of every step %s; "
                  "attend's own target tok/s over steps 1..%d %.0f vs %.0f from its step lines "
                  "and torch's batches (%+.1f%%)" %
                  (t, ", ".join(sizes), params, torch["parameters"],
                   "the same" if same_epochs else "DIFFERENT", steps, summary_tgt, derived,
                   100.0 * (derived / summary_tgt - 1.0) if summary_tgt else 0.0))

print("\n%s: %s, %d steps, torch %s, load average at start %s" %
      (env["title"], data, steps, torch_version, load))
print("| threads | OPENBLAS_CORETYPE | measure | attend | PyTorch | attend / PyTorch |")
print("|---:|---|---|---:|---:|---:|")
for r in rows:
    print("| %s | %s | %s | %s | %s | %s |" % r)
print("\n%s\nChecks:" % env["note"])
for c in checks:
    print("  " + c)
EOF
echo "(files in $out)"
