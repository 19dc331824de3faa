#!/usr/bin/python3
"""The PyTorch side of bench/tasks_compare.py: times the training step of every catalogue system's
mirror (bench/torch_tasks/NAME.py, whose models come from tests/reference/NAME_reference.py, the
mirrors the tests compare attend with) and prints items/s and parameter counts as JSON.

A step is the one bench/tasks/step.h times: zero the gradients, forward, loss, backward, one Adam
update (lr 1e-3), on a fixed batch. Each case runs 2 untimed steps, then timed steps until
--min-time seconds have passed, --repetitions times; the median is reported.
  /usr/bin/python3 bench/torch_tasks.py [--threads 1] [--min-time 1] [--filter REGEX]
"""
import argparse
import glob
import importlib
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "torch_tasks"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))

import torch  # noqa: E402


def time_case(make, min_time, repetitions):
    model, loss_fn, items = make()
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        adam.zero_grad(set_to_none=False)
        loss_fn().backward()
        adam.step()

    params = sum(p.numel() for p in model.parameters())
    for _ in range(2):
        step()
    rates = []
    for _ in range(repetitions):
        steps, start = 0, time.perf_counter()
        while True:
            step()
            steps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        rates.append(items * steps / elapsed)
    return sorted(rates)[len(rates) // 2], params


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--filter", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rates, params = {}, {}
    for path in sorted(glob.glob(os.path.join(HERE, "torch_tasks", "*.py"))):
        module = importlib.import_module(os.path.splitext(os.path.basename(path))[0])
        for name, make in module.CASES.items():
            if args.filter and not re.search(args.filter, name):
                continue
            rates[name], params[name] = time_case(make, args.min_time, args.repetitions)
    json.dump({"items_per_s": rates, "params": params, "torch_version": torch.__version__},
              sys.stdout)
    print()


if __name__ == "__main__":
    main()
