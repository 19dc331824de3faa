#!/usr/bin/python3
"""PyTorch timings of scaled dot-product attention on the shapes of bench/bench_attention.cc.

PyTorch 1.13 on the CPU has no fused kernel: F._scaled_dot_product_attention (the private
predecessor of 2.0's scaled_dot_product_attention) runs its math path, softmax(q k^T * scale) v.
Cases: torch_fwd/<shape> (forward) and torch_fwdbwd/<shape> (forward and backward), with the
names of bench_attention.cc's shapes. Prints one JSON object {"torch_version", "threads",
"us": {name: microseconds}}. Run with Debian's /usr/bin/python3.
"""
import argparse
import json

import torch
import torch.nn.functional as F

from torch_ops import timeit  # noqa: E402  (one timing loop for every torch_*.py)

# Calls above this many forward FLOPs take seconds: one sample each (the caller's rounds give
# the median). B = 4, N = 4096 is skipped, as for the unfused composition in bench_attention.cc.
LARGE_FLOPS = 2e10


def shapes():
    for b in (1, 4):
        for n in (128, 512, 1024, 4096):
            if b * n >= 4 * 4096:
                continue
            for d in (64, 128):
                for causal in (False, True):
                    yield b, n, d, causal


def name_of(b, n, d, causal):
    return f"B{b}_H8_N{n}_D{d}" + ("_causal" if causal else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--filter", default="")
    ap.add_argument("--skip-large", action="store_true", help="leave out the multi-second cases")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(1)
    out = {}
    for b, n, d, causal in shapes():
        name = name_of(b, n, d, causal)
        if args.filter and args.filter not in name:
            continue
        flops = 4.0 * b * 8 * n * n * d
        large = flops > LARGE_FLOPS
        if large and args.skip_large:
            continue
        q, k, v, go = (torch.randn(b, 8, n, d, generator=g) for _ in range(4))
        qg, kg, vg = (t.clone().requires_grad_() for t in (q, k, v))

        def fwd():
            with torch.no_grad():
                return F._scaled_dot_product_attention(q, k, v, None, 0.0, False, causal)[0]

        def fwdbwd():
            o = F._scaled_dot_product_attention(qg, kg, vg, None, 0.0, False, causal)[0]
            o.backward(go)
            qg.grad = kg.grad = vg.grad = None

        kw = dict(warmup=0, samples=1) if large else {}
        out["torch_fwd/" + name] = timeit(fwd, args.min_time, **kw)
        out["torch_fwdbwd/" + name] = timeit(fwdbwd, args.min_time, **kw)
    print(json.dumps({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                      "us": out}))


if __name__ == "__main__":
    main()
