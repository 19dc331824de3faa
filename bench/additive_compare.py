#!/usr/bin/python3
"""Fused additive attention beside the unfused composition and PyTorch's, in one run.

Runs bench_additive (the fused op and this project's unfused composition) and PyTorch 1.13's
composition of the same formula, torch.tanh(qp[:, :, None, :] + kp[:, None, :, :]) @ v (and its
backward), in alternating rounds, and prints million (query, key) pairs per second per core
(pairs / second / threads) for each shape, forward and forward + backward, with the ratios.
Each figure is the median over the rounds (attend's side is itself the median of 3 repetitions).
Usage:
  /usr/bin/python3 bench/additive_compare.py --bench build-grad/bench/bench_additive \\
      [--threads 1] [--rounds 3] [--markdown]
"""
import argparse
import json
import os
import subprocess
import sys

from compare import median, run_ours  # noqa: E402  (bench/ is the script directory)

SHAPES = [(na, nb, nq, nk) for na in (128, 256) for nb in (1, 32) for nq in (1, 32)
          for nk in (32, 128)]


def shape_name(na, nb, nq, nk):
    return f"A{na}_B{nb}_Tq{nq}_Tk{nk}"


def torch_main(threads, min_time, filt):
    """Times PyTorch's composition (in a child process, so thread settings apply at import)."""
    import torch  # noqa: E402
    from torch_ops import timeit  # noqa: E402  (one timing loop for every torch script)
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(1)
    out = {}
    for na, nb, nq, nk in SHAPES:
        qp = torch.randn(nb, nq, na, generator=g) * 0.7
        kp = torch.randn(nb, nk, na, generator=g) * 0.7
        v = torch.randn(na, generator=g) * 0.1
        gs = torch.randn(nb, nq, nk, generator=g)
        name = shape_name(na, nb, nq, nk)

        def fwd(qp=qp, kp=kp, v=v):
            return torch.tanh(qp[:, :, None, :] + kp[:, None, :, :]) @ v  # [B, Tq, Tk]

        qg, kg, vg = (t.clone().requires_grad_() for t in (qp, kp, v))

        def fwd_bwd(qg=qg, kg=kg, vg=vg, gs=gs):
            s = torch.tanh(qg[:, :, None, :] + kg[:, None, :, :]) @ vg
            s.backward(gs)
            qg.grad = kg.grad = vg.grad = None

        for kind, fn in (("fwd", fwd), ("fwd_bwd", fwd_bwd)):
            key = f"additive_{kind}/{name}"
            if filt and filt not in key:
                continue
            out[key] = timeit(fn, min_time)
    print(json.dumps({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                      "us": out}))


def run_torch(threads, min_time, filt):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-only", "--threads", str(threads),
           "--min-time", str(min_time)]
    if filt:
        cmd += ["--filter", filt]
    res = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True,
                                    text=True).stdout)
    return res["us"], res["torch_version"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build-grad/bench/bench_additive")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=0.2, help="seconds per case and round")
    ap.add_argument("--filter", default="", help="substring of the case names (both sides)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_only:
        torch_main(args.threads, args.min_time, args.filter)
        return

    # Rounds alternate between attend and PyTorch so that a noisy moment on the shared machine
    # hits both; each figure is the median over the rounds.
    ours_runs, theirs_runs = {}, {}
    ctx, torch_version = {}, "?"
    for _ in range(args.rounds):
        o, ctx = run_ours(args.bench, args.threads, args.min_time, args.filter)
        t, torch_version = run_torch(args.threads, args.min_time, args.filter)
        for runs, res in ((ours_runs, o), (theirs_runs, t)):
            for k, v in res.items():
                runs.setdefault(k, []).append(v)
    ours = {k: median(v) for k, v in ours_runs.items()}
    theirs = {k: median(v) for k, v in theirs_runs.items()}

    def rate(us, pairs):  # million pairs per second per core
        return pairs / us / args.threads if us else float("nan")

    print(f"threads: {args.threads}; PyTorch {torch_version}; host: {ctx.get('num_cpus', '?')} "
          f"CPUs at {ctx.get('mhz_per_cpu', '?')} MHz; load average {ctx.get('load_avg', '?')}; "
          f"median of {args.rounds} alternating rounds; Mpairs/s per core")
    if args.markdown:
        print("| shape | pass | fused | unfused | PyTorch | fused / PyTorch | fused / unfused |\n"
              "|---|---|---:|---:|---:|---:|---:|")
    for na, nb, nq, nk in SHAPES:
        name = shape_name(na, nb, nq, nk)
        for kind in ("fwd", "fwd_bwd"):
            f = ours.get(f"additive_{kind}/{name}")
            u = ours.get(f"additive_unfused_{kind}/{name}")
            t = theirs.get(f"additive_{kind}/{name}")
            if f is None:
                continue
            pairs = nb * nq * nk
            rf, ru, rt = rate(f, pairs), rate(u, pairs), rate(t, pairs)
            vs_torch = f"{t / f:.1f}" if t else "-"
            vs_unfused = f"{u / f:.1f}" if u else "-"
            if args.markdown:
                print(f"| {name} | {kind} | {rf:.1f} | {ru:.2f} | {rt:.2f} | {vs_torch} | "
                      f"{vs_unfused} |")
            else:
                print(f"{name:22s} {kind:8s} fused {rf:8.1f}   unfused {ru:8.2f}   "
                      f"torch {rt:8.2f}   fused/torch {vs_torch:>6s}   fused/unfused "
                      f"{vs_unfused:>6s}")


if __name__ == "__main__":
    main()
