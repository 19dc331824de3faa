#!/usr/bin/python3
"""A training step of the attention RNN from Python beside the same step from C++.

Three ways to run one step (forward, backward, Adam) of an RNN with additive attention on a
batch of 64 sentence pairs of 20 tokens, vocabulary 8,000, one thread:
  C++       build/bench/bench_nmt's BM_TrainStep/rnn_attention (the model of `attend train`);
  Python    the same C++ model driven from Python: attend.models.make_model, model.loss-style
            cross-entropy, backward and attend.optim.Adam, one call per piece;
  composed  the attention RNN written in Python from attend.nn modules and ops (a bidirectional
            GRU encoder, a GRUCell decoder with input feeding, additive attention by hand,
            the Luong combination), each decoder step a dozen Python calls; and the very same
            code run on PyTorch's modules (the script is written once for both libraries).
The C++ and Python rows run the same model; the composed rows are a user's own model, the same
in both libraries (parameter counts checked equal), not the C++ model.
  PYTHONPATH=build/python taskset -c 1 /usr/bin/python3 bench/python_train_step.py [--steps N]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

import attend

V, B, L = 8000, 64, 20
EMB, HID, ATT = 256, 256, 256


def ids(seed):
    g = np.random.default_rng(seed)
    return [list(map(int, g.integers(4, V, size=L))) for _ in range(B)]


class Composed:
    """Luong-style attention RNN built from library `lib`'s modules (attend or torch)."""

    def __init__(self, lib):
        nn = lib.nn
        self.lib = lib
        self.src_emb, self.tgt_emb = nn.Embedding(V, EMB), nn.Embedding(V, EMB)
        self.encoder = nn.GRU(EMB, HID // 2, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(HID, HID)
        self.decoder = nn.GRUCell(EMB + HID, HID)
        self.key_proj = nn.Linear(HID, ATT, bias=False)
        self.query_proj = nn.Linear(HID, ATT)
        self.v = nn.Linear(ATT, 1, bias=False)
        self.combine = nn.Linear(2 * HID, HID)
        self.out = nn.Linear(HID, V)
        self.modules = [self.src_emb, self.tgt_emb, self.encoder, self.bridge, self.decoder,
                        self.key_proj, self.query_proj, self.v, self.combine, self.out]

    def parameters(self):
        return [p for m in self.modules for p in m.parameters()]

    def logits(self, src, tgt_in):
        lib = self.lib
        h, _ = self.encoder(self.src_emb(src))              # [B, S, HID]
        keys = self.key_proj(h)                              # [B, S, ATT], once per batch
        s = lib.tanh(self.bridge(h.mean(1)))                 # [B, HID]
        feed = lib.zeros(B, HID)
        y = self.tgt_emb(tgt_in)                             # [B, T, EMB]
        outs = []
        for t in range(tgt_in.shape[1]):
            s = self.decoder(lib.cat([y[:, t], feed], 1), s)
            e = self.v(lib.tanh(keys + self.query_proj(s).unsqueeze(1))).squeeze(2)  # [B, S]
            a = lib.softmax(e, 1)
            c = (a.unsqueeze(1) @ h).squeeze(1)              # [B, HID]
            feed = lib.tanh(self.combine(lib.cat([c, s], 1)))
            outs.append(feed)
        return self.out(lib.stack(outs, 1))                  # [B, T, V]


def time_steps(step, steps):
    step()  # warm-up: allocations, first-touch
    step()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - t0) / steps)
    return best * 1e3


def cpp_step_ms(bench):
    out = subprocess.run(
        [bench, "--benchmark_filter=BM_TrainStep/rnn_attention", "--benchmark_format=json",
         "--benchmark_repetitions=3", "--benchmark_min_time=2"],
        check=True, capture_output=True, text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")).stdout
    runs = [b for b in json.loads(out)["benchmarks"] if b.get("run_type") == "iteration"]
    return min(b["real_time"] for b in runs)  # milliseconds (the benchmark's unit)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--bench", default="build/bench/bench_nmt")
    args = ap.parse_args()
    torch.set_num_threads(1)
    attend.set_num_threads(1)
    src, tgt = ids(1), ids(2)
    rows = []

    cpp = cpp_step_ms(args.bench)
    rows.append(("C++: the model of `attend train` (bench_nmt)", cpp))

    model = attend.models.make_model("rnn-attention", src_vocab=V, tgt_vocab=V, seed=1)
    batch = attend.models.make_batch(src, tgt)
    opt = attend.optim.Adam(model.parameters(), lr=1e-4)
    target = batch.tgt_out.view(-1)

    def step_model():
        logits = model(batch)
        loss = attend.cross_entropy(logits.view(-1, V), target, ignore_index=0,
                                    label_smoothing=0.1)
        loss.backward()
        opt.step()
        opt.zero_grad()

    rows.append(("Python: the same C++ model (attend.models)", time_steps(step_model, args.steps)))

    counts = {}
    for name, lib in (("attend", attend), ("PyTorch " + torch.__version__, torch)):
        if lib is torch:
            torch.manual_seed(1)
        net = Composed(lib)
        counts[name] = sum(int(np.prod(p.shape)) for p in net.parameters())
        o = lib.optim.Adam(net.parameters(), lr=1e-4)
        s = lib.tensor(src)
        ti = lib.tensor(batch.tgt_in.numpy())
        to = lib.tensor(batch.tgt_out.numpy()).view(-1)
        ce = attend.cross_entropy if lib is attend else torch.nn.functional.cross_entropy

        def step_composed(net=net, o=o, s=s, ti=ti, to=to, ce=ce):
            loss = ce(net.logits(s, ti).view(-1, V), to, ignore_index=0, label_smoothing=0.1)
            loss.backward()
            o.step()
            o.zero_grad()

        rows.append((f"composed in Python, {name}", time_steps(step_composed, args.steps)))
    assert len(set(counts.values())) == 1, counts

    tokens = B * (L + 1)
    print(f"batch {B} x {L} tokens, vocabulary {V}, one thread; composed model "
          f"{counts['attend']:,} parameters; C++ model {model.num_parameters():,}\n")
    print("| step | ms | target tokens/s | / C++ |")
    print("|---|---:|---:|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} | {tokens / ms * 1e3:,.0f} | {ms / cpp:.3f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
