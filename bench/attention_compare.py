#!/usr/bin/python3
"""Runs bench_attention and bench/torch_attention.py in alternating rounds and prints, for each
shape, the GFLOP/s of the fused kernels beside the unfused composition, cblas_sgemm on the same
two GEMMs, PyTorch's math path and the machine's FMA peak measured in the same run; then the
peak memory of the fused op at long sequences.

FLOPs: forward 4*B*H*N^2*D (halved when causal), backward 2.5x that. The fused backward is timed
alone (its kernel, from a saved forward); the composition's and PyTorch's backward are their
forward+backward time minus their forward time. Each figure is the median over the rounds
(the multi-second cases of the composition and PyTorch, N = 4096, run in the
first round only). Usage:
  /usr/bin/python3 bench/attention_compare.py --bench build/bench/bench_attention [--markdown]
"""
import argparse
import json
import os
import re
import subprocess
import sys

from compare import median  # noqa: E402  (bench/ is the script directory)


def run_ours(binary, threads, min_time, filt):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [binary, "--benchmark_format=json", f"--benchmark_min_time={min_time}",
           f"--benchmark_filter={filt}"]
    res = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True,
                                    text=True).stdout)
    out = {}
    for b in res["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        name = b["run_name"].replace("/real_time", "").split("/iterations")[0]
        out[name] = b
    return out, res.get("context", {})


def run_torch(threads, min_time, skip_large, filt):
    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [sys.executable, os.path.join(here, "torch_attention.py"), "--threads", str(threads),
           "--min-time", str(min_time)]
    if filt:
        cmd += ["--filter", filt]
    if skip_large:
        cmd.append("--skip-large")
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return res["us"], res["torch_version"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bench/bench_attention")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--filter", default="", help="substring of the shape names (e.g. N1024_D64)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()

    ours_runs, torch_runs, flop = {}, {}, {}
    ctx, torch_version = {}, "-"
    for r in range(args.rounds):
        # The composition's N = 4096 cases take tens of seconds: first round only, as PyTorch's.
        filt = "^(fma|fused|unfused|sgemm)" if r == 0 else "^(fma|fused|sgemm)|^unfused.*_N(1|5)"
        if args.filter:
            filt = f"^fma|/.*{re.escape(args.filter)}"
        o, ctx = run_ours(args.bench, args.threads, args.min_time, filt)
        for k, b in o.items():
            ours_runs.setdefault(k, []).append(b["real_time"])  # microseconds
            flop[k] = b["flop"]
        if not args.no_torch:
            t, torch_version = run_torch(args.threads, args.min_time, r > 0, args.filter)
            for k, v in t.items():
                torch_runs.setdefault(k, []).append(v)
    ours = {k: median(v) for k, v in ours_runs.items()}
    theirs = {k: median(v) for k, v in torch_runs.items()}

    def gflops(name, us):
        return flop[name] / (us * 1e3) if us else None

    peak1 = gflops("fma_peak/threads:1", ours["fma_peak/threads:1"])
    peak2 = gflops("fma_peak/threads:2", ours["fma_peak/threads:2"])
    peak = peak2 if args.threads >= 2 else peak1
    print(f"threads: {args.threads}; PyTorch {torch_version}; host: {ctx.get('num_cpus', '?')} "
          f"CPUs; load average {ctx.get('load_avg', '?')}; median of {args.rounds} alternating "
          f"rounds")
    print(f"FMA peak (f32, independent chains in registers): {peak1:.0f} GFLOP/s on one core, "
          f"{peak2:.0f} GFLOP/s on two threads")
    print()

    cols = ["shape", "fused fwd", "% peak", "fused bwd", "% peak", "unfused fwd", "unfused bwd",
            "sgemm (2 GEMMs)", "torch fwd", "torch bwd", "fused/torch fwd", "fused/torch bwd"]
    if args.markdown:
        print("GFLOP/s (forward 4·B·H·N²·D, halved when causal; backward 2.5× forward)\n")
        print("| " + " | ".join(cols) + " |")
        print("|---" + "|---:" * (len(cols) - 1) + "|")
    else:
        print("  ".join(f"{c:>15s}" for c in cols))

    def fmt(x, spec=".1f"):
        return format(x, spec) if x is not None else "-"

    for name in [k[len("fused_fwd/"):] for k in ours if k.startswith("fused_fwd/")]:
        ff = gflops("fused_fwd/" + name, ours["fused_fwd/" + name])
        fb = gflops("fused_bwd/" + name, ours["fused_bwd/" + name])
        shape = name.replace("_causal", "")
        sg = gflops("sgemm/" + shape, ours.get("sgemm/" + shape))
        uf = ub = tf = tb = None
        if "unfused_fwd/" + name in ours:
            t_f, t_fb = ours["unfused_fwd/" + name], ours["unfused_fwdbwd/" + name]
            uf = flop["unfused_fwd/" + name] / (t_f * 1e3)
            ub = 2.5 * flop["unfused_fwd/" + name] / ((t_fb - t_f) * 1e3)
        if "torch_fwd/" + name in theirs:
            t_f, t_fb = theirs["torch_fwd/" + name], theirs["torch_fwdbwd/" + name]
            tf = flop["fused_fwd/" + name] / (t_f * 1e3)
            tb = flop["fused_bwd/" + name] / ((t_fb - t_f) * 1e3)
        row = [name, fmt(ff), fmt(100 * ff / peak, ".0f"), fmt(fb), fmt(100 * fb / peak, ".0f"),
               fmt(uf), fmt(ub), fmt(sg), fmt(tf), fmt(tb),
               fmt(ff / tf if tf else None, ".0f"), fmt(fb / tb if tb else None, ".0f")]
        if args.markdown:
            print("| " + " | ".join(row) + " |")
        else:
            print("  ".join(f"{c:>15s}" for c in row))

    if args.no_memory:
        return
    mem, _ = run_ours(args.bench, args.threads, args.min_time, "^memory/")
    print()
    print("Peak memory of the fused op, forward + backward (B = 1, D = 64, causal): tensors at "
          "the allocator's peak above q, k, v and the cotangent; the process's peak RSS above its "
          "RSS before the step; q, k, v themselves for scale.\n")
    mcols = ["case", "allocator peak MiB", "peak RSS MiB", "q+k+v MiB", "time ms"]
    if args.markdown:
        print("| " + " | ".join(mcols) + " |")
        print("|---" + "|---:" * (len(mcols) - 1) + "|")
    for name, b in mem.items():
        row = [name, f"{b['peak_alloc_bytes'] / 2**20:.1f}", f"{b['peak_rss_bytes'] / 2**20:.1f}",
               f"{b['qkv_bytes'] / 2**20:.1f}", f"{b['real_time'] / 1e3:.2f}"]
        if args.markdown:
            print("| " + " | ".join(row) + " |")
        else:
            print("  ".join(f"{c:>20s}" for c in row))


if __name__ == "__main__":
    main()
