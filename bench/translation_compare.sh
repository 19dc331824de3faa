#!/usr/bin/env bash
# Trains an attend model and its PyTorch mirror for the same budget and prints one table.
#
#   bash bench/translation_compare.sh [--arch rnn-attention|transformer] [--data DIR] [--steps N]
#                                     [--threads N] [--build DIR] [--out DIR] [--src en]
#                                     [--tgt de] [--max-train N] [--vocab-size N] [--reuse]
#                                     [-- extra `attend train` options]
#
# 1. `attend train --arch ARCH` (default rnn-attention: GRU, additive attention, input feeding;
#    transformer: d_model 256, 4 heads, ff 1024, 3 layers, pre-norm, shared embeddings) for
#    --steps steps; it trains the SentencePiece vocabulary, writes OUT/attend/vocab.model and
#    last.ckpt.
# 2. bench/torch_reference/rnn_attention.py or transformer.py: the same model in PyTorch, on the
#    same corpus encoded with that vocab.model, the same batches in the same order, the same
#    optimiser and schedule.
# 3. Both greedy-translate DIR/test.SRC (batches of 32); `attend score` gives BLEU and chrF.
# 4. The torch script again, on attend's trained weights (--init-from, no training): both sides
#    then run the same model, so their outputs should agree line for line, and translation
#    speed compares like with like.
# --reuse keeps OUT's trained models and torch's training figures and redoes the translations.
# Training speed is source+target tokens/s over the training steps alone (attend: its progress
# line with --log-every = --steps and no validation before the end; torch: the same count).
# Training MFU (model FLOPs utilisation): the FLOPs of the run's training steps
# (build/bench/bench_flops on attend's checkpoint: its model and the same batches in the same
# order; the formula of bench/train_flops.h, docs/results.md "Issue 20"), per source+target token,
# times each side's tokens/s, over the FMA peak of one core times --threads, the peak measured
# (bench_flops --peak) just before each side trains. Both sides get the same FLOP count (the
# torch mirror trains the same model on the same batches). Without bench_flops the row is "-".
# Translation speed is sentences/s of `attend translate --timing` and of the torch script (both
# include subword encoding, exclude model loading). Without --data the default corpus
# data/en-de (`attend corpus debian`) is used, or, when it does not exist, a synthetic one
# (bench/torch_reference/toy_corpus.py). Extra options after `--` go to `attend train` only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
arch=rnn-attention data="" steps=300 threads=2 build="$root/build" out="" src=en tgt=de
max_train=0 vocab_size=8000 reuse=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --src) src="$2"; shift 2 ;;
    --tgt) tgt="$2"; shift 2 ;;
    --max-train) max_train="$2"; shift 2 ;;
    --vocab-size) vocab_size="$2"; shift 2 ;;
    --reuse) reuse=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "translation_compare.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

case "$arch" in
  rnn-attention) torch_script=rnn_attention.py ;;
  transformer) torch_script=transformer.py ;;
  *) echo "translation_compare.sh: --arch '$arch' has no PyTorch mirror (rnn-attention or" \
       "transformer)" >&2; exit 2 ;;
esac

attend="$build/attend"
if [ ! -x "$attend" ]; then
  echo "translation_compare.sh: $attend is not built (cmake --build $build --target attend_cli)" >&2
  exit 1
fi
torch_python=/usr/bin/python3  # Debian's python3-torch and python3-sentencepiece
if ! "$torch_python" -c "import torch, sentencepiece" 2>/dev/null; then
  echo "translation_compare.sh: $torch_python lacks torch or sentencepiece (scripts/setup.sh)" >&2
  exit 1
fi
[ -n "$out" ] || out="$(mktemp -d /tmp/translation_compare.XXXXXX)"
mkdir -p "$out"

if [ -z "$data" ]; then
  if [ -f "$root/data/en-de/train.$src" ]; then
    data="$root/data/en-de"
  else
    data="$out/toy"
    echo "no --data and no data/en-de: using a synthetic corpus in $data"
    python3 "$here/torch_reference/toy_corpus.py" --out "$data"
  fi
