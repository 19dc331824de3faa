# PyTorch oracle cases for CausalConv2d (tests/ops/test_causal_conv.cc).
"""PyTorch oracle for attend's CausalConv2d (src/ops/causal_conv.cc), written the way the
pervasive-attention paper states it: a full (2 KH - 1) x KW filter whose rows below the centre
are multiplied by zero, convolved with symmetric "same" padding. attend stores only the KH rows
at and above the centre and pads and crops instead, so this checks that the two agree.

Run as `/usr/bin/python3 tests/reference/causal_conv_reference.py --out FILE` (Debian's
python3-torch). The file format and tensor names are those of ops_reference.py (x0 input, x1
weight [C_out, C_in, KH, KW], x2 bias when bias=1; y0 output, dy0 its cotangent, dx<i>
gradients of sum(y0 * dy0)). Op key: causal_conv2d|bias=0/1.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the pyenv python3 on PATH has no torch; Debian's /usr/bin/python3 does
    sys.exit("causal_conv_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)

from ops_reference import generator_main, F32, F64, Builder, op_key  # noqa: E402


def masked_conv(x, w, bias=None):
    """The paper's form: the stored rows are the upper KH rows of a (2 KH - 1)-row filter, the
    rows below the centre are zero (a fixed 0/1 mask), and the padding is symmetric."""
    out_c, in_c, kh, kw = w.shape
    full = torch.cat([w, torch.zeros(out_c, in_c, kh - 1, kw, dtype=w.dtype)], dim=2)
    mask = torch.zeros(2 * kh - 1, kw, dtype=w.dtype)
    mask[:kh] = 1.0
    return F.conv2d(x, full * mask, bias, padding=(kh - 1, (kw - 1) // 2))


def build_cases(seed):
    b = Builder(seed)
    # (name, x [B, C, H, W], weight [O, C, KH, KW], bias, dtype)
    specs = [
        ("k3", (2, 3, 5, 4), (4, 3, 2, 3), True, F32),        # a 3x3 filter's upper two rows
        ("k5", (2, 2, 7, 6), (3, 2, 3, 5), True, F32),        # 5x5
        ("k1", (2, 4, 3, 5), (3, 4, 1, 1), True, F32),        # 1x1: a pointwise convolution
        ("tall", (1, 3, 9, 3), (2, 3, 4, 3), False, F32),     # KH 4, no bias
        ("short_input", (2, 2, 2, 3), (2, 2, 3, 5), True, F32),  # fewer rows than KH, narrow W
        ("f64_k3", (2, 3, 6, 5), (2, 3, 2, 3), True, F64),
    ]
    for name, xs, ws, bias, dt in specs:
        inputs = [b.randn(*xs, dtype=dt), b.randn(*ws, dtype=dt)]
        if bias:
            inputs.append(b.randn(ws[0], dtype=dt))
        b.add("causal_conv2d_" + name, op_key("causal_conv2d", bias=bias), inputs, masked_conv)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20250301)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
