#!/usr/bin/python3
"""Runs bench_rnn and bench/torch_rnn.py in alternating rounds; prints each step beside PyTorch.

ratio = PyTorch time / attend time (above 1: attend is faster). Each figure is the median over
the rounds; rounds alternate between the two so that a noisy moment on a shared machine hits
both. PyTorch runs twice per round: as configured by default (torch.set_num_threads(threads),
its OpenBLAS free to start its own threads too) and with OPENBLAS_NUM_THREADS=1, which on
Debian's torch avoids the two thread pools fighting over the cores; both are printed. Usage:
  /usr/bin/python3 bench/rnn_compare.py --bench build/bench/bench_rnn [--threads 2] [--markdown]
"""
import argparse
import json
import os
import subprocess
import sys

from compare import median  # noqa: E402  (bench/ is the script directory)


def run_ours(binary, threads, min_time, filt):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [binary, "--benchmark_format=json", f"--benchmark_min_time={min_time}"]
    if filt:
        cmd.append(f"--benchmark_filter={filt}")
    proc = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    res = json.loads(proc.stdout)
    out = {}
    for b in res["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        out[b["run_name"].replace("/real_time", "")] = b["real_time"]  # microseconds
    return out, res.get("context", {})


def run_torch(threads, min_time, filt, blas_threads=None):
    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [sys.executable, os.path.join(here, "torch_rnn.py"), "--threads", str(threads),
           "--min-time", str(min_time)]
    if filt:
        cmd += ["--filter", filt]
    if blas_threads is not None:
        cmd += ["--blas-threads", str(blas_threads)]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return res["us"], res["torch_version"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bench/bench_rnn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds per case and round")
    ap.add_argument("--filter", default="", help="substring of the case names (both sides)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()

    ours_runs, theirs_runs, blas1_runs = {}, {}, {}
    ctx, torch_version = {}, "?"
    for _ in range(args.rounds):
        o, ctx = run_ours(args.bench, args.threads, args.min_time, args.filter)
        t, torch_version = run_torch(args.threads, args.min_time, args.filter)
        t1, _ = run_torch(args.threads, args.min_time, args.filter, blas_threads=1)
        for runs, res in ((ours_runs, o), (theirs_runs, t), (blas1_runs, t1)):
            for k, v in res.items():
                runs.setdefault(k, []).append(v)
    ours = {k: median(v) for k, v in ours_runs.items()}
    theirs = {k: median(v) for k, v in theirs_runs.items()}
    blas1 = {k: median(v) for k, v in blas1_runs.items()}

    print(f"threads: {args.threads}; PyTorch {torch_version}; host: {ctx.get('num_cpus', '?')} "
          f"CPUs at {ctx.get('mhz_per_cpu', '?')} MHz; load average {ctx.get('load_avg', '?')}; "
          f"median of {args.rounds} alternating rounds")
    if args.markdown:
        print("| training step | attend µs | PyTorch µs | PyTorch / attend | PyTorch µs, "
              "OPENBLAS_NUM_THREADS=1 | that / attend |\n|---|---:|---:|---:|---:|---:|")
    for name, t in ours.items():
        tt, t1 = theirs.get(name), blas1.get(name)
        r = f"{tt / t:.2f}" if tt else "-"
        r1 = f"{t1 / t:.2f}" if t1 else "-"
        if args.markdown:
            print(f"| {name} | {t:.0f} | {tt or float('nan'):.0f} | {r} | "
                  f"{t1 or float('nan'):.0f} | {r1} |")
        else:
            print(f"{name:36s} attend {t:10.0f} us   torch {tt or float('nan'):10.0f} us ({r}x)"
                  f"   torch blas1 {t1 or float('nan'):10.0f} us ({r1}x)")


if __name__ == "__main__":
    main()
