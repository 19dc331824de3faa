# PyTorch oracle cases for tests/ops/test_torch_reference.cc: inputs, outputs and gradients per op.
"""PyTorch oracle for attend's ops: writes every case's inputs, outputs and gradients to a file.

Run as `/usr/bin/python3 tests/reference/ops_reference.py --out FILE` (Debian's python3-torch).
tests/ops/test_torch_reference.cc replays each case through attend and compares.

File format, version 1, all integers little-endian:
  magic     8 bytes  b"ATNDREF\\0"
  version   u32      1
  cases     u32      number of cases
  per case:
    tag     4 bytes  b"CASE"
    name    str      e.g. "softmax_dim1_mask"
    op      str      op key and parameters: "sum|dims=0,2|keepdim=1"
    count   u32      number of tensors
    per tensor:
      name  str      x<i> input i, y<i> output i, dy<i> cotangent of output i,
                     dx<i> gradient of sum(y*dy) w.r.t. input i (floating inputs only)
      dtype u8       0 f32, 1 f64, 2 i64, 3 bool (one byte, 0 or 1)
      ndim  u8       0..8
      dims  i64[ndim]
      bytes u64      numel * element size (redundant, so corruption is caught)
      data  bytes    row-major, contiguous
  end       8 bytes  b"ATNDEND\\0"
  str = u32 length + UTF-8 bytes.

An op parameter `tr=i,j` means inputs i and j are stored transposed (last two dims swapped): the
test applies .Transpose(-2, -1) before the op so the op sees a non-contiguous view, and dx<i> is
the gradient w.r.t. the stored tensor.
"""

import argparse
import os
import struct
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the pyenv python3 on PATH has no torch; Debian's /usr/bin/python3 does
    sys.exit("ops_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)

MAGIC = b"ATNDREF\0"
END_MAGIC = b"ATNDEND\0"
CASE_TAG = b"CASE"
VERSION = 1
DTYPE_CODES = {torch.float32: 0, torch.float64: 1, torch.int64: 2, torch.bool: 3}
NUMPY_LE = {torch.float32: "<f4", torch.float64: "<f8", torch.int64: "<i8", torch.bool: "|b1"}

F32 = torch.float32
F64 = torch.float64


def _fmt(v):
    """Formats a parameter value: lists comma-separated, bools as 0/1, floats round-trip exact."""
    if isinstance(v, (list, tuple)):
        return ",".join(_fmt(e) for e in v)
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, str):
        if any(ch in v for ch in "|=,"):
            raise ValueError("parameter value with a separator: " + v)
        return v
    return repr(v)


def op_key(name, **params):
    parts = [name]
    for k, v in params.items():
        if v is None:
            continue
        parts.append("%s=%s" % (k, _fmt(v)))
    return "|".join(parts)


class Builder:
    def __init__(self, seed):
        self.gen = torch.Generator().manual_seed(seed)
        self.cases = []
        self.names = set()

    # ---- input generators (all draws go through one seeded generator) ----
    def randn(self, *shape, dtype=F32, scale=1.0, offset=0.0):
        x = torch.randn(shape, generator=self.gen, dtype=F64) * scale + offset
        return x.to(dtype)

    def positive(self, *shape, dtype=F32, lo=0.2, hi=3.0):
        x = torch.rand(shape, generator=self.gen, dtype=F64) * (hi - lo) + lo
        return x.to(dtype)

    def away_from_zero(self, *shape, dtype=F32, lo=0.3, hi=2.0):
        """Values with |x| in [lo, hi): safe divisors, and no kinks of abs/relu hit."""
        mag = self.positive(*shape, dtype=F64, lo=lo, hi=hi)
        sign = torch.where(torch.rand(shape, generator=self.gen) < 0.5, -1.0, 1.0).to(F64)
        return (mag * sign).to(dtype)

    def small_ints(self, *shape, dtype=F32, lo=-2, hi=3):
        """Integer-valued floats: many exact ties and equalities."""
        return torch.randint(lo, hi, shape, generator=self.gen).to(dtype)

    def randint(self, lo, hi, *shape):
        return torch.randint(lo, hi, shape, generator=self.gen, dtype=torch.int64)

    def mask(self, *shape, p=0.3):
        return torch.rand(shape, generator=self.gen) < p

    def distinct(self, *shape, dtype=F32):
        """A random permutation of well-separated values: no ties anywhere (for topk)."""
        n = 1
        for s in shape:
            n *= s
        perm = torch.randperm(n, generator=self.gen).to(F64)
        return ((perm - n / 2) * 0.25).reshape(shape).to(dtype)

    # ---- case recording ----
    def add(self, name, op, inputs, fn, tr=(), exact=False):
        """Runs fn on the inputs (transposing those listed in tr) and records outputs and grads.

        exact: compute in float64 from the (float32) inputs and record the results rounded to
        float32: the oracle for cases built to probe float32 precision, where PyTorch's own
        float32 result is itself further from the exact value than the tolerance."""
        if name in self.names:
            raise ValueError("duplicate case name " + name)
        self.names.add(name)
        if tr:
            op = op + "|tr=" + _fmt(list(tr))
        leaves = []
        for t in inputs:
            leaf = t.detach().clone()
            if exact and leaf.is_floating_point():
                leaf = leaf.to(F64)
            if leaf.is_floating_point():
                leaf.requires_grad_(True)
            leaves.append(leaf)
        effective = [l.transpose(-2, -1) if i in tr else l for i, l in enumerate(leaves)]
        outs = fn(*effective)
        if isinstance(outs, torch.Tensor):
            outs = [outs]
        outs = list(outs)
        # The dtype each recorded tensor has (its input's, when computed exactly in float64).
        dtype_of = (lambda t: inputs[0].dtype) if exact else (lambda t: t.dtype)

        tensors = [("x%d" % i, t.detach()) for i, t in enumerate(inputs)]
        tensors += [("y%d" % i, o.detach().to(dtype_of(o))) for i, o in enumerate(outs)]
        roots, cots = [], []
        for i, o in enumerate(outs):
            if o.is_floating_point() and o.requires_grad:
                cot = self.randn(*o.shape, dtype=dtype_of(o))
                tensors.append(("dy%d" % i, cot))
                roots.append(o)
                cots.append(cot.to(o.dtype))
        if roots:
            torch.autograd.backward(roots, cots)
            for i, l in enumerate(leaves):
                if l.requires_grad:
                    g = l.grad if l.grad is not None else torch.zeros_like(l)
                    tensors.append(("dx%d" % i, g.detach().to(dtype_of(g))))
        self.cases.append((name, op, tensors))


