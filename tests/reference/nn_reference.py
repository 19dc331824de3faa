#!/usr/bin/python3
"""PyTorch oracle for the basic modules of attend::nn (Linear, Embedding, LayerNorm,
Sequential, sinusoidal positions): outputs and gradients with the same weights.

Writes the binary format of ops_reference.py. Inputs x0 is the module input, x1.. its
parameters in registration order; y0 the output, dy0 its cotangent, dx<i> the gradients.
Run with Debian's /usr/bin/python3 (python3-torch).
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from ops_reference import generator_main, Builder, op_key, write_file  # noqa: E402

F32, F64 = torch.float32, torch.float64


def sinusoidal(max_len, dim, dtype):
    pe = torch.zeros(max_len, dim, dtype=F64)
    pos = torch.arange(max_len, dtype=F64).unsqueeze(1)
    i = torch.arange(0, dim, 2, dtype=F64)
    angle = pos / torch.pow(torch.tensor(10000.0, dtype=F64), i / dim)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)[:, : dim // 2]
    return pe.to(dtype)


def build_cases(seed):
    b = Builder(seed)
    for dt, tag in ((F32, "f32"), (F64, "f64")):
        x, w, bias = b.randn(2, 5, 7, dtype=dt), b.randn(3, 7, dtype=dt), b.randn(3, dtype=dt)
        b.add("linear_bias_" + tag, op_key("linear", bias=True), [x, w, bias],
              lambda x, w, bb: F.linear(x, w, bb))
        x2, w2 = b.randn(13, 7, dtype=dt), b.randn(5, 7, dtype=dt)
        b.add("linear_nobias_" + tag, op_key("linear", bias=False), [x2, w2],
              lambda x, w: F.linear(x, w))
        ln_x, ln_w, ln_b = b.randn(3, 4, 11, dtype=dt, offset=2.0), b.randn(11, dtype=dt), b.randn(11, dtype=dt)
        b.add("layer_norm_module_" + tag, op_key("layer_norm_module", dims=1), [ln_x, ln_w, ln_b],
              lambda x, w, bb: F.layer_norm(x, (11,), w, bb))
        ln2_x, ln2_w, ln2_b = b.randn(3, 4, 5, dtype=dt), b.randn(4, 5, dtype=dt), b.randn(4, 5, dtype=dt)
        b.add("layer_norm_module_2d_" + tag, op_key("layer_norm_module", dims=2),
              [ln2_x, ln2_w, ln2_b], lambda x, w, bb: F.layer_norm(x, (4, 5), w, bb))
        emb_w = b.randn(9, 6, dtype=dt)
        idx = torch.tensor([[1, 3, 3, 0], [8, 2, 0, 1]], dtype=torch.int64)
        b.add("embedding_module_pad0_" + tag, op_key("embedding_module", padding_idx=0), [idx, emb_w],
              lambda i, w: F.embedding(i, w, padding_idx=0))
        # Sequential(Linear(7, 6), GELU, Linear(6, 4)).
        sx, s1w, s1b, s2w, s2b = (b.randn(5, 7, dtype=dt), b.randn(6, 7, dtype=dt),
                                  b.randn(6, dtype=dt), b.randn(4, 6, dtype=dt), b.randn(4, dtype=dt))
        b.add("sequential_mlp_" + tag, op_key("sequential_mlp"), [sx, s1w, s1b, s2w, s2b],
              lambda x, w1, b1, w2, b2: F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2))
        px = b.randn(2, 6, 10, dtype=dt)
        table = sinusoidal(16, 10, dt)
        b.add("sinusoidal_positions_" + tag, op_key("sinusoidal", max_len=16), [px],
              lambda x: x + table[: x.shape[1]])
        px_odd = b.randn(2, 3, 7, dtype=dt)
        table_odd = sinusoidal(5, 7, dt)
        b.add("sinusoidal_positions_odd_dim_" + tag, op_key("sinusoidal", max_len=5), [px_odd],
              lambda x: x + table_odd[: x.shape[1]])
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 7)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