fi
for f in "train.$src" "train.$tgt" "dev.$src" "dev.$tgt" "test.$src" "test.$tgt"; do
  [ -f "$data/$f" ] || { echo "translation_compare.sh: $data/$f is missing" >&2; exit 1; }
done

flops_bin="$build/bench/bench_flops"
[ -x "$flops_bin" ] || echo "translation_compare.sh: $flops_bin is not built: no MFU" \
  "(cmake --build $build --target bench_flops)"
# The FMA peak (GFLOP/s) just before a side trains, into $out/peak_SIDE.json.
measure_peak() {
  if [ -x "$flops_bin" ]; then "$flops_bin" --peak --threads "$threads" > "$out/peak_$1.json"; fi
}

if [ "$reuse" = 0 ]; then
  measure_peak attend
  echo "== attend: $arch, training $steps steps on $threads threads ($data)"
  rm -rf "$out/attend"
  "$attend" train --arch "$arch" --data "$data" --src "$src" --tgt "$tgt" --out "$out/attend" \
    --max-steps "$steps" --threads "$threads" --max-train "$max_train" \
    --vocab-size "$vocab_size" --log-every "$steps" --valid-every $((steps + 1)) \
    --valid-sentences 100 --no-progress "${extra[@]}" 2>&1 | tee "$out/attend_train.txt"
fi
"$attend" translate -m "$out/attend/last.ckpt" -i "$data/test.$src" -o "$out/attend.hyp" \
  --greedy --timing --threads "$threads" 2>&1 | tee "$out/attend_translate.txt"

if [ "$reuse" = 0 ]; then
  measure_peak torch
  echo "== torch: $arch, training $steps steps on $threads threads"
  "$torch_python" "$here/torch_reference/$torch_script" --data "$data" --src "$src" \
    --tgt "$tgt" --vocab "$out/attend/vocab.model" --max-train "$max_train" --steps "$steps" \
    --threads "$threads" --log-every "$steps" --output "$out/torch.hyp" \
    --json "$out/torch.json" 2>&1 | tee "$out/torch.txt"
fi

echo "== torch: $arch on attend's trained weights, translating only"
"$torch_python" "$here/torch_reference/$torch_script" --data "$data" --src "$src" \
  --tgt "$tgt" --vocab "$out/attend/vocab.model" --max-train "$max_train" --steps 0 \
  --init-from "$out/attend/last.ckpt" --threads "$threads" --output "$out/torch_same.hyp" \
  --json "$out/torch_same.json" 2>&1 | tee "$out/torch_same.txt"

# The FLOPs of the training steps both sides ran (the batches of attend's run, from its checkpoint).
rm -f "$out/flops.json"
# A model the formula does not cover (bench_flops names the option) leaves the MFU row empty.
if [ -x "$flops_bin" ] && ! "$flops_bin" --checkpoint "$out/attend/last.ckpt" \
    --vocab "$out/attend/vocab.model" --data "$data" --src "$src" --tgt "$tgt" \
    --max-train "$max_train" --steps "$steps" > "$out/flops.json"; then
  rm -f "$out/flops.json"
fi

for side in attend torch; do
  "$attend" score -r "$data/test.$tgt" -i "$out/$side.hyp" --metrics bleu,chrf --json \
    > "$out/${side}_score.json"
done

python3 - "$out" "$steps" "$threads" "$data" "$arch" <<'EOF'
import json, os, re, sys
out, steps, threads, data, arch = sys.argv[1:]
def find(path, pattern):
    text = open(path).read()
    m = re.findall(pattern, text)
    if not m:
        sys.exit("translation_compare.sh: no '%s' in %s" % (pattern, path))
    return float(m[-1])