def _write_str(f, s):
    b = s.encode("utf-8")
    f.write(struct.pack("<I", len(b)))
    f.write(b)


def _write_tensor(f, name, t):
    t = t.detach().contiguous()
    _write_str(f, name)
    f.write(struct.pack("<BB", DTYPE_CODES[t.dtype], t.dim()))
    for d in t.shape:
        f.write(struct.pack("<q", d))
    data = t.numpy().astype(NUMPY_LE[t.dtype], copy=False).tobytes()
    f.write(struct.pack("<Q", len(data)))
    f.write(data)


def write_file(path, cases):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<II", VERSION, len(cases)))
        for name, op, tensors in cases:
            f.write(CASE_TAG)
            _write_str(f, name)
            _write_str(f, op)
            f.write(struct.pack("<I", len(tensors)))
            for tname, t in tensors:
                _write_tensor(f, tname, t)
        f.write(END_MAGIC)
    # Readers never see a half-written file.
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# The cases, one function per op family.
# ---------------------------------------------------------------------------------------------


def all_dims(x):
    return tuple(range(x.dim()))


def arithmetic_cases(b):
    shapes = [
        ("same", (3, 5), (3, 5)),
        ("bcast_315_41", (3, 1, 5), (4, 1)),
        ("bcast_23_3", (2, 3), (3,)),
        ("bcast_3_23", (3,), (2, 3)),
        ("bcast_scalar_rhs", (3, 5), ()),
        ("bcast_scalar_lhs", (), (5, 3)),
        ("scalar_scalar", (), ()),
        ("bcast_517_131", (5, 1, 7), (1, 3, 1)),
        ("big_37x29", (37, 29), (37, 29)),
    ]
    fns = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}
    for op, fn in fns.items():
        for tag, sa, sb in shapes:
            x = b.randn(*sa)
            y = b.away_from_zero(*sb) if op == "div" else b.randn(*sb)
            b.add("%s_%s" % (op, tag), op, [x, y], fn)
        # A non-contiguous left operand (stored [5,3], used as its [3,5] transpose).
        y = b.away_from_zero(3, 5) if op == "div" else b.randn(3, 5)
        b.add("%s_transposed_lhs" % op, op, [b.randn(5, 3), y], fn, tr=(0,))
        y = b.away_from_zero(4, 1, 7, dtype=F64) if op == "div" else b.randn(4, 1, 7, dtype=F64)
        b.add("%s_f64_bcast" % op, op, [b.randn(3, 7, dtype=F64), y], fn)

    for s in (2.5, -0.75):
        b.add("add_scalar_%g" % s, op_key("add_scalar", s=s), [b.randn(3, 5)],
              lambda x, s=s: x + s)
        b.add("mul_scalar_%g" % s, op_key("mul_scalar", s=s), [b.randn(3, 5)],
              lambda x, s=s: x * s)
    b.add("add_scalar_f64", op_key("add_scalar", s=1.25), [b.randn(7, dtype=F64)],
          lambda x: x + 1.25)
    b.add("mul_scalar_f64", op_key("mul_scalar", s=-3.5), [b.randn(7, dtype=F64)],
          lambda x: x * -3.5)
    # The double-on-the-left and scalar operators of tensor.h.
    b.add("operator_scalar_minus_tensor", op_key("rsub_scalar", s=2.0), [b.randn(3, 5)],
          lambda x: 2.0 - x)
    b.add("operator_scalar_div_tensor", op_key("rdiv_scalar", s=3.0), [b.away_from_zero(3, 5)],
          lambda x: 3.0 / x)
    b.add("operator_tensor_minus_scalar", op_key("sub_scalar", s=0.5), [b.randn(3, 5)],
          lambda x: x - 0.5)
    b.add("operator_tensor_div_scalar", op_key("div_scalar", s=-4.0), [b.randn(3, 5)],
          lambda x: x / -4.0)
    b.add("neg", "neg", [b.randn(3, 5)], torch.neg)
    b.add("neg_f64", "neg", [b.randn(5, 3, dtype=F64)], torch.neg)
    b.add("operator_unary_minus", "neg_operator", [b.randn(7)], lambda x: -x)


