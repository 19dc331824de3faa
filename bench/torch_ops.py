#!/usr/bin/python3
"""PyTorch timings of the same ops and shapes as bench/bench_ops.cc (names match).

Prints one JSON object {name: microseconds per iteration}. Run with Debian's /usr/bin/python3.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def timeit(fn, min_time, warmup=3, samples=5):
    """Median microseconds per call over `samples` batches, after `warmup` calls (calls of
    several seconds can take warmup=1, samples=1 and leave the median to the rounds)."""
    for _ in range(warmup):
        fn()
    # Pick a batch size so one batch takes about min_time / 5.
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > min_time / 5 or n > 1 << 20:
            break
        n *= 2
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n)
    times.sort()
    return times[len(times) // 2] * 1e6


def cases():
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=g)
    c = {}

    def mm(name, m, k, n, trans_b=False):
        a = r(m, k)
        b = r(n, k).t() if trans_b else r(k, n)
        c[name] = lambda: torch.matmul(a, b)

    mm("matmul/256x256x256", 256, 256, 256)
    mm("matmul/1024x1024x1024", 1024, 1024, 1024)
    mm("matmul_bt/1024x1024x1024", 1024, 1024, 1024, True)
    mm("matmul/4096x512x512", 4096, 512, 512)
    mm("matmul_bt/2048x256x1024", 2048, 256, 1024, True)
    mm("matmul/2048x1024x256", 2048, 1024, 256)
    mm("matmul_bt/2048x256x8000", 2048, 256, 8000, True)
    x3, y3 = r(32, 128, 64), r(32, 128, 64).transpose(1, 2)
    c["bmm_bt/32x128x64x128"] = lambda: torch.matmul(x3, y3)

    for rows, n in [(4096, 1024), (16384, 128)]:
        x = r(rows, n)
        c[f"softmax/{rows}x{n}"] = (lambda x: lambda: torch.softmax(x, -1))(x)
    xs = r(4096, 1024).requires_grad_()
    gs = r(4096, 1024)

    def softmax_fb():
        y = torch.softmax(xs, -1)
        y.backward(gs)
        xs.grad = None
    c["softmax_fwd_bwd/4096x1024"] = softmax_fb

    for rows, n in [(4096, 1024), (16384, 256)]:
        x, w, b = r(rows, n), r(n), r(n)
        c[f"layer_norm/{rows}x{n}"] = (lambda x, w, b, n: lambda: F.layer_norm(x, (n,), w, b))(x, w, b, n)
    xl, wl, bl = r(4096, 1024).requires_grad_(), r(1024).requires_grad_(), r(1024).requires_grad_()
    gl = r(4096, 1024)

    def ln_fb():
        F.layer_norm(xl, (1024,), wl, bl).backward(gl)
        xl.grad = wl.grad = bl.grad = None
    c["layer_norm_fwd_bwd/4096x1024"] = ln_fb

    for n in [4194304, 65536]:
        a, b = r(n), r(n)
        c[f"add/{n}"] = (lambda a, b: lambda: torch.add(a, b))(a, b)
    a2, b2 = r(4096, 1024), r(1024)
    c["mul_broadcast/4096x1024"] = lambda: torch.mul(a2, b2)
    big = r(4194304)
    c["gelu/4194304"] = lambda: F.gelu(big)
    c["exp/4194304"] = lambda: torch.exp(big)
    c["tanh/4194304"] = lambda: torch.tanh(big)
    s2 = r(4096, 1024)
    c["sum_last/4096x1024"] = lambda: s2.sum(-1)
    c["sum_first/4096x1024"] = lambda: s2.sum(0)

    def mlp(batch, din, hidden, dout):
        x = r(batch, din)
        y = torch.randint(0, dout, (batch,), generator=g)
        ps = [(r(din, hidden) * 0.05).requires_grad_(), torch.zeros(hidden, requires_grad=True),
              (r(hidden, hidden) * 0.05).requires_grad_(), torch.zeros(hidden, requires_grad=True),
              (r(hidden, dout) * 0.05).requires_grad_(), torch.zeros(dout, requires_grad=True)]

        def step():
            w1, b1, w2, b2, w3, b3 = ps
            h = F.gelu(x @ w1 + b1)
            h = F.layer_norm(F.gelu(h @ w2 + b2), (hidden,))
            loss = F.cross_entropy(h @ w3 + b3, y)
            loss.backward()
            with torch.no_grad():
                for p in ps:
                    p.sub_(p.grad * 0.01)
                    p.grad = None
        return step
    c["mlp_step/256x512x1024x10"] = mlp(256, 512, 1024, 10)
    c["mlp_step/32x128x256x10"] = mlp(32, 128, 256, 10)
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--filter", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = {}
    for name, fn in cases().items():
        if args.filter and args.filter not in name:
            continue
        out[name] = timeit(fn, args.min_time)
    print(json.dumps({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                      "us": out}))


if __name__ == "__main__":
    main()
