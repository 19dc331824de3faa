#!/usr/bin/python3
"""Runs bench_conv and bench/torch_conv.py in alternating rounds and prints each beside PyTorch.

ratio = PyTorch time / attend time (above 1: attend is faster); each figure is the median over
the rounds. Usage:
  /usr/bin/python3 bench/conv_compare.py --bench build/bench/bench_conv [--threads 2] [--markdown]
"""
import argparse
import json
import os
import subprocess
import sys

from compare import median  # noqa: E402  (bench/ is the script directory)


def run_ours(binary, threads, min_time, filt, cpu_time):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [binary, "--benchmark_format=json", f"--benchmark_min_time={min_time}",
           "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true"]
    if filt:
        cmd.append(f"--benchmark_filter={filt}")
    res = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True,
                                    text=True).stdout)
    out = {}
    for b in res["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        # microseconds; cpu_time is the main thread's, so only meaningful with one thread
        out[b["run_name"].replace("/real_time", "")] = b["cpu_time" if cpu_time else "real_time"]
    return out, res.get("context", {})


def run_torch(threads, min_time, filt, cpu_time):
    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [sys.executable, os.path.join(here, "torch_conv.py"), "--threads", str(threads),
           "--min-time", str(min_time)]
    if filt:
        cmd += ["--filter", filt]
    if cpu_time:
        cmd.append("--cpu-time")
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return res["us"], res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bench/bench_conv")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--filter", default="", help="substring of the benchmark names")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--cpu-time", action="store_true",
                    help="compare CPU time instead of wall time; needs --threads 1. Much less "
                         "disturbed by other processes on a loaded machine")
    args = ap.parse_args()
    if args.cpu_time and args.threads != 1:
        ap.error("--cpu-time measures one thread's CPU time: use it with --threads 1")

    # The machine is shared: rounds alternate between attend and PyTorch so that a noisy
    # moment hits both, and each figure is the median over the rounds.
    ours_runs, theirs_runs = {}, {}
    ctx, info = {}, {}
    for _ in range(args.rounds):
        o, ctx = run_ours(args.bench, args.threads, args.min_time, args.filter, args.cpu_time)
        t, info = run_torch(args.threads, args.min_time, args.filter, args.cpu_time)
        for k, v in o.items():
            ours_runs.setdefault(k, []).append(v)
        for k, v in t.items():
            theirs_runs.setdefault(k, []).append(v)
    ours = {k: median(v) for k, v in ours_runs.items()}
    theirs = {k: median(v) for k, v in theirs_runs.items()}

    print(f"threads: {args.threads}; PyTorch {info.get('torch_version', '?')} "
          f"(oneDNN: {info.get('mkldnn', '?')}); host: {ctx.get('num_cpus', '?')} CPUs at "
          f"{ctx.get('mhz_per_cpu', '?')} MHz; load average {ctx.get('load_avg', '?')}; "
          f"median of {args.rounds} alternating rounds; "
          f"{'CPU' if args.cpu_time else 'wall'} time")
    if args.markdown:
        print("| benchmark | attend µs | PyTorch µs | PyTorch / attend |\n|---|---:|---:|---:|")
    for name, t in ours.items():
        tt = theirs.get(name)
        ratio = f"{tt / t:.2f}" if tt else "-"
        if args.markdown:
            print(f"| {name} | {t:.1f} | {tt:.1f} | {ratio} |" if tt else
                  f"| {name} | {t:.1f} | - | - |")
        else:
            print(f"{name:36s} attend {t:10.1f} us   torch "
                  f"{tt if tt else float('nan'):10.1f} us   torch/attend {ratio:>6s}")


if __name__ == "__main__":
    main()