def unary_math_cases(b):
    for p in (2.0, 3.0):
        b.add("pow_%g_signed" % p, op_key("pow", p=p), [b.randn(3, 5)], lambda x, p=p: x ** p)
    for p in (0.5, 2.5, -1.5, 1.0 / 3.0):
        b.add("pow_%g_positive" % p, op_key("pow", p=p), [b.positive(5, 7)],
              lambda x, p=p: x ** p)
    b.add("pow_f64_2.5", op_key("pow", p=2.5), [b.positive(3, 5, dtype=F64)], lambda x: x ** 2.5)
    b.add("abs", "abs", [b.away_from_zero(3, 5)], torch.abs)
    b.add("abs_f64", "abs", [b.away_from_zero(13, dtype=F64)], torch.abs)
    b.add("exp", "exp", [b.randn(3, 5)], torch.exp)
    b.add("exp_wide_37x29", "exp", [b.randn(37, 29, scale=3.0)], torch.exp)
    b.add("exp_f64", "exp", [b.randn(5, 3, dtype=F64)], torch.exp)
    b.add("exp_transposed", "exp", [b.randn(7, 5)], torch.exp, tr=(0,))
    b.add("log", "log", [b.positive(3, 5, lo=0.05, hi=5.0)], torch.log)
    b.add("log_wide_37x29", "log", [b.positive(37, 29, lo=0.01, hi=50.0)], torch.log)
    b.add("log_f64", "log", [b.positive(7, dtype=F64)], torch.log)
    b.add("sqrt", "sqrt", [b.positive(3, 5)], torch.sqrt)
    b.add("sqrt_f64", "sqrt", [b.positive(3, 5, dtype=F64)], torch.sqrt)
    b.add("rsqrt", "rsqrt", [b.positive(3, 5)], torch.rsqrt)
    b.add("rsqrt_wide_37x29", "rsqrt", [b.positive(37, 29)], torch.rsqrt)
    b.add("rsqrt_f64", "rsqrt", [b.positive(13, dtype=F64)], torch.rsqrt)


def activation_cases(b):
    acts = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "gelu": F.gelu}
    for op, fn in acts.items():
        make = b.away_from_zero if op == "relu" else b.randn
        b.add(op, op, [make(3, 5)], fn)
        b.add(op + "_wide_37x29", op, [make(37, 29, **({} if op == "relu" else {"scale": 3.0}))],
              fn)
        b.add(op + "_f64", op, [make(5, 7, dtype=F64)], fn)
        b.add(op + "_transposed", op, [make(7, 3)], fn, tr=(0,))
    b.add("clamp_lo", op_key("clamp", lo=-0.5), [b.randn(5, 7)], lambda x: torch.clamp(x, min=-0.5))
    b.add("clamp_hi", op_key("clamp", hi=0.25), [b.randn(5, 7)], lambda x: torch.clamp(x, max=0.25))
    b.add("clamp_both", op_key("clamp", lo=-0.75, hi=0.5), [b.randn(5, 7)],
          lambda x: torch.clamp(x, min=-0.75, max=0.5))
    b.add("clamp_both_f64", op_key("clamp", lo=-1.0, hi=1.0), [b.randn(13, dtype=F64)],
          lambda x: torch.clamp(x, min=-1.0, max=1.0))


def comparison_cases(b):
    fns = {"eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt,
           "ge": torch.ge}
    for op, fn in fns.items():
        # Integer-valued floats so equality actually occurs.
        b.add(op + "_same", op, [b.small_ints(3, 5), b.small_ints(3, 5)], fn)
        b.add(op + "_bcast", op, [b.small_ints(3, 1, 5), b.small_ints(4, 1)], fn)
    b.add("eq_f64_scalar", "eq", [b.small_ints(5, 3, dtype=F64), b.small_ints(dtype=F64)], torch.eq)
    b.add("lt_i64", "lt", [b.randint(-3, 3, 5, 3), b.randint(-3, 3, 3)], torch.lt)
    b.add("logical_not", "logical_not", [b.mask(3, 5, p=0.5)], torch.logical_not)


def selection_cases(b):
    b.add("where_same", "where", [b.mask(3, 5, p=0.5), b.randn(3, 5), b.randn(3, 5)], torch.where)
    b.add("where_bcast", "where",
          [b.mask(3, 1, 5, p=0.5), b.randn(4, 1), b.randn(1, 4, 5)], torch.where)
    b.add("where_bcast_scalar_branch", "where", [b.mask(5, 7, p=0.5), b.randn(5, 7), b.randn()],
          torch.where)
    b.add("where_f64", "where", [b.mask(7, p=0.5), b.randn(3, 7, dtype=F64), b.randn(7, dtype=F64)],
          torch.where)
    b.add("masked_fill_same", op_key("masked_fill", value=-1.5), [b.randn(3, 5), b.mask(3, 5)],
          lambda x, m: x.masked_fill(m, -1.5))
    b.add("masked_fill_bcast", op_key("masked_fill", value=2.0), [b.randn(3, 5, 7), b.mask(5, 1)],
          lambda x, m: x.masked_fill(m, 2.0))
    b.add("masked_fill_bcast_last", op_key("masked_fill", value=0.0), [b.randn(3, 5, 7), b.mask(7)],
          lambda x, m: x.masked_fill(m, 0.0))
    b.add("masked_fill_f64", op_key("masked_fill", value=-7.25),
          [b.randn(5, 3, dtype=F64), b.mask(1, 3)], lambda x, m: x.masked_fill(m, -7.25))


