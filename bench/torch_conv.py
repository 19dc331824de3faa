#!/usr/bin/python3
"""PyTorch timings of the same CNN step and layers as bench/bench_conv.cc (names match).

Prints one JSON object {"us": {name: microseconds per iteration}, ...}. Run with Debian's
/usr/bin/python3 (its torch uses oneDNN for convolutions).
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def timeit(fn, min_time, clock=time.perf_counter):
    """Median microseconds per call over 5 batches, after a warm-up (as bench/torch_ops.py).

    clock=time.process_time measures CPU time instead of wall time: with one thread, a figure
    that other processes on a loaded machine disturb much less."""
    for _ in range(3):
        fn()
    n = 1
    while True:
        t0 = clock()
        for _ in range(n):
            fn()
        dt = clock() - t0
        if dt > min_time / 5 or n > 1 << 20:
            break
        n *= 2
    samples = []
    for _ in range(5):
        t0 = clock()
        for _ in range(n):
            fn()
        samples.append((clock() - t0) / n)
    samples.sort()
    return samples[len(samples) // 2] * 1e6


def cases():
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=g)
    c = {}

    def cnn_step(batch):
        torch.manual_seed(7)
        net = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))
        x = r(batch, 3, 32, 32)
        y = torch.randint(0, 10, (batch,), generator=g)
        params = list(net.parameters())

        def step():
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p.sub_(p.grad * 0.01)
                    p.grad = None
        return step

    c["cnn_step/32x3x32x32"] = cnn_step(32)

    for b, ch, h, o in [(32, 3, 32, 32), (32, 32, 16, 64), (32, 64, 8, 128)]:
        name = f"{b}x{ch}x{h}x{h}-{o}"
        x, w, bias = r(b, ch, h, h), r(o, ch, 3, 3), r(o)
        c[f"conv2d_fwd/{name}"] = (
            lambda x, w, bias: lambda: F.conv2d(x, w, bias, 1, 1))(x, w, bias)

        xg = r(b, ch, h, h).requires_grad_(ch != 3)
        wg, bg = r(o, ch, 3, 3).requires_grad_(), r(o).requires_grad_()
        gy = r(b, o, h, h)

        def fwd_bwd(xg=xg, wg=wg, bg=bg, gy=gy):
            F.conv2d(xg, wg, bg, 1, 1).backward(gy)
            xg.grad = wg.grad = bg.grad = None
        c[f"conv2d_fwd_bwd/{name}"] = fwd_bwd

    for b, ch, h in [(32, 32, 32), (32, 64, 16)]:
        xp = r(b, ch, h, h).requires_grad_()
        gp = r(b, ch, h // 2, h // 2)

        def pool(xp=xp, gp=gp):
            F.max_pool2d(xp, 2).backward(gp)
            xp.grad = None
        c[f"max_pool2d_fwd_bwd/{b}x{ch}x{h}x{h}"] = pool
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--filter", default="")
    ap.add_argument("--cpu-time", action="store_true",
                    help="process CPU time instead of wall time (use with --threads 1)")
    args = ap.parse_args()
    clock = time.process_time if args.cpu_time else time.perf_counter
    torch.set_num_threads(args.threads)
    out = {}
    for name, fn in cases().items():
        if args.filter and args.filter not in name:
            continue
        out[name] = timeit(fn, args.min_time, clock)
    print(json.dumps({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                      "mkldnn": torch.backends.mkldnn.is_available(), "us": out}))


if __name__ == "__main__":
    main()
