# PyTorch oracle cases for the recurrent layers (torch.nn.GRU, LSTM and their cells) with grads.
"""PyTorch oracle for attend's recurrent layers: torch.nn.GRU/LSTM/GRUCell/LSTMCell cases.

Run as `/usr/bin/python3 tests/reference/rnn_reference.py --out FILE` (Debian's python3-torch);
tests/nn/test_rnn.cc replays every case through attend::nn and compares. The file format is the one
of ops_reference.py. Per case the op key gives the configuration, e.g.
"rnn|mode=lstm|layers=2|bidir=1|bias=1|batch_first=1|dtype=f32|inp=5|hidden=4|h0=1|padded=1",
and the tensors are named:
  x                     the input ([B, T, in] with batch_first, else [T, B, in]; cells [B, in])
  lengths               i64 [B], padded cases only (fed through pack_padded_sequence with
                        enforce_sorted=False, and pad_packed_sequence(total_length=T) after)
  h0, c0                initial states [L*D, B, H] (cells: [B, H]), when the case has them
  weight_ih_l0, ...     every parameter under its PyTorch name (cells: weight_ih, ...)
  output, h_n, c_n      torch's results (cells: h_n, and c_n for the LSTM cell)
  d_output, d_h_n, d_c_n  random cotangents of those results
  grad_x, grad_h0, grad_c0, grad_<parameter>  gradients of sum(result * cotangent)
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch  # noqa: E402
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402
except ImportError as e:  # the python3 on PATH has no torch; Debian's /usr/bin/python3 does
    sys.exit("rnn_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)
from ops_reference import generator_main, Builder, op_key, write_file  # noqa: E402

F32, F64 = torch.float32, torch.float64


def set_parameters(b, module, hidden, dtype):
    """Draws every parameter from U(-1/sqrt(H), 1/sqrt(H)) with the builder's generator."""
    k = 1.0 / math.sqrt(hidden)
    with torch.no_grad():
        for _, p in module.named_parameters():
            u = torch.rand(p.shape, generator=b.gen, dtype=F64) * (2 * k) - k
            p.copy_(u.to(dtype))


def record(b, name, key, inputs, module, results):
    """Adds one case: inputs (name -> tensor), the module's parameters, results (name -> tensor,
    each requiring grad), random cotangents, and the gradients of sum(result * cotangent)."""
    if name in b.names:
        raise ValueError("duplicate case name " + name)
    b.names.add(name)
    tensors = [(n, t.detach()) for n, t in inputs.items()]
    tensors += [(n, p.detach()) for n, p in module.named_parameters()]
    roots, cots = [], []
    for n, r in results.items():
        tensors.append((n, r.detach()))
        cot = b.randn(*r.shape, dtype=r.dtype)
        tensors.append(("d_" + n, cot))
        roots.append(r)
        cots.append(cot)
    torch.autograd.backward(roots, cots)
    for n, t in inputs.items():
        if t.is_floating_point():
            g = t.grad if t.grad is not None else torch.zeros_like(t)
            tensors.append(("grad_" + n, g.detach()))
    for n, p in module.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        tensors.append(("grad_" + n, g.detach()))
    b.cases.append((name, key, tensors))


def rnn_case(b, name, mode, layers, bidir, batch, steps, inp, hidden, lengths=None, h0=False,
             bias=True, batch_first=True, dtype=F32):
    cls = torch.nn.LSTM if mode == "lstm" else torch.nn.GRU
    m = cls(inp, hidden, num_layers=layers, bias=bias, batch_first=batch_first,
            bidirectional=bidir).to(dtype)
    set_parameters(b, m, hidden, dtype)
    d = 2 if bidir else 1
    x = b.randn(*((batch, steps, inp) if batch_first else (steps, batch, inp)), dtype=dtype)
    x.requires_grad_(True)
    inputs = {"x": x}
    if lengths is not None:
        inputs["lengths"] = torch.tensor(lengths, dtype=torch.int64)
    hx = None
    if h0:
        h = (b.randn(layers * d, batch, hidden, dtype=dtype) * 0.5).requires_grad_(True)
        inputs["h0"] = h
        hx = h
        if mode == "lstm":
            c = (b.randn(layers * d, batch, hidden, dtype=dtype) * 0.5).requires_grad_(True)
            inputs["c0"] = c
            hx = (h, c)
    if lengths is not None:
        packed = pack_padded_sequence(x, inputs["lengths"], batch_first=batch_first,
                                      enforce_sorted=False)
        out, state = m(packed, hx)
        out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=steps)
    else:
        out, state = m(x, hx)
    results = {"output": out}
    if mode == "lstm":
        results["h_n"], results["c_n"] = state
    else:
        results["h_n"] = state
    key = op_key("rnn", mode=mode, layers=layers, bidir=bidir, bias=bias,
                 batch_first=batch_first, dtype="f32" if dtype == F32 else "f64", inp=inp,
                 hidden=hidden, h0=h0, padded=lengths is not None)
    record(b, name, key, inputs, m, results)