def reduction_cases(b):
    fns = {
        "sum": lambda x, d, k: torch.sum(x, dim=d, keepdim=k),
        "mean": lambda x, d, k: torch.mean(x, dim=d, keepdim=k),
        "max": lambda x, d, k: torch.amax(x, dim=d, keepdim=k),
        "min": lambda x, d, k: torch.amin(x, dim=d, keepdim=k),
    }
    dim_sets = [("d0", [0]), ("d1", [1]), ("dneg1", [-1]), ("d0_2", [0, 2]), ("d0_dneg1", [0, -1]),
                ("all", [])]
    for op, fn in fns.items():
        for tag, dims in dim_sets:
            for keep in (False, True):
                x = b.randn(3, 5, 7)
                real = tuple(dims) if dims else all_dims(x)
                b.add("%s_%s_keep%d" % (op, tag, keep), op_key(op, dims=dims, keepdim=keep), [x],
                      lambda x, fn=fn, real=real, keep=keep: fn(x, real, keep))
        b.add(op + "_transposed_d1", op_key(op, dims=[1], keepdim=False), [b.randn(7, 5)],
              lambda x, fn=fn: fn(x, (1,), False), tr=(0,))
        b.add(op + "_f64_d0_2", op_key(op, dims=[0, 2], keepdim=False),
              [b.randn(5, 3, 7, dtype=F64)],
              lambda x, fn=fn: fn(x, (0, 2), False))
        b.add(op + "_wide_d1", op_key(op, dims=[1], keepdim=False), [b.randn(13, 129)],
              lambda x, fn=fn: fn(x, (1,), False))
        b.add(op + "_4d_d1_3", op_key(op, dims=[1, 3], keepdim=True), [b.randn(2, 3, 5, 7)],
              lambda x, fn=fn: fn(x, (1, 3), True))
        b.add(op + "_1d_all", op_key(op, dims=[], keepdim=False), [b.randn(13)],
              lambda x, fn=fn: fn(x, (0,), False))
    # Ties: integer-valued inputs, amax/amin share the gradient equally between equal maxima.
    for op in ("max", "min"):
        fn = fns[op]
        b.add(op + "_ties_d1", op_key(op, dims=[1], keepdim=False), [b.small_ints(5, 7)],
              lambda x, fn=fn: fn(x, (1,), False))
        b.add(op + "_ties_all", op_key(op, dims=[], keepdim=False),
              [b.small_ints(3, 5, lo=0, hi=2)],
              lambda x, fn=fn: fn(x, (0, 1), False))


def variance_cases(b):
    dim_sets = [("d0", [0]), ("dneg1", [-1]), ("d0_2", [0, 2]), ("all", [])]
    for corr in (0, 1):
        for tag, dims in dim_sets:
            for keep in (False, True):
                x = b.randn(3, 5, 7)
                real = tuple(dims) if dims else all_dims(x)
                b.add("var_c%d_%s_keep%d" % (corr, tag, keep),
                      op_key("var", dims=dims, correction=corr, keepdim=keep), [x],
                      lambda x, real=real, keep=keep, corr=corr:
                      torch.var(x, dim=real, unbiased=bool(corr), keepdim=keep))
        b.add("var_c%d_f64_d1" % corr, op_key("var", dims=[1], correction=corr, keepdim=False),
              [b.randn(5, 13, dtype=F64)],
              lambda x, corr=corr: torch.var(x, dim=1, unbiased=bool(corr)))
    b.add("var_c1_transposed_d1", op_key("var", dims=[1], correction=1, keepdim=False),
          [b.randn(7, 5)], lambda x: torch.var(x, dim=1), tr=(0,))
    # Mean far from zero: a one-pass E[x^2]-E[x]^2 loses the variance in float32.
    b.add("var_c1_offset50_d1", op_key("var", dims=[1], correction=1, keepdim=False),
          [b.randn(5, 13, offset=50.0)], lambda x: torch.var(x, dim=1))


def arg_reduction_cases(b):
    for op, fn in (("argmax", torch.argmax), ("argmin", torch.argmin)):
        for dim in (0, 1, -1):
            for keep in (False, True):
                b.add("%s_d%d_keep%d" % (op, dim, keep), op_key(op, dim=dim, keepdim=keep),
                      [b.randn(3, 5, 7)], lambda x, fn=fn, dim=dim, keep=keep: fn(x, dim, keep))
        # Ties: the first extremum wins.
        b.add(op + "_ties_d1", op_key(op, dim=1, keepdim=False), [b.small_ints(5, 13)],
              lambda x, fn=fn: fn(x, 1, False))
        b.add(op + "_f64_d0", op_key(op, dim=0, keepdim=False), [b.randn(7, 3, dtype=F64)],
              lambda x, fn=fn: fn(x, 0, False))
        b.add(op + "_1d", op_key(op, dim=0, keepdim=False), [b.randn(13)],
              lambda x, fn=fn: fn(x, 0, False))


def matmul_cases(b):
    mm = torch.matmul
    specs = [
        ("1d_2d", (4,), (4, 6)),
        ("2d_1d", (3, 4), (4,)),
        ("1d_1d", (5,), (5,)),
        ("2d_2d", (3, 4), (4, 5)),
        ("2d_2d_odd", (7, 13), (13, 5)),
        ("2d_2d_k64", (17, 64), (64, 19)),
        ("batched_same", (3, 5, 7), (3, 7, 2)),
        ("batched_bcast_2134_546", (2, 1, 3, 4), (5, 4, 6)),
        ("batched_lhs_2d_rhs", (2, 3, 4), (4, 5)),
        ("2d_lhs_batched_rhs", (3, 4), (2, 4, 5)),
        ("batched_1d_rhs", (2, 3, 4), (4,)),
        ("1d_lhs_batched", (4,), (2, 4, 5)),
    ]
    for tag, sa, sb in specs:
        b.add("matmul_" + tag, "matmul", [b.randn(*sa), b.randn(*sb)], mm)
    # Transposed (non-contiguous) operands: the stored tensors are the transposes.
    b.add("matmul_2d_lhs_transposed", "matmul", [b.randn(4, 3), b.randn(4, 5)], mm, tr=(0,))
    b.add("matmul_2d_rhs_transposed", "matmul", [b.randn(3, 4), b.randn(5, 4)], mm, tr=(1,))
    b.add("matmul_2d_both_transposed", "matmul", [b.randn(13, 7), b.randn(5, 13)], mm, tr=(0, 1))
    b.add("matmul_batched_both_transposed", "matmul", [b.randn(3, 7, 5), b.randn(3, 2, 7)], mm,
          tr=(0, 1))
    b.add("matmul_bcast_rhs_transposed", "matmul", [b.randn(2, 1, 3, 4), b.randn(5, 6, 4)], mm,
          tr=(1,))
    # float64
    b.add("matmul_f64_2d_2d", "matmul", [b.randn(7, 13, dtype=F64), b.randn(13, 5, dtype=F64)], mm)
    b.add("matmul_f64_batched_bcast", "matmul",
          [b.randn(2, 1, 3, 4, dtype=F64), b.randn(5, 4, 6, dtype=F64)], mm)
    b.add("matmul_f64_1d_2d", "matmul", [b.randn(5, dtype=F64), b.randn(5, 3, dtype=F64)], mm)
    b.add("matmul_f64_lhs_transposed", "matmul",
          [b.randn(4, 3, dtype=F64), b.randn(4, 5, dtype=F64)], mm, tr=(0,))


