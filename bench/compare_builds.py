#!/usr/bin/env python3
"""Before/after timings of Google Benchmark rows on a noisy machine.

Runs the rows matching FILTER of two or more benchmark binaries (builds before and after a change,
or one binary under different environments through a wrapper script) in interleaved rounds, so
that every build sees the same stretches of a shared host, and prints per row and build the
minimum and the median of the rounds' times and their ratios to the first build's. On the VMs
these benchmarks run on, one binary's time moves 10-30 % from minute to minute; the minimum over
interleaved rounds is the steadiest figure (it is the run that the host disturbed least), the
median says whether the minimum was luck. A difference smaller than the spread between rounds is
not a result.

  python3 bench/compare_builds.py --rounds 8 'fused_fwd/B1_H8_N1024' OLD/bench_attention \\
      build/bench/bench_attention

Threads: --threads (OMP_NUM_THREADS of every run, 1 unless given). Exit status 1 when a binary
fails or no row matches.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def run_once(binary, pattern, min_time, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [binary, f"--benchmark_filter={pattern}", f"--benchmark_min_time={min_time}",
           "--benchmark_format=json"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"compare_builds: {' '.join(cmd)} exited with {proc.returncode}:\n{proc.stderr}")
    if not proc.stdout.strip():
        return {}  # no row matched
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        sys.exit(f"compare_builds: {binary} printed no JSON report ({e})")
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}  # to microseconds
    rows = {}
    for b in report.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue
        rows[b["name"]] = b["real_time"] * scale[b.get("time_unit", "ns")]
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("filter", help="--benchmark_filter regex")
    p.add_argument("binaries", nargs="+", help="benchmark binaries (or wrapper scripts)")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--min-time", type=float, default=0.3, help="--benchmark_min_time per run")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    if a.rounds < 1:
        sys.exit("compare_builds: --rounds must be at least 1")
    times = {}  # (row, build index) -> [microseconds]
    for _ in range(a.rounds):
        for i, binary in enumerate(a.binaries):
            for row, t in run_once(binary, a.filter, a.min_time, a.threads).items():
                times.setdefault((row, i), []).append(t)
    rows = sorted({row for row, _ in times})
    if not rows:
        sys.exit(f"compare_builds: no row matches {a.filter!r}")
    names = a.binaries
    print(f"{a.rounds} interleaved rounds, {a.threads} thread(s), times in microseconds; "
          "ratios to the first build (below 1: faster)")
    print("| row | build | min | median | min ratio | median ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for row in rows:
        base = times.get((row, 0))
        for i, name in enumerate(names):
            v = times.get((row, i))
            if not v:
                print(f"| {row} | {name} | - | - | - | - |")
                continue
            lo, med = min(v), statistics.median(v)
            if base:
                ratio = f"{lo / min(base):.3f} | {med / statistics.median(base):.3f}"
            else:
                ratio = "- | -"
            print(f"| {row} | {name} | {lo:,.1f} | {med:,.1f} | {ratio} |")


if __name__ == "__main__":
    main()
