#!/usr/bin/python3
"""Training steps of the catalogue's systems in attend and in their PyTorch mirrors, in one run.

Runs build/bench/bench_tasks (bench/tasks/*.cc) and bench/torch_tasks.py (bench/torch_tasks/*.py)
in alternating rounds, with the same thread count on both sides (OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS, torch.set_num_threads), and prints items/s and the ratio attend / PyTorch
(above 1: attend is faster) per system and variant, each the median over the rounds.
  /usr/bin/python3 bench/tasks_compare.py [--bench build/bench/bench_tasks] [--threads 1]
                                          [--rounds 3] [--filter REGEX] [--markdown]
Pin it to one core for a quiet figure: taskset -c 1 /usr/bin/python3 bench/tasks_compare.py
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_attend(binary, env, min_time, filt):
    cmd = [binary, "--benchmark_format=json", f"--benchmark_min_time={min_time}",
           "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true"]
    if filt:
        # Google Benchmark matches the whole name (BM_TaskStep_Senet/senet_se/real_time): a
        # filter anchored at the case's start is anchored after the first slash there.
        cmd.append("--benchmark_filter=" + ("/" + filt[1:] if filt.startswith("^") else filt))
    res = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True,
                                    text=True).stdout)
    rates, params = {}, {}
    for b in res["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        # BM_TaskStep_Senet/senet_se/real_time -> senet_se
        name = b["run_name"].split("/")[1]
        rates[name], params[name] = b["items/s"], int(b["params"])
    return rates, params


def run_torch(env, threads, min_time, filt):
    cmd = [sys.executable, os.path.join(HERE, "torch_tasks.py"), "--threads", str(threads),
           "--min-time", str(min_time), "--filter", filt]
    res = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True,
                                    text=True).stdout)
    return res["items_per_s"], res["params"], res["torch_version"]


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bench/bench_tasks")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--filter", default="")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    ours, theirs, version = {}, {}, "?"
    params_ours, params_theirs = {}, {}
    # Rounds alternate between the two sides so that a noisy moment of a shared machine hits
    # both; each figure is the median over the rounds.
    for _ in range(args.rounds):
        o, params_ours = run_attend(args.bench, env, args.min_time, args.filter)
        for k, v in o.items():
            ours.setdefault(k, []).append(v)
        t, params_theirs, version = run_torch(env, args.threads, args.min_time, args.filter)
        for k, v in t.items():
            theirs.setdefault(k, []).append(v)
    # Both sides must train the same model: a different parameter count is a broken mirror.
    bad = [n for n in params_ours if n in params_theirs and params_ours[n] != params_theirs[n]]
    for n in bad:
        print(f"tasks_compare: {n}: attend trains {params_ours[n]} parameters, the PyTorch "
              f"mirror {params_theirs[n]}", file=sys.stderr)
    if bad:
        sys.exit(1)
    rows = []
    for name in sorted(set(ours) | set(theirs)):
        a = median(ours[name]) if name in ours else None
        p = median(theirs[name]) if name in theirs else None
        ratio = f"{a / p:.2f}" if a and p else "-"
        rows.append((name, f"{params_ours.get(name, params_theirs.get(name, 0)):,}",
                     f"{a:,.1f}" if a else "-", f"{p:,.1f}" if p else "-", ratio))
    header = ("case", "parameters", "attend items/s", f"PyTorch {version} items/s", "attend / PyTorch")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|---|---:|---:|---:|---:|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        print("%-24s %12s %16s %24s %18s" % header)
        for r in rows:
            print("%-24s %12s %16s %24s %18s" % r)
    opb = os.environ.get("OPENBLAS_CORETYPE", "unset")
    print(f"\n{args.threads} thread(s) each side, {args.rounds} rounds, OPENBLAS_CORETYPE={opb}")


if __name__ == "__main__":
    main()