def _softmax_mask(b, x_shape, mask_shape, dim):
    """A random mask (true = excluded) with at least one kept position in every softmax row."""
    m = b.mask(*mask_shape, p=0.4)
    nd = len(x_shape)
    d = dim % nd
    md = d - (nd - len(mask_shape))
    assert md >= 0 and mask_shape[md] == x_shape[d], "mask must span the softmax dim"
    keep_shape = list(mask_shape)
    keep_shape[md] = 1
    idx = b.randint(0, mask_shape[md], *keep_shape)
    return m.scatter(md, idx, False)


def softmax_cases(b):
    def masked(fn):
        return lambda x, m, dim: fn(x.masked_fill(m, float("-inf")), dim)

    for op, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
        for dim in (0, 1, -1):
            b.add("%s_dim%d" % (op, dim), op_key(op, dim=dim), [b.randn(3, 5, 7)],
                  lambda x, fn=fn, dim=dim: fn(x, dim))
            mask = _softmax_mask(b, (3, 5, 7), (3, 5, 7), dim)
            b.add("%s_dim%d_mask" % (op, dim), op_key(op, dim=dim), [b.randn(3, 5, 7), mask],
                  lambda x, m, fn=fn, dim=dim: masked(fn)(x, m, dim))
        # Masks that broadcast over the non-softmax dims.
        mask = _softmax_mask(b, (3, 5, 7), (7,), -1)
        b.add(op + "_dimneg1_mask_bcast_7", op_key(op, dim=-1), [b.randn(3, 5, 7), mask],
              lambda x, m, fn=fn: masked(fn)(x, m, -1))
        mask = _softmax_mask(b, (3, 5, 7), (3, 1, 7), -1)
        b.add(op + "_dimneg1_mask_bcast_317", op_key(op, dim=-1), [b.randn(3, 5, 7), mask],
              lambda x, m, fn=fn: masked(fn)(x, m, -1))
        mask = _softmax_mask(b, (3, 5, 7), (5, 1), 1)
        b.add(op + "_dim1_mask_bcast_51", op_key(op, dim=1), [b.randn(3, 5, 7), mask],
              lambda x, m, fn=fn: masked(fn)(x, m, 1))
        # Large logits: needs the max subtracted.
        b.add(op + "_large_logits", op_key(op, dim=-1), [b.randn(5, 13, scale=40.0)],
              lambda x, fn=fn: fn(x, -1))
        b.add(op + "_transposed", op_key(op, dim=-1), [b.randn(7, 5)],
              lambda x, fn=fn: fn(x, -1), tr=(0,))
        b.add(op + "_wide_129", op_key(op, dim=-1), [b.randn(3, 129)], lambda x, fn=fn: fn(x, -1))
        b.add(op + "_f64_dim1", op_key(op, dim=1), [b.randn(3, 5, 7, dtype=F64)],
              lambda x, fn=fn: fn(x, 1))
        mask = _softmax_mask(b, (5, 7), (5, 7), -1)
        b.add(op + "_f64_mask", op_key(op, dim=-1), [b.randn(5, 7, dtype=F64), mask],
              lambda x, m, fn=fn: masked(fn)(x, m, -1))


def layer_norm_cases(b):
    def ln(nd, x, w=None, bias=None, eps=1e-5):
        return F.layer_norm(x, x.shape[x.dim() - nd:], w, bias, eps)

    x_shape = (3, 5, 7)
    for nd in (1, 2):
        ns = x_shape[3 - nd:]
        b.add("layer_norm_nd%d_plain" % nd, op_key("layer_norm", nd=nd, w=0, b=0),
              [b.randn(*x_shape)], lambda x, nd=nd: ln(nd, x))
        b.add("layer_norm_nd%d_affine" % nd, op_key("layer_norm", nd=nd, w=1, b=1),
              [b.randn(*x_shape), b.randn(*ns), b.randn(*ns)],
              lambda x, w, bias, nd=nd: ln(nd, x, w, bias))
        b.add("layer_norm_nd%d_weight_only" % nd, op_key("layer_norm", nd=nd, w=1, b=0),
              [b.randn(*x_shape), b.randn(*ns)], lambda x, w, nd=nd: ln(nd, x, w))
        b.add("layer_norm_nd%d_bias_only" % nd, op_key("layer_norm", nd=nd, w=0, b=1),
              [b.randn(*x_shape), b.randn(*ns)], lambda x, bias, nd=nd: ln(nd, x, None, bias))
        b.add("layer_norm_nd%d_f64_affine" % nd, op_key("layer_norm", nd=nd, w=1, b=1),
              [b.randn(*x_shape, dtype=F64), b.randn(*ns, dtype=F64), b.randn(*ns, dtype=F64)],
              lambda x, w, bias, nd=nd: ln(nd, x, w, bias))
    b.add("layer_norm_eps1e-3", op_key("layer_norm", nd=1, w=1, b=1, eps=1e-3),
          [b.randn(5, 13, scale=0.05), b.randn(13), b.randn(13)],
          lambda x, w, bias: ln(1, x, w, bias, 1e-3))
    b.add("layer_norm_wide_129", op_key("layer_norm", nd=1, w=1, b=1),
          [b.randn(7, 129), b.randn(129), b.randn(129)], lambda x, w, bias: ln(1, x, w, bias))
    # Rows with a mean far from zero: a one-pass variance loses precision in float32, and so does
    # a float32 sum for the mean (PyTorch's own float32 dx here is 2e-5 off the exact value, more
    # than the tolerance): the oracle is the exact result, computed in float64.
    b.add("layer_norm_offset50", op_key("layer_norm", nd=1, w=1, b=1),
          [b.randn(5, 13, offset=50.0), b.randn(13), b.randn(13)],
          lambda x, w, bias: ln(1, x, w, bias), exact=True)
    b.add("layer_norm_transposed", op_key("layer_norm", nd=1, w=1, b=1),
          [b.randn(7, 5), b.randn(7), b.randn(7)], lambda x, w, bias: ln(1, x, w, bias), tr=(0,))


