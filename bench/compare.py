#!/usr/bin/python3
"""Runs bench_ops and bench/torch_ops.py in one go and prints each op beside PyTorch.

ratio = PyTorch time / attend time (above 1: attend is faster). Matmul rows also show raw
cblas_sgemm on the same shapes (sgemm time / attend time). Usage:
  /usr/bin/python3 bench/compare.py --bench build/bench/bench_ops [--threads 2] [--markdown]
"""
import argparse
import json
import os
import subprocess
import sys


def run_ours(binary, threads, min_time, filt):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [binary, "--benchmark_format=json", f"--benchmark_min_time={min_time}",
           "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true"]
    if filt:
        cmd.append(f"--benchmark_filter={filt}")
    res = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
    out = {}
    for b in res["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"].replace("/real_time", "")
        out[name] = b["real_time"]  # microseconds (the benchmarks use kMicrosecond)
    return out, res.get("context", {})


def run_torch(threads, min_time, filt):
    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [sys.executable, os.path.join(here, "torch_ops.py"), "--threads", str(threads),
           "--min-time", str(min_time)]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return res["us"], res["torch_version"]


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bench/bench_ops")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.1)
    ap.add_argument("--filter", default="")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()

    # The machine is shared: rounds alternate between attend and PyTorch so that a noisy
    # moment hits both, and each figure is the median over the rounds.
    ours_runs, theirs_runs = {}, {}
    for _ in range(args.rounds):
        o, ctx = run_ours(args.bench, args.threads, args.min_time, args.filter)
        t, torch_version = run_torch(args.threads, args.min_time, args.filter)
        for k, v in o.items():
            ours_runs.setdefault(k, []).append(v)
        for k, v in t.items():
            theirs_runs.setdefault(k, []).append(v)
    ours = {k: median(v) for k, v in ours_runs.items()}
    theirs = {k: median(v) for k, v in theirs_runs.items()}
    torch_out = {"torch_version": torch_version}

    rows = []
    for name, t in ours.items():
        if name.startswith(("sgemm", "bsgemm")):
            continue
        tt = theirs.get(name)
        kind, shape = name.split("/", 1)
        blas_name = {"matmul": "sgemm", "matmul_bt": "sgemm_bt", "bmm_bt": "bsgemm_bt"}.get(kind)
        blas = ours.get(f"{blas_name}/{shape}") if blas_name else None
        rows.append((name, t, tt, blas))

    header = ("| op | attend µs | PyTorch µs | PyTorch / attend | sgemm / attend |\n"
              "|---|---:|---:|---:|---:|")
    print(f"threads: {args.threads}; PyTorch {torch_out['torch_version']}; "
          f"host: {ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz; "
          f"load average {ctx.get('load_avg', '?')}; median of {args.rounds} alternating rounds")
    if args.markdown:
        print(header)
    for name, t, tt, blas in rows:
        ratio = f"{tt / t:.2f}" if tt else "-"
        bl = f"{blas / t:.2f}" if blas else ""
        if args.markdown:
            print(f"| {name} | {t:.1f} | {tt:.1f} | {ratio} | {bl} |" if tt else
                  f"| {name} | {t:.1f} | - | - | {bl} |")
        else:
            print(f"{name:34s} attend {t:10.1f} us   torch {tt if tt else float('nan'):10.1f} us   "
                  f"torch/attend {ratio:>6s}   {('sgemm/attend ' + bl) if bl else ''}")


if __name__ == "__main__":
    main()