def cell_case(b, name, mode, batch, inp, hidden, h0=False, bias=True, dtype=F32):
    cls = torch.nn.LSTMCell if mode == "lstm" else torch.nn.GRUCell
    m = cls(inp, hidden, bias=bias).to(dtype)
    set_parameters(b, m, hidden, dtype)
    x = b.randn(batch, inp, dtype=dtype).requires_grad_(True)
    inputs = {"x": x}
    hx = None
    if h0:
        h = (b.randn(batch, hidden, dtype=dtype) * 0.5).requires_grad_(True)
        inputs["h0"] = h
        hx = h
        if mode == "lstm":
            c = (b.randn(batch, hidden, dtype=dtype) * 0.5).requires_grad_(True)
            inputs["c0"] = c
            hx = (h, c)
    r = m(x, hx)
    results = {"h_n": r[0], "c_n": r[1]} if mode == "lstm" else {"h_n": r}
    key = op_key("cell", mode=mode, bias=bias, dtype="f32" if dtype == F32 else "f64", inp=inp,
                 hidden=hidden, h0=h0)
    record(b, name, key, inputs, m, results)


def build_cases(seed):
    b = Builder(seed)
    # Lengths are unsorted on purpose (enforce_sorted=False); one case never reaches T.
    pad5 = [5, 2, 4]
    pad7 = [3, 7, 1, 6]
    short = [4, 2, 3]  # max 4 < T = 6: the last steps are padding for every sequence
    for mode in ("lstm", "gru"):
        for dtype, tag in ((F32, "f32"), (F64, "f64")):
            rnn_case(b, f"{mode}_1l_{tag}", mode, 1, False, 3, 5, 4, 3, dtype=dtype)
            rnn_case(b, f"{mode}_1l_h0_{tag}", mode, 1, False, 3, 5, 4, 3, h0=True, dtype=dtype)
            rnn_case(b, f"{mode}_1l_padded_{tag}", mode, 1, False, 3, 5, 4, 3, lengths=pad5,
                     dtype=dtype)
            rnn_case(b, f"{mode}_bi_padded_h0_{tag}", mode, 1, True, 4, 7, 5, 6, lengths=pad7,
                     h0=True, dtype=dtype)
            rnn_case(b, f"{mode}_2l_{tag}", mode, 2, False, 2, 4, 3, 5, dtype=dtype)
            rnn_case(b, f"{mode}_2l_bi_padded_h0_{tag}", mode, 2, True, 4, 7, 5, 6, lengths=pad7,
                     h0=True, dtype=dtype)
            rnn_case(b, f"{mode}_2l_bi_short_{tag}", mode, 2, True, 3, 6, 3, 4, lengths=short,
                     dtype=dtype)
            rnn_case(b, f"{mode}_2l_bi_time_major_padded_{tag}", mode, 2, True, 4, 7, 5, 6,
                     lengths=pad7, h0=True, batch_first=False, dtype=dtype)
            rnn_case(b, f"{mode}_1l_bi_nobias_{tag}", mode, 1, True, 3, 5, 4, 3, lengths=pad5,
                     bias=False, dtype=dtype)
            cell_case(b, f"{mode}_cell_{tag}", mode, 3, 5, 4, dtype=dtype)
            cell_case(b, f"{mode}_cell_h0_{tag}", mode, 3, 5, 4, h0=True, dtype=dtype)
            cell_case(b, f"{mode}_cell_nobias_h0_{tag}", mode, 2, 3, 5, h0=True, bias=False,
                      dtype=dtype)
        # Wider f32 cases, so the vector kernels run full vectors and tails (H = 37) and the
        # rounding of longer sums is exercised.
        rnn_case(b, f"{mode}_2l_bi_wide_padded_f32", mode, 2, True, 5, 9, 20, 37,
                 lengths=[9, 4, 7, 1, 8], h0=True)
        rnn_case(b, f"{mode}_1l_wide_f32", mode, 1, False, 4, 12, 48, 64)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20240701)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