def embedding_cases(b):
    # Repeated indices: the backward must scatter-add, not overwrite.
    idx = torch.tensor([[0, 3, 3, 6], [1, 3, 0, 0], [6, 2, 5, 3]], dtype=torch.int64)
    b.add("embedding_repeats", "embedding", [b.randn(7, 5), idx],
          lambda w, i: F.embedding(i, w))
    b.add("embedding_padding_idx", op_key("embedding", padding_idx=3), [b.randn(7, 5), idx],
          lambda w, i: F.embedding(i, w, padding_idx=3))
    b.add("embedding_padding_idx0_1d", op_key("embedding", padding_idx=0),
          [b.randn(13, 3), b.randint(0, 13, 11)], lambda w, i: F.embedding(i, w, padding_idx=0))
    b.add("embedding_3d_indices", "embedding", [b.randn(5, 7), b.randint(0, 5, 2, 3, 2)],
          lambda w, i: F.embedding(i, w))
    b.add("embedding_f64", "embedding", [b.randn(7, 3, dtype=F64), b.randint(0, 7, 13)],
          lambda w, i: F.embedding(i, w))


def indexing_cases(b):
    b.add("index_select_d0_repeats", op_key("index_select", dim=0),
          [b.randn(5, 7), torch.tensor([4, 0, 4, 2, 4], dtype=torch.int64)],
          lambda x, i: torch.index_select(x, 0, i))
    b.add("index_select_d1", op_key("index_select", dim=1),
          [b.randn(3, 7, 5), torch.tensor([6, 1, 1], dtype=torch.int64)],
          lambda x, i: torch.index_select(x, 1, i))
    b.add("index_select_dneg1", op_key("index_select", dim=-1),
          [b.randn(3, 5), torch.tensor([2, 0, 4, 4, 1, 3, 0], dtype=torch.int64)],
          lambda x, i: torch.index_select(x, -1, i))
    b.add("index_select_transposed", op_key("index_select", dim=0),
          [b.randn(5, 3), torch.tensor([2, 1, 2], dtype=torch.int64)],
          lambda x, i: torch.index_select(x, 0, i), tr=(0,))
    b.add("index_select_f64", op_key("index_select", dim=0),
          [b.randn(7, 3, dtype=F64), b.randint(0, 7, 13)], lambda x, i: torch.index_select(x, 0, i))

    b.add("gather_d1", op_key("gather", dim=1), [b.randn(3, 5), b.randint(0, 5, 3, 7)],
          lambda x, i: torch.gather(x, 1, i))
    b.add("gather_d0", op_key("gather", dim=0), [b.randn(5, 3), b.randint(0, 5, 7, 3)],
          lambda x, i: torch.gather(x, 0, i))
    b.add("gather_3d_dneg1", op_key("gather", dim=-1), [b.randn(3, 5, 7), b.randint(0, 7, 3, 5, 2)],
          lambda x, i: torch.gather(x, -1, i))
    # The index may be smaller than the input in the other dims too.
    b.add("gather_d1_smaller_index", op_key("gather", dim=1),
          [b.randn(5, 7), b.randint(0, 7, 3, 4)],
          lambda x, i: torch.gather(x, 1, i))
    b.add("gather_f64", op_key("gather", dim=1), [b.randn(3, 5, dtype=F64), b.randint(0, 5, 3, 5)],
          lambda x, i: torch.gather(x, 1, i))


def topk_cases(b):
    for largest in (True, False):
        name = "largest" if largest else "smallest"
        b.add("topk_%s_dneg1" % name, op_key("topk", k=3, dim=-1, largest=largest),
              [b.distinct(3, 5, 7)], lambda x, largest=largest: torch.topk(x, 3, -1, largest))
        b.add("topk_%s_d0" % name, op_key("topk", k=2, dim=0, largest=largest),
              [b.distinct(5, 7)], lambda x, largest=largest: torch.topk(x, 2, 0, largest))
        b.add("topk_%s_full" % name, op_key("topk", k=13, dim=-1, largest=largest),
              [b.distinct(3, 13)], lambda x, largest=largest: torch.topk(x, 13, -1, largest))
    b.add("topk_1d_k1", op_key("topk", k=1, dim=-1, largest=True), [b.distinct(13)],
          lambda x: torch.topk(x, 1))
    b.add("topk_transposed", op_key("topk", k=3, dim=-1, largest=True), [b.distinct(7, 5)],
          lambda x: torch.topk(x, 3, -1), tr=(0,))
    b.add("topk_f64", op_key("topk", k=4, dim=1, largest=True), [b.distinct(3, 7, 5, dtype=F64)],
          lambda x: torch.topk(x, 4, 1))


