#!/usr/bin/python3
"""PyTorch timings of the recurrent training steps in bench/bench_rnn.cc (names match).

Each case is one training step: forward of a GRU/LSTM encoder, loss = sum(output * w) for a fixed
random w, backward, and an Adam update of every parameter. Prints one JSON object
{"torch_version", "threads", "us": {name: microseconds per step}}. Run with Debian's
/usr/bin/python3 (the python3 on PATH has no torch).
"""
import argparse
import json
import os
import sys

# torch (and the BLAS it loads) reads its thread settings when first imported, so --blas-threads
# has to be applied before the import.
if __name__ == "__main__" and "--blas-threads" in sys.argv:
    os.environ["OPENBLAS_NUM_THREADS"] = sys.argv[sys.argv.index("--blas-threads") + 1]

import torch  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402
from torch_ops import timeit  # noqa: E402  (one timing loop for every torch_*.py)


def rnn_step(kind, layers, bidirectional, batch, length, width, padded):
    """A closure running one training step (the same work as BM_RnnStep in bench_rnn.cc)."""
    g = torch.Generator().manual_seed(1)
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    model = cls(width, width, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    d = 2 if bidirectional else 1
    x = torch.randn(batch, length, width, generator=g)
    w = torch.randn(batch, length, d * width, generator=g)
    # Padded batches: lengths spread over [length/2, length], the longest one at full length.
    lengths = torch.randint(length // 2, length + 1, (batch,), generator=g)
    lengths[0] = length

    def step():
        if padded:
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = model(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=length)
        else:
            out, _ = model(x)
        loss = (out * w).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


# name -> (kind, layers, bidirectional, batch, length, width, padded)
CASES = {
    "lstm_step/2L_bi_32x50x256": ("lstm", 2, True, 32, 50, 256, False),
    "gru_step/2L_bi_32x50x256": ("gru", 2, True, 32, 50, 256, False),
    "lstm_step_padded/2L_bi_32x50x256": ("lstm", 2, True, 32, 50, 256, True),
    "lstm_step/1L_uni_32x50x256": ("lstm", 1, False, 32, 50, 256, False),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--filter", default="")
    ap.add_argument("--blas-threads", default=None,
                    help="OPENBLAS_NUM_THREADS for torch's BLAS (Debian's torch uses the system "
                         "OpenBLAS, whose own threads fight torch's OpenMP threads otherwise)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = {}
    for name, spec in CASES.items():
        if args.filter and args.filter not in name:
            continue
        out[name] = timeit(rnn_step(*spec), args.min_time)
    print(json.dumps({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                      "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "us": out}))


if __name__ == "__main__":
    main()
