#!/usr/bin/env bash
# Training MFU (model FLOPs utilisation) of the two translation models, in one table:
# build/bench/bench_nmt's BM_TrainStep (a training step at the quickstart's sizes: 64 sentences of
# 20 source and 20 target tokens, vocabulary 8000; forward, backward, Adam) for 1 and 2 threads,
# with OpenBLAS's kernels as this machine's environment sets them (OPENBLAS_CORETYPE) and with the
# variable unset (OpenBLAS then picks the kernels for the CPU it finds).
#
#   bash bench/training_mfu.sh [--build DIR] [--min-time SECONDS] [--repetitions N] [--out DIR]
#
# Each (threads, kernels) pair is one process: OMP_NUM_THREADS=N, pinned with taskset (1 thread
# on CPU 1, 2 threads on CPUs 0-1). Per model the row is the repetition of median step time,
# with its own figures: FLOPs per step (bench/train_flops.h; docs/results.md "Issue 20"),
# achieved GFLOP/s, the FMA peak of the threads (one core's, measured in the process just before
# the steps, times the threads) and MFU = achieved / peak. One untimed step precedes the timed
# ones (training's steady state: Adam's moments exist and the tensor buffer cache is warm; the
# JSON's system_allocs/step counts the buffers the timed steps still took from the system). Load averages before and after go
# with the table: on a shared machine every figure here is a lower bound.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build" min_time=2 reps=3 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --min-time) min_time="$2"; shift 2 ;;
    --repetitions) reps="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "training_mfu.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
bench="$build/bench/bench_nmt"
[ -x "$bench" ] || { echo "training_mfu.sh: $bench is not built (cmake --build $build --target bench_nmt)" >&2; exit 1; }
[ -n "$out" ] || out="$(mktemp -d /tmp/training_mfu.XXXXXX)"
mkdir -p "$out"

coretype="${OPENBLAS_CORETYPE:-}"
kernels=(set)
[ -n "$coretype" ] && kernels+=(unset)  # unset differs from "as set" only when it is set
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for k in "${kernels[@]}"; do
  for t in 1 2; do
    cpus=1
    [ "$t" = 2 ] && cpus=0,1
    envs=(env OMP_NUM_THREADS="$t")
    [ "$k" = unset ] && envs=(env -u OPENBLAS_CORETYPE OMP_NUM_THREADS="$t")
    label="as set${coretype:+ ($coretype)}"
    [ "$k" = unset ] && label=unset
    echo "== BM_TrainStep, $t thread(s), OPENBLAS_CORETYPE $label" >&2
    "${envs[@]}" taskset -c "$cpus" "$bench" --benchmark_filter='BM_TrainStep' \
      --benchmark_min_time="$min_time" --benchmark_repetitions="$reps" \
      --benchmark_format=json --benchmark_out="$out/train_${k}_$t.json" \
      --benchmark_out_format=json > /dev/null
  done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" "$coretype" "$load_before" "$load_after" "${kernels[@]}" <<'EOF'
import json, os, statistics, sys
out, coretype, load_before, load_after = sys.argv[1:5]
kernels = sys.argv[5:]
ctx = None
print("| model | threads | OpenBLAS kernels | ms/step | GFLOP/step | GFLOP/s | peak GFLOP/s "
      "(1 core x threads) | MFU |")
print("|---|---:|---|---:|---:|---:|---:|---:|")
for model in ("rnn_attention", "transformer"):
    for k in kernels:
        for t in (1, 2):
            data = json.load(open(os.path.join(out, "train_%s_%d.json" % (k, t))))
            ctx = ctx or data["context"]
            runs = [b for b in data["benchmarks"] if b.get("run_type") == "iteration"
                    and b["name"].startswith("BM_TrainStep/%s/" % model)]
            if not runs:
                continue
            times = sorted(b["real_time"] for b in runs)
            mid = times[(len(times) - 1) // 2]
            b = next(r for r in runs if r["real_time"] == mid)
            assert b["time_unit"] == "ms" and int(b["omp_threads"]) == t
            label = ("%s (as set)" % coretype if coretype else "as set (no OPENBLAS_CORETYPE)"
                     ) if k == "set" else "unset: OpenBLAS's choice"
            spread = "" if len(times) < 2 else " (%.0f-%.0f)" % (times[0], times[-1])
            print("| %s | %d | %s | %.0f%s | %.1f | %.1f | %.0f | **%.1f %%** |" %
                  (model.replace("_", "-"), t, label, b["real_time"], spread,
                   b["FLOP/step"] * 1e-9, b["GFLOP/s"], b["peak_GFLOP/s"], 100 * b["MFU"]))
print()
print("%s; %s CPUs at %.0f MHz; median of %d repetitions (ms/step: median (min-max)); load "
      "average %s before, %s after" % (ctx["date"], ctx["num_cpus"], ctx["mhz_per_cpu"],
                                       len(times), load_before, load_after))
print("(JSON in %s)" % out)
EOF