def join_split_cases(b):
    b.add("concat_d1_three", op_key("concat", dim=1), [b.randn(3, 2, 5), b.randn(3, 4, 5),
                                                      b.randn(3, 1, 5)],
          lambda *xs: torch.cat(xs, 1))
    b.add("concat_d0", op_key("concat", dim=0), [b.randn(2, 7), b.randn(5, 7)],
          lambda *xs: torch.cat(xs, 0))
    b.add("concat_dneg1", op_key("concat", dim=-1), [b.randn(3, 5, 1), b.randn(3, 5, 3)],
          lambda *xs: torch.cat(xs, -1))
    b.add("concat_single", op_key("concat", dim=0), [b.randn(3, 5)], lambda *xs: torch.cat(xs, 0))
    b.add("concat_transposed", op_key("concat", dim=1), [b.randn(5, 3), b.randn(3, 2)],
          lambda *xs: torch.cat(xs, 1), tr=(0,))
    b.add("concat_f64", op_key("concat", dim=0),
          [b.randn(1, 3, dtype=F64), b.randn(4, 3, dtype=F64)],
          lambda *xs: torch.cat(xs, 0))
    for dim in (0, 1, 2, -1):
        b.add("stack_d%d" % dim, op_key("stack", dim=dim),
              [b.randn(3, 5), b.randn(3, 5), b.randn(3, 5)],
              lambda *xs, dim=dim: torch.stack(xs, dim))
    b.add("stack_f64", op_key("stack", dim=1), [b.randn(7, dtype=F64), b.randn(7, dtype=F64)],
          lambda *xs: torch.stack(xs, 1))

    b.add("split_d1_size2", op_key("split", size=2, dim=1), [b.randn(3, 7)],
          lambda x: torch.split(x, 2, 1))
    b.add("split_d0_size3", op_key("split", size=3, dim=0), [b.randn(7, 5)],
          lambda x: torch.split(x, 3, 0))
    b.add("split_dneg1_exact", op_key("split", size=5, dim=-1), [b.randn(3, 2, 5)],
          lambda x: torch.split(x, 5, -1))
    b.add("split_f64", op_key("split", size=4, dim=0), [b.randn(13, 3, dtype=F64)],
          lambda x: torch.split(x, 4, 0))
    b.add("chunk_7_into_3", op_key("chunk", chunks=3, dim=1), [b.randn(5, 7)],
          lambda x: torch.chunk(x, 3, 1))
    # torch.chunk may return fewer chunks than asked: 5 into 4 -> sizes 2, 2, 1.
    b.add("chunk_5_into_4", op_key("chunk", chunks=4, dim=0), [b.randn(5, 3)],
          lambda x: torch.chunk(x, 4, 0))
    b.add("chunk_6_into_3_dneg1", op_key("chunk", chunks=3, dim=-1), [b.randn(3, 6)],
          lambda x: torch.chunk(x, 3, -1))
    b.add("chunk_transposed", op_key("chunk", chunks=2, dim=0), [b.randn(3, 5)],
          lambda x: torch.chunk(x, 2, 0), tr=(0,))


def cross_entropy_cases(b):
    def ce(x, t, ignore_index=-100, smoothing=0.0, reduction="mean"):
        return F.cross_entropy(x, t, ignore_index=ignore_index, label_smoothing=smoothing,
                               reduction=reduction)

    n, c = 7, 5
    for smoothing in (0.0, 0.1):
        for reduction in ("mean", "sum", "none"):
            tag = "ls%g_%s" % (smoothing, reduction)
            key = op_key("cross_entropy", ignore_index=-100, smoothing=smoothing,
                         reduction=reduction)
            b.add("cross_entropy_" + tag, key, [b.randn(n, c), b.randint(0, c, n)],
                  lambda x, t, s=smoothing, r=reduction: ce(x, t, -100, s, r))
            target = b.randint(0, c, n)
            target[1] = -100
            target[4] = -100
            b.add("cross_entropy_ignore_" + tag, key, [b.randn(n, c), target],
                  lambda x, t, s=smoothing, r=reduction: ce(x, t, -100, s, r))
            # An ignore_index that is a real class.
            target = torch.tensor([0, 2, 1, 2, 4, 3, 2], dtype=torch.int64)
            b.add("cross_entropy_ignore_class2_" + tag,
                  op_key("cross_entropy", ignore_index=2, smoothing=smoothing, reduction=reduction),
                  [b.randn(n, c), target],
                  lambda x, t, s=smoothing, r=reduction: ce(x, t, 2, s, r))
    b.add("cross_entropy_large_logits",
          op_key("cross_entropy", ignore_index=-100, smoothing=0.0, reduction="mean"),
          [b.randn(n, 13, scale=30.0), b.randint(0, 13, n)], lambda x, t: ce(x, t))
    b.add("cross_entropy_1d_logits",
          op_key("cross_entropy", ignore_index=-100, smoothing=0.1, reduction="mean"),
          [b.randn(c), torch.tensor(3, dtype=torch.int64)], lambda x, t: ce(x, t, -100, 0.1))
    b.add("cross_entropy_f64_ls0.1_mean_ignore",
          op_key("cross_entropy", ignore_index=-100, smoothing=0.1, reduction="mean"),
          [b.randn(n, c, dtype=F64), torch.tensor([1, -100, 4, 0, 0, 2, -100], dtype=torch.int64)],
          lambda x, t: ce(x, t, -100, 0.1))
    b.add("cross_entropy_f64_none",
          op_key("cross_entropy", ignore_index=-100, smoothing=0.0, reduction="none"),
          [b.randn(n, c, dtype=F64), b.randint(0, c, n)], lambda x, t: ce(x, t, reduction="none"))