ours_tok = find(out + "/attend_train.txt", r"step %s \|.*?\| ([0-9.]+) (?:src\+tgt )?tok/s" % steps)
ours_sps = find(out + "/attend_translate.txt", r"([0-9.]+) sentences/s")
torch = json.load(open(out + "/torch.json"))
same = json.load(open(out + "/torch_same.json"))
ours_lines = open(out + "/attend.hyp", encoding="utf-8").read().splitlines()
same_lines = open(out + "/torch_same.hyp", encoding="utf-8").read().splitlines()
agree = sum(a == b for a, b in zip(ours_lines, same_lines))
def scores(side):
    m = {m["name"]: m for m in json.load(open("%s/%s_score.json" % (out, side)))}
    hyp_len = float(re.search(r"hyp_len = ([0-9]+)", m["BLEU"]["verbose_score"]).group(1))
    return m["BLEU"]["score"], m["chrF2"]["score"], hyp_len
ob, oc, ol = scores("attend")
tb, tc, tl = scores("torch")
def load(name):
    path = os.path.join(out, name)
    return json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else None
flops, peaks = load("flops.json"), {side: load("peak_%s.json" % side) for side in ("attend", "torch")}
def mfu(side, tokens_per_s):
    # Achieved FLOP/s (FLOPs per token x tokens/s) over one core's peak x the threads, in %.
    if not flops or not peaks[side] or not tokens_per_s:
        return float("nan")
    peak = peaks[side]["peak_gflops_per_core"] * 1e9 * int(threads)
    return 100.0 * flops["flops_per_token"] * tokens_per_s / peak
rows = [("training tokens/s (src+tgt)", ours_tok, torch["tokens_per_s"], "%.0f"),
        ("training MFU, % of the FMA peak (same FLOPs both sides)", mfu("attend", ours_tok),
         mfu("torch", torch["tokens_per_s"]), "%.1f"),
        ("translation sentences/s (greedy, each its own model)", ours_sps,
         torch["sentences_per_s"], "%.2f"),
        ("translation sentences/s (greedy, attend's weights on both)", ours_sps,
         same["sentences_per_s"], "%.2f"),
        ("test BLEU", ob, tb, "%.2f"), ("test chrF", oc, tc, "%.2f"),
        # Decoding time grows with the output: sentences/s compare fairly at similar lengths.
        ("test output length (13a tokens)", ol, tl, "%.0f")]
print("\n%s: %s, %s steps, %s threads, torch %s" %
      (arch, data, steps, threads, torch["torch_version"]))
print("| measure | attend | PyTorch | attend / PyTorch |")
print("|---|---:|---:|---:|")
def cell(fmt, v):
    return "-" if v != v else fmt % v  # NaN: not measured
for name, a, t, fmt in rows:
    ratio = "%.2fx" % (a / t) if t and t == t and a == a else "-"
    print("| %s | %s | %s | %s |" % (name, cell(fmt, a), cell(fmt, t), ratio))
if flops:
    print("\nFLOPs: %.3g per step (mean of %d steps), %.4g per source+target token (%s);"
          % (flops["flops_per_step"], flops["steps"], flops["flops_per_token"],
             ", ".join("%s %.0f %%" % (k, 100.0 * (v["forward"] + v["backward"]) / flops["flops"])
                       for k, v in flops["parts"].items() if isinstance(v, dict))))
    print("FMA peak per core before training: %s." % ", ".join(
        "%s %.0f GFLOP/s" % (side, p["peak_gflops_per_core"]) for side, p in peaks.items() if p))
    torch_tokens = torch["tokens_per_s"] * torch["train_seconds"]
    if abs(torch_tokens - flops["tokens"]) > 0.005 * flops["tokens"]:
        print("warning: torch trained on %.0f tokens, the FLOP count's batches hold %.0f"
              % (torch_tokens, flops["tokens"]))
print("\nOn attend's weights the two translations agree on %d of %d lines." %
      (agree, max(len(ours_lines), len(same_lines))))
EOF
echo "(files in $out)"
