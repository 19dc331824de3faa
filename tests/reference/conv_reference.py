# PyTorch oracle cases for the convolution and pooling tests in tests/ops/test_conv.cc.
"""PyTorch oracle for attend's convolution and pooling ops and modules.

Run as `/usr/bin/python3 tests/reference/conv_reference.py --out FILE` (Debian's python3-torch).
The file format and the tensor names (x<i> inputs, y0 output, dy0 its cotangent, dx<i> the
gradient of sum(y0 * dy0) w.r.t. input i) are those of ops_reference.py, whose writer this
script reuses. tests/ops/test_conv.cc replays each case through attend and compares.

Op keys (parameters are comma-separated ints; bias=1 means input x2 is the bias):
  conv1d|stride=s|padding=p|dilation=d|groups=g|bias=0/1          x0 [B,C,L] x1 weight
  conv2d|stride=sh,sw|padding=ph,pw|dilation=dh,dw|groups=g|bias=0/1
  max_pool1d|kernel=k|stride=s|padding=p                          (and avg_pool1d, +cip=0/1)
  max_pool2d|kernel=kh,kw|stride=sh,sw|padding=ph,pw              (and avg_pool2d, +cip=0/1)
  adaptive_avg_pool2d|out=oh,ow      global_avg_pool|keepdim=0/1
  module_conv1d|in=..|out=..|kernel=..|stride=..|padding=..|dilation=..|groups=..|bias=0/1
  module_conv2d|... (the same, pairs for 2-D)    x1, x2: the module's weight and bias
  module_max_pool2d / module_avg_pool2d / module_global_avg_pool: as the functional keys
  cnn: a small Sequential CNN with cross-entropy (see cnn_case); x1.. its parameters in order,
       the last input the i64 targets.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # the pyenv python3 on PATH has no torch; Debian's /usr/bin/python3 does
    sys.exit("conv_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)

from ops_reference import generator_main, F32, F64, Builder, op_key  # noqa: E402

try:  # torch >= 2.0
    from torch.func import functional_call
except ImportError:  # Debian's torch 1.13
    from torch.nn.utils.stateless import functional_call


def pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def conv1d_cases(b):
    # (name, x shape, weight shape, stride, padding, dilation, groups, bias, dtype)
    specs = [
        ("basic", (2, 3, 10), (4, 3, 3), 1, 0, 1, 1, True, F32),
        ("stride2_pad1_k4", (2, 3, 11), (5, 3, 4), 2, 1, 1, 1, True, F32),
        ("dilation2_pad2", (3, 2, 13), (4, 2, 3), 1, 2, 2, 1, True, F32),
        ("stride3_dil2_pad3", (2, 3, 17), (3, 3, 3), 3, 3, 2, 1, True, F32),
        ("groups2_stride2", (2, 4, 9), (6, 2, 3), 2, 1, 1, 2, True, F32),
        ("no_bias_k5", (2, 3, 8), (2, 3, 5), 1, 0, 1, 1, False, F32),
        ("pointwise", (2, 5, 7), (3, 5, 1), 1, 0, 1, 1, True, F32),
        ("kernel_equals_padded_input", (2, 3, 3), (4, 3, 5), 1, 1, 1, 1, True, F32),
        ("f64_stride2_pad2", (2, 3, 12), (4, 3, 3), 2, 2, 1, 1, True, F64),
    ]
    for name, xs, ws, s, p, d, g, bias, dt in specs:
        inputs = [b.randn(*xs, dtype=dt), b.randn(*ws, dtype=dt)]
        if bias:
            inputs.append(b.randn(ws[0], dtype=dt))
        key = op_key("conv1d", stride=s, padding=p, dilation=d, groups=g, bias=bias)
        b.add("conv1d_" + name, key, inputs,
              lambda x, w, bb=None, s=s, p=p, d=d, g=g: F.conv1d(x, w, bb, s, p, d, g))
    # Unbatched [C, L].
    b.add("conv1d_unbatched",
          op_key("conv1d", stride=2, padding=1, dilation=1, groups=1, bias=True),
          [b.randn(3, 9), b.randn(4, 3, 3), b.randn(4)],
          lambda x, w, bb: F.conv1d(x, w, bb, 2, 1))


def conv2d_cases(b):
    specs = [
        ("basic_pad1", (2, 3, 7, 6), (4, 3, 3, 3), 1, 1, 1, 1, True, F32),
        ("stride2_odd", (2, 3, 9, 7), (5, 3, 3, 3), 2, 1, 1, 1, True, F32),
        ("stride2x3_pad1x2_k3x2", (2, 3, 9, 8), (5, 3, 3, 2), (2, 3), (1, 2), 1, 1, True, F32),
        ("dilation2x1_pad2x1", (2, 2, 11, 10), (3, 2, 3, 3), 1, (2, 1), (2, 1), 1, True, F32),
        ("stride2_dil2_pad3_k5", (3, 3, 13, 11), (4, 3, 5, 5), 2, 3, 2, 1, True, F32),
        ("groups3", (2, 6, 7, 7), (9, 2, 3, 3), 1, 1, 1, 3, True, F32),
        ("depthwise_stride2", (2, 4, 8, 9), (4, 1, 3, 3), 2, 1, 1, 4, True, F32),
        ("pointwise", (2, 5, 6, 7), (3, 5, 1, 1), 1, 0, 1, 1, True, F32),
        ("1x1_stride2", (2, 5, 7, 6), (3, 5, 1, 1), 2, 0, 1, 1, True, F32),
        ("1x1_pad1", (2, 5, 4, 3), (3, 5, 1, 1), 1, 1, 1, 1, True, F32),
        ("no_bias", (2, 3, 6, 5), (4, 3, 2, 3), 1, 0, 1, 1, False, F32),
        ("kernel_equals_padded_input", (2, 3, 3, 4), (4, 3, 5, 4), 1, (1, 0), 1, 1, True, F32),
        # Enough work to split the images over threads, and one image with bigger GEMMs that
        # OpenBLAS threads itself (see ImageThreads in src/ops/conv.cc).
        ("threaded_batch", (4, 16, 20, 20), (32, 16, 3, 3), 1, 1, 1, 1, True, F32),
        ("single_big_image", (1, 32, 40, 40), (64, 32, 3, 3), 1, 1, 1, 1, True, F32),
        ("f64_stride2_pad1", (2, 3, 9, 8), (4, 3, 3, 3), 2, 1, 1, 1, True, F64),
        ("f64_groups2_dil2", (2, 4, 9, 9), (6, 2, 3, 3), 1, 2, 2, 2, True, F64),
    ]
    for name, xs, ws, s, p, d, g, bias, dt in specs:
        inputs = [b.randn(*xs, dtype=dt), b.randn(*ws, dtype=dt)]
        if bias:
            inputs.append(b.randn(ws[0], dtype=dt))
        key = op_key("conv2d", stride=pair(s), padding=pair(p), dilation=pair(d), groups=g,
                     bias=bias)
        b.add("conv2d_" + name, key, inputs,
              lambda x, w, bb=None, s=s, p=p, d=d, g=g: F.conv2d(x, w, bb, s, p, d, g))
    b.add("conv2d_unbatched",
          op_key("conv2d", stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1, bias=True),
          [b.randn(3, 8, 8), b.randn(4, 3, 3, 3), b.randn(4)],
          lambda x, w, bb: F.conv2d(x, w, bb, 1, 1))


def pool_cases(b):
    # 1-D: (name, x shape, kernel, stride, padding)
    specs1 = [
        ("k2", (2, 3, 10), 2, None, 0),
        ("k3_s2_p1", (2, 3, 11), 3, 2, 1),
        ("k4_s1_p2", (2, 2, 9), 4, 1, 2),
        ("unbatched_k3_s2", (3, 12), 3, 2, 0),
    ]
    for name, xs, k, s, p in specs1:
        stride = k if s is None else s
        b.add("max_pool1d_" + name, op_key("max_pool1d", kernel=k, stride=stride, padding=p),
              [b.randn(*xs)], lambda x, k=k, s=stride, p=p: F.max_pool1d(x, k, s, p))
        for cip in (True, False):
            b.add("avg_pool1d_%s_cip%d" % (name, cip),
                  op_key("avg_pool1d", kernel=k, stride=stride, padding=p, cip=cip),
                  [b.randn(*xs)],
                  lambda x, k=k, s=stride, p=p, c=cip: F.avg_pool1d(x, k, s, p, False, c))

    # 2-D: (name, x shape, kernel, stride, padding, dtype)
    specs2 = [
        ("k2", (2, 3, 8, 8), 2, None, 0, F32),
        ("k2_odd_9x7", (2, 3, 9, 7), 2, None, 0, F32),
        ("k3_s2_p1", (2, 3, 9, 10), 3, 2, 1, F32),
        ("k3x2_s1x2_p1x0", (2, 2, 7, 8), (3, 2), (1, 2), (1, 0), F32),
        ("k2_s1", (1, 2, 5, 6), 2, 1, 0, F32),
        ("k5x3_s2x1_p2x1", (2, 2, 11, 6), (5, 3), (2, 1), (2, 1), F32),
        ("unbatched_k2", (3, 6, 6), 2, None, 0, F32),
        ("big_threaded_k2", (8, 16, 32, 32), 2, None, 0, F32),
        # 31 outputs per row: one 16-lane vector, one of 8, one of 4, three scalars; odd width.
        ("k2_wide_63", (2, 3, 6, 63), 2, None, 0, F32),
        ("f64_k3_s2_p1", (2, 3, 9, 8), 3, 2, 1, F64),
    ]
    for name, xs, k, s, p, dt in specs2:
        stride = k if s is None else s
        key_args = dict(kernel=pair(k), stride=pair(stride), padding=pair(p))
        b.add("max_pool2d_" + name, op_key("max_pool2d", **key_args), [b.randn(*xs, dtype=dt)],
              lambda x, k=k, s=stride, p=p: F.max_pool2d(x, k, s, p))
        for cip in (True, False):
            b.add("avg_pool2d_%s_cip%d" % (name, cip), op_key("avg_pool2d", cip=cip, **key_args),
                  [b.randn(*xs, dtype=dt)],
                  lambda x, k=k, s=stride, p=p, c=cip: F.avg_pool2d(x, k, s, p, False, c))

    # Ties: integer values repeat within windows; torch sends the gradient to the first maximum.
    b.add("max_pool2d_ties_k2", op_key("max_pool2d", kernel=[2, 2], stride=[2, 2], padding=[0, 0]),
          [b.small_ints(2, 3, 8, 6, lo=-1, hi=2)], lambda x: F.max_pool2d(x, 2))
    b.add("max_pool2d_ties_k2_wide", op_key("max_pool2d", kernel=[2, 2], stride=[2, 2],
                                            padding=[0, 0]),
          [b.small_ints(2, 2, 4, 62, lo=-1, hi=2)], lambda x: F.max_pool2d(x, 2))
    b.add("max_pool2d_ties_k3_s2_p1",
          op_key("max_pool2d", kernel=[3, 3], stride=[2, 2], padding=[1, 1]),
          [b.small_ints(2, 3, 7, 9, lo=-1, hi=2)], lambda x: F.max_pool2d(x, 3, 2, 1))
    b.add("max_pool1d_ties_k3_s1_p1", op_key("max_pool1d", kernel=3, stride=1, padding=1),
          [b.small_ints(2, 3, 10, lo=-1, hi=2)], lambda x: F.max_pool1d(x, 3, 1, 1))

    for name, xs, out in [("1x1", (2, 3, 5, 4), (1, 1)), ("7x5_to_3x2", (2, 3, 7, 5), (3, 2)),
                          ("8x8_to_4x4", (2, 2, 8, 8), (4, 4)),
                          ("4x3_to_5x4_overlapping", (2, 2, 4, 3), (5, 4)),
                          ("unbatched_6x6_to_4x3", (3, 6, 6), (4, 3))]:
        b.add("adaptive_avg_pool2d_" + name, op_key("adaptive_avg_pool2d", out=list(out)),
              [b.randn(*xs)], lambda x, out=out: F.adaptive_avg_pool2d(x, out))
    b.add("adaptive_avg_pool2d_f64", op_key("adaptive_avg_pool2d", out=[2, 3]),
          [b.randn(2, 3, 7, 8, dtype=F64)], lambda x: F.adaptive_avg_pool2d(x, (2, 3)))

    for keepdim in (False, True):
        b.add("global_avg_pool_2d_keepdim%d" % keepdim, op_key("global_avg_pool", keepdim=keepdim),
              [b.randn(2, 3, 5, 4)], lambda x, kd=keepdim: x.mean(dim=(2, 3), keepdim=kd))
    b.add("global_avg_pool_1d", op_key("global_avg_pool", keepdim=False), [b.randn(2, 3, 7)],
          lambda x: x.mean(dim=2))


def module_cases(b):
    """The torch modules themselves, run with the recorded weights (functional_call)."""
    torch.manual_seed(5)
    for name, args, kw, xs in [
        ("conv2d_s2_p1", (3, 4, 3), dict(stride=2, padding=1), (2, 3, 9, 8)),
        ("conv2d_k3x2_dil2_groups2", (4, 6, (3, 2)), dict(dilation=2, groups=2, padding=(2, 1)),
         (2, 4, 8, 7)),
        ("conv2d_nobias", (3, 5, 2), dict(bias=False), (2, 3, 6, 6)),
    ]:
        m = nn.Conv2d(*args, **kw)
        key = op_key("module_conv2d", **{"in": m.in_channels}, out=m.out_channels,
                     kernel=list(m.kernel_size), stride=list(m.stride), padding=list(m.padding),
                     dilation=list(m.dilation), groups=m.groups, bias=m.bias is not None)
        add_module_case(b, "module_" + name, key, m, xs)
    for name, args, kw, xs in [
        ("conv1d_s2_p1", (3, 4, 3), dict(stride=2, padding=1), (2, 3, 11)),
        ("conv1d_dil3_groups3", (3, 6, 2), dict(dilation=3, groups=3), (2, 3, 10)),
    ]:
        m = nn.Conv1d(*args, **kw)
        key = op_key("module_conv1d", **{"in": m.in_channels}, out=m.out_channels,
                     kernel=m.kernel_size[0], stride=m.stride[0], padding=m.padding[0],
                     dilation=m.dilation[0], groups=m.groups, bias=m.bias is not None)
        add_module_case(b, "module_" + name, key, m, xs)
    b.add("module_max_pool2d_k3_s2_p1",
          op_key("module_max_pool2d", kernel=[3, 3], stride=[2, 2], padding=[1, 1]),
          [b.randn(2, 3, 9, 8)], nn.MaxPool2d(3, 2, 1))
    b.add("module_avg_pool2d_k2_s1_cip0",
          op_key("module_avg_pool2d", kernel=[2, 2], stride=[1, 1], padding=[1, 1], cip=False),
          [b.randn(2, 3, 5, 6)], nn.AvgPool2d(2, 1, 1, count_include_pad=False))
    b.add("module_global_avg_pool", op_key("module_global_avg_pool", keepdim=False),
          [b.randn(2, 3, 5, 6)], nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))


def add_module_case(b, name, key, m, xs):
    params = [(n, p.detach().clone()) for n, p in m.named_parameters()]
    names = [n for n, _ in params]

    def run(x, *ps):
        return functional_call(m, dict(zip(names, ps)), (x,))

    b.add(name, key, [b.randn(*xs)] + [p for _, p in params], run)


def cnn_case(b):
    """Conv(3->4, 3x3, pad 1) + ReLU, MaxPool 2, Conv(4->6, 3x3, stride 2, pad 1) + ReLU,
    AvgPool 2 stride 1, GlobalAvgPool, Linear(6->5), cross-entropy: outputs and every gradient."""
    torch.manual_seed(11)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))
    params = [(n, p.detach().clone()) for n, p in model.named_parameters()]
    names = [n for n, _ in params]
    target = b.randint(0, 5, 3)

    def run(x, *rest):
        ps, t = rest[:-1], rest[-1]
        logits = functional_call(model, dict(zip(names, ps)), (x,))
        return F.cross_entropy(logits, t)

    b.add("cnn_sequential_cross_entropy", "cnn", [b.randn(3, 3, 12, 10)] +
          [p for _, p in params] + [target], run)


def build_cases(seed):
    b = Builder(seed)
    for family in (conv1d_cases, conv2d_cases, pool_cases, module_cases, cnn_case):
        family(b)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20240711)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