def view_cases(b):
    """Each view is followed by a Mul with x1 (of the view's shape) so gradients flow through it."""

    def then_mul(view):
        return lambda x, w: view(x) * w

    def add_view(name, key, x, view, tr=()):
        with torch.no_grad():
            vx = (x.transpose(-2, -1) if 0 in tr else x)
            v = view(vx)
        b.add(name, key, [x, b.randn(*v.shape, dtype=v.dtype)], then_mul(view), tr=tr)

    add_view("view_reshape", op_key("view", kind="reshape", shape=[5, 3, 7]), b.randn(3, 5, 7),
             lambda x: x.reshape(5, 3, 7))
    add_view("view_reshape_infer", op_key("view", kind="reshape", shape=[-1, 7]), b.randn(3, 5, 7),
             lambda x: x.reshape(-1, 7))
    # Reshape of a non-contiguous view cannot be a view: it copies.
    add_view("view_reshape_of_transposed", op_key("view", kind="reshape", shape=[15]),
             b.randn(5, 3), lambda x: x.reshape(15), tr=(0,))
    add_view("view_transpose_0_2", op_key("view", kind="transpose", d0=0, d1=2), b.randn(3, 5, 7),
             lambda x: x.transpose(0, 2))
    add_view("view_transpose_neg", op_key("view", kind="transpose", d0=-1, d1=-2), b.randn(3, 5, 7),
             lambda x: x.transpose(-1, -2))
    add_view("view_permute", op_key("view", kind="permute", dims=[2, 0, 1]), b.randn(3, 5, 7),
             lambda x: x.permute(2, 0, 1))
    add_view("view_narrow", op_key("view", kind="narrow", dim=1, start=1, length=3),
             b.randn(3, 5, 7), lambda x: x.narrow(1, 1, 3))
    add_view("view_narrow_last", op_key("view", kind="narrow", dim=-1, start=4, length=3),
             b.randn(3, 7), lambda x: x.narrow(-1, 4, 3))
    add_view("view_select", op_key("view", kind="select", dim=1, index=3), b.randn(3, 5, 7),
             lambda x: x.select(1, 3))
    add_view("view_select_last", op_key("view", kind="select", dim=-1, index=0), b.randn(3, 5),
             lambda x: x.select(-1, 0))
    add_view("view_expand", op_key("view", kind="expand", shape=[3, 5, 7]), b.randn(3, 1, 7),
             lambda x: x.expand(3, 5, 7))
    add_view("view_expand_new_leading", op_key("view", kind="expand", shape=[2, -1, 5]),
             b.randn(3, 1), lambda x: x.expand(2, -1, 5))
    add_view("view_squeeze_dim", op_key("view", kind="squeeze", dim=1), b.randn(3, 1, 5),
             lambda x: x.squeeze(1))
    add_view("view_squeeze_all", op_key("view", kind="squeeze_all"), b.randn(1, 3, 1, 5, 1),
             lambda x: x.squeeze())
    add_view("view_unsqueeze_0", op_key("view", kind="unsqueeze", dim=0), b.randn(3, 5),
             lambda x: x.unsqueeze(0))
    add_view("view_unsqueeze_neg1", op_key("view", kind="unsqueeze", dim=-1), b.randn(3, 5),
             lambda x: x.unsqueeze(-1))
    add_view("view_flatten_all", op_key("view", kind="flatten", start=0, end=-1), b.randn(3, 5, 7),
             lambda x: x.flatten())
    add_view("view_flatten_1_2", op_key("view", kind="flatten", start=1, end=2),
             b.randn(2, 3, 5, 7), lambda x: x.flatten(1, 2))
    add_view("view_flatten_transposed", op_key("view", kind="flatten", start=0, end=-1),
             b.randn(5, 3), lambda x: x.flatten(), tr=(0,))
    add_view("view_contiguous_of_transposed", op_key("view", kind="contiguous"), b.randn(5, 7),
             lambda x: x.contiguous(), tr=(0,))
    add_view("view_contiguous_noop", op_key("view", kind="contiguous"), b.randn(5, 7),
             lambda x: x.contiguous())
    add_view("view_clone", op_key("view", kind="clone"), b.randn(3, 5), lambda x: x.clone())
    add_view("view_clone_of_transposed", op_key("view", kind="clone"), b.randn(5, 3),
             lambda x: x.clone(), tr=(0,))
    add_view("view_f64_permute", op_key("view", kind="permute", dims=[1, 2, 0]),
             b.randn(3, 5, 7, dtype=F64), lambda x: x.permute(1, 2, 0))

    # Views of views: transpose, narrow, select, unsqueeze, expand, then a copying reshape.
    def chain(x):
        return (x.transpose(0, 2).narrow(0, 1, 4).select(1, 2).unsqueeze(0).expand(2, 4, 3)
                .reshape(8, 3))

    add_view("view_chain", op_key("view", kind="chain"), b.randn(3, 5, 7), chain)

    # Differentiable dtype casts (then Mul with x1 in the target dtype).
    add_view("cast_f32_to_f64", op_key("view", kind="to", dtype="f64"), b.randn(3, 5),
             lambda x: x.to(F64))
    add_view("cast_f64_to_f32", op_key("view", kind="to", dtype="f32"), b.randn(3, 5, dtype=F64),
             lambda x: x.to(F32))


def build_cases(seed):
    b = Builder(seed)
    for family in (arithmetic_cases, unary_math_cases, activation_cases, comparison_cases,
                   selection_cases, reduction_cases, variance_cases, arg_reduction_cases,
                   matmul_cases, softmax_cases, layer_norm_cases, embedding_cases, indexing_cases,
                   topk_cases, join_split_cases, cross_entropy_cases, view_cases):
        family(b)
    return b.cases


def generator_main(argv, description, build, default_seed):
    """The command line every *_reference.py generator shares: --out FILE [--seed N]."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", required=True, help="file to write (parent dirs are created)")
    parser.add_argument("--seed", type=int, default=default_seed)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cases = build(args.seed)
    write_file(args.out, cases)
    print("wrote %d cases to %s" % (len(cases), args.out))
    return 0


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20240613)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
