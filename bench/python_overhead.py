#!/usr/bin/python3
"""Per-call cost of small ops from Python: attend (pybind11) beside PyTorch, one thread each.

For tiny tensors the time is almost all binding and dispatch overhead (argument conversion,
the result object, autograd bookkeeping), which is what a Python user pays per op.
  PYTHONPATH=build/python taskset -c 1 /usr/bin/python3 bench/python_overhead.py [--number N]
"""
import argparse
import timeit

import numpy as np
import torch

import attend


def best_us(stmt, number, repeat=5):
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--number", type=int, default=20000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    attend.set_num_threads(1)
    a, b = attend.ones(4), attend.ones(4)
    ta, tb = torch.ones(4), torch.ones(4)
    g = attend.ones(4, requires_grad=True)
    tg = torch.ones(4, requires_grad=True)
    m, tm = attend.ones(8, 8), torch.ones(8, 8)
    arr = np.ones(4, dtype=np.float32)
    cases = [
        ("a + b (4 floats)", lambda: a + b, lambda: ta + tb),
        ("add(a, b)", lambda: attend.add(a, b), lambda: torch.add(ta, tb)),
        ("a * 2.0", lambda: a * 2.0, lambda: ta * 2.0),
        ("a.sum()", lambda: a.sum(), lambda: ta.sum()),
        ("softmax(a, 0)", lambda: attend.softmax(a, 0), lambda: torch.softmax(ta, 0)),
        ("matmul 8x8", lambda: m @ m, lambda: tm @ tm),
        ("g * g (records history)", lambda: g * g, lambda: tg * tg),
        ("from_numpy(4)", lambda: attend.from_numpy(arr), lambda: torch.from_numpy(arr)),
        ("t.numpy()", lambda: a.numpy(), lambda: ta.numpy()),
        ("t[1]", lambda: a[1], lambda: ta[1]),
    ]
    print(f"| call | attend µs | PyTorch {torch.__version__} µs | PyTorch / attend |")
    print("|---|---:|---:|---:|")
    for name, ours, theirs in cases:
        o = best_us(ours, args.number)
        t = best_us(theirs, args.number)
        print(f"| `{name}` | {o:.2f} | {t:.2f} | {t / o:.2f} |")


if __name__ == "__main__":
    main()
