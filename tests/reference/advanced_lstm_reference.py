# PyTorch oracle cases for attend::nn::AdvancedLSTM (Tao and Liu 2018) with every gradient.
"""PyTorch oracle for attend's Advanced LSTM: a plain PyTorch mirror of the module.

Run as `/usr/bin/python3 tests/reference/advanced_lstm_reference.py --out FILE` (Debian's
python3-torch); tests/nn/test_advanced_lstm.cc replays every case through attend::nn and compares.
The file format is the one of ops_reference.py. The mirror is written from the formulas
(include/attend/nn/advanced_lstm.h), not from the C++ code: it projects every history slot again
at every step (the C++ module projects each state once and shifts the projections), keeps a
validity mask that shifts with the history (the C++ module counts filled slots), excludes slots
with -inf before torch.softmax, and freezes finished sequences with torch.where. Before writing
anything it checks itself against torch.nn.LSTM with history 1 (the weight over one slot is 1).

Per case the op key gives the configuration, e.g.
"alstm|layers=2|bidir=1|bias=1|batch_first=1|dtype=f32|inp=5|hidden=4|history=3|attn=6|h0=1|
past=0|padded=1", and the tensors are named:
  x                      the input ([B, T, in] with batch_first, else [T, B, in])
  lengths                i64 [B], padded cases only
  h0, c0                 initial states [L*D, B, H], when the case has them
  past_h0, past_c0       initial past states [K-1, L*D, B, H] and past_count0 i64 [B], when
                         the case has them
  weight_ih_l0, ...      every parameter under its attend name
  output, h_n, c_n       the results; past_h, past_c, past_count (K > 1) the final past;
  attn_l0, attn_l0_reverse, ...   the weights over the history [B, T, K] ([T, B, K] time-major)
  d_<result>             random cotangents of the floating results
  grad_x, grad_h0, grad_c0, grad_past_h0, grad_past_c0, grad_<parameter>
                         gradients of the sum of every result times its cotangent
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch  # noqa: E402
except ImportError as e:  # the python3 on PATH has no torch; Debian's /usr/bin/python3 does
    sys.exit("advanced_lstm_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)
from ops_reference import generator_main, Builder, op_key  # noqa: E402

F32, F64 = torch.float32, torch.float64


class AdvancedLstmMirror(torch.nn.Module):
    """The Advanced LSTM in plain PyTorch, parameters registered in attend's names and order."""

    def __init__(self, inp, hidden, layers, bidir, history, attn, bias, dtype):
        super().__init__()
        self.hidden, self.layers, self.history = hidden, layers, history
        self.nd = 2 if bidir else 1
        h, a = hidden, attn
        for layer in range(layers):
            width = inp if layer == 0 else self.nd * hidden
            for d in range(self.nd):
                s = "_l%d%s" % (layer, "_reverse" if d == 1 else "")
                shapes = [("weight_ih", (4 * h, width)), ("weight_hh", (4 * h, h))]
                if bias:
                    shapes += [("bias_ih", (4 * h,)), ("bias_hh", (4 * h,))]
                shapes += [("attn_weight_hist", (a, h)), ("attn_weight_in", (a, width))]
                if bias:
                    shapes.append(("attn_bias", (a,)))
                shapes.append(("attn_v", (a,)))
                for n, shape in shapes:
                    self.register_parameter(n + s, torch.nn.Parameter(torch.zeros(shape,
                                                                                  dtype=dtype)))

    def p(self, name, layer, d):
        return getattr(self, "%s_l%d%s" % (name, layer, "_reverse" if d == 1 else ""), None)

    def direction(self, layer, d, x, lengths, hist_h, hist_c, valid):
        """x [B, T, in]; hist_h, hist_c [B, K, H] (slot 0 the latest); valid bool [B, K]."""
        B, T, _ = x.shape
        K = self.history
        w_ih, w_hh = self.p("weight_ih", layer, d), self.p("weight_hh", layer, d)
        b_ih, b_hh = self.p("bias_ih", layer, d), self.p("bias_hh", layer, d)
        wa, ua = self.p("attn_weight_hist", layer, d), self.p("attn_weight_in", layer, d)
        ba, v = self.p("attn_bias", layer, d), self.p("attn_v", layer, d)
        outs = [None] * T
        weights = [None] * T
        order = range(T - 1, -1, -1) if d == 1 else range(T)
        for t in order:
            act = t < lengths  # [B]
            xt = x[:, t]
            pre = hist_h @ wa.t() + (xt @ ua.t())[:, None, :]
            if ba is not None:
                pre = pre + ba
            e = torch.tanh(pre) @ v  # [B, K]
            e = e.masked_fill(~valid, float("-inf"))
            alpha = torch.softmax(e, dim=1)
            h_mix = (alpha[:, :, None] * hist_h).sum(1)
            c_mix = (alpha[:, :, None] * hist_c).sum(1)
            gates = xt @ w_ih.t() + h_mix @ w_hh.t()
            if b_ih is not None:
                gates = gates + b_ih + b_hh
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c_mix + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            new_h = torch.cat([h[:, None], hist_h[:, :K - 1]], 1)
            new_c = torch.cat([c[:, None], hist_c[:, :K - 1]], 1)
            new_valid = torch.cat([torch.ones(B, 1, dtype=torch.bool), valid[:, :K - 1]], 1)
            a3 = act[:, None, None]
            hist_h = torch.where(a3, new_h, hist_h)
            hist_c = torch.where(a3, new_c, hist_c)
            valid = torch.where(act[:, None], new_valid, valid)
            outs[t] = torch.where(act[:, None], h, torch.zeros_like(h))
            weights[t] = torch.where(act[:, None], alpha, torch.zeros_like(alpha))
        return torch.stack(outs, 1), hist_h, hist_c, valid, torch.stack(weights, 1)

    def forward(self, x, lengths, h0, c0, past_h0, past_c0, past_count0):
        """x [B, T, in] -> output, h_n, c_n, past_h, past_c, past_count, [attention per ld]."""
        B, T, _ = x.shape
        K, H, nd = self.history, self.hidden, self.nd
        dt = x.dtype
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.int64)
        slots = torch.arange(K)[None, :]
        count = past_count0 if past_count0 is not None else torch.zeros(B, dtype=torch.int64)
        valid0 = slots <= count[:, None]  # slot 0 plus count past slots
        inp = x
        h_n, c_n, past_h, past_c, attention = [], [], [], [], []
        valid = valid0
        for layer in range(self.layers):
            outs = []
            for d in range(nd):
                ld = layer * nd + d
                h = h0[ld] if h0 is not None else torch.zeros(B, H, dtype=dt)
                c = c0[ld] if c0 is not None else torch.zeros(B, H, dtype=dt)
                if past_h0 is not None:
                    ph, pc = past_h0[:, ld].transpose(0, 1), past_c0[:, ld].transpose(0, 1)
                else:
                    ph = torch.zeros(B, K - 1, H, dtype=dt)
                    pc = torch.zeros(B, K - 1, H, dtype=dt)
                hist_h = torch.cat([h[:, None], ph], 1)
                hist_c = torch.cat([c[:, None], pc], 1)
                out, hh, hc, valid, wts = self.direction(layer, d, inp, lengths, hist_h, hist_c,
                                                         valid0)
                outs.append(out)
                h_n.append(hh[:, 0])
                c_n.append(hc[:, 0])
                past_h.append(hh[:, 1:].transpose(0, 1))
                past_c.append(hc[:, 1:].transpose(0, 1))
                attention.append(wts)
            inp = torch.cat(outs, 2)
        past_count = valid.sum(1) - 1
        return (inp, torch.stack(h_n), torch.stack(c_n), torch.stack(past_h, 1),
                torch.stack(past_c, 1), past_count, attention)


def set_parameters(b, module, hidden, dtype):
    """Every parameter from U(-1/sqrt(H), 1/sqrt(H)), v a little wider so the weights spread."""
    k = 1.0 / math.sqrt(hidden)
    with torch.no_grad():
        for n, p in module.named_parameters():
            scale = 3 * k if n.startswith("attn_v") else k
            u = torch.rand(p.shape, generator=b.gen, dtype=F64) * (2 * scale) - scale
            p.copy_(u.to(dtype))


def check_history_one_is_lstm(b):
    """The mirror with history 1 must be torch.nn.LSTM on the same weights (a check of the
    mirror itself, before it is trusted as the oracle)."""
    m = AdvancedLstmMirror(3, 4, 2, True, 1, 5, True, F64)
    set_parameters(b, m, 4, F64)
    lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True).to(F64)
    with torch.no_grad():
        for n, p in lstm.named_parameters():
            p.copy_(getattr(m, n))
    x = b.randn(3, 5, 3, dtype=F64)
    h0, c0 = b.randn(4, 3, 4, dtype=F64), b.randn(4, 3, 4, dtype=F64)
    lengths = torch.tensor([5, 2, 4])
    out, h_n, c_n, _, _, _, _ = m(x, lengths, h0, c0, None, None, None)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                     enforce_sorted=False)
    ref, (rh, rc) = lstm(packed, (h0, c0))
    ref, _ = torch.nn.utils.rnn.pad_packed_sequence(ref, batch_first=True, total_length=5)
    for got, want, what in ((out, ref, "output"), (h_n, rh, "h_n"), (c_n, rc, "c_n")):
        if not torch.allclose(got, want, rtol=1e-12, atol=1e-12):
            raise SystemExit("advanced_lstm_reference.py: the mirror with history 1 differs from "
                             "torch.nn.LSTM in %s by %g" % (what, (got - want).abs().max()))


def alstm_case(b, name, layers, bidir, batch, steps, inp, hidden, history, attn, lengths=None,
               h0=False, past=None, bias=True, batch_first=True, dtype=F32):
    """past: a list of B past counts (in [0, K-1]) for an initial state with history."""
    m = AdvancedLstmMirror(inp, hidden, layers, bidir, history, attn if attn else hidden, bias,
                           dtype)
    set_parameters(b, m, hidden, dtype)
    d = 2 if bidir else 1
    x = b.randn(*((batch, steps, inp) if batch_first else (steps, batch, inp)), dtype=dtype)
    x.requires_grad_(True)
    inputs = {"x": x}
    lens = None
    if lengths is not None:
        lens = torch.tensor(lengths, dtype=torch.int64)
        inputs["lengths"] = lens
    h, c, ph, pc, pcount = None, None, None, None, None
    if h0:
        h = (b.randn(layers * d, batch, hidden, dtype=dtype) * 0.5).requires_grad_(True)
        c = (b.randn(layers * d, batch, hidden, dtype=dtype) * 0.5).requires_grad_(True)
        inputs["h0"], inputs["c0"] = h, c
    if past is not None:
        shape = (history - 1, layers * d, batch, hidden)
        ph = (b.randn(*shape, dtype=dtype) * 0.5).requires_grad_(True)
        pc = (b.randn(*shape, dtype=dtype) * 0.5).requires_grad_(True)
        pcount = torch.tensor(past, dtype=torch.int64)
        inputs["past_h0"], inputs["past_c0"], inputs["past_count0"] = ph, pc, pcount
    xb = x if batch_first else x.transpose(0, 1)
    out, h_n, c_n, past_h, past_c, past_count, attention = m(xb, lens, h, c, ph, pc, pcount)
    results = {"output": out if batch_first else out.transpose(0, 1), "h_n": h_n, "c_n": c_n}
    if history > 1:
        results["past_h"], results["past_c"] = past_h, past_c
    for layer in range(layers):
        for dd in range(d):
            w = attention[layer * d + dd]
            results["attn_l%d%s" % (layer, "_reverse" if dd else "")] = (
                w if batch_first else w.transpose(0, 1))
    key = op_key("alstm", layers=layers, bidir=bidir, bias=bias, batch_first=batch_first,
                 dtype="f32" if dtype == F32 else "f64", inp=inp, hidden=hidden, history=history,
                 attn=attn, h0=h0, past=past is not None, padded=lengths is not None)
    if name in b.names:
        raise ValueError("duplicate case name " + name)
    b.names.add(name)
    tensors = [(n, t.detach()) for n, t in inputs.items()]
    tensors += [(n, p.detach()) for n, p in m.named_parameters()]
    roots, cots = [], []
    for n, r in results.items():
        tensors.append((n, r.detach()))
        cot = b.randn(*r.shape, dtype=r.dtype)
        tensors.append(("d_" + n, cot))
        roots.append(r)
        cots.append(cot)
    if history > 1:
        tensors.append(("past_count", past_count.detach()))
    torch.autograd.backward(roots, cots)
    for n, t in inputs.items():
        if t.is_floating_point():
            g = t.grad if t.grad is not None else torch.zeros_like(t)
            tensors.append(("grad_" + n, g.detach()))
    for n, p in m.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        tensors.append(("grad_" + n, g.detach()))
    b.cases.append((name, key, tensors))


def build_cases(seed):
    b = Builder(seed)
    check_history_one_is_lstm(b)
    pad5 = [5, 2, 4]       # unsorted; one sequence never reaches T
    pad7 = [3, 7, 1, 6]
    for dtype, tag in ((F32, "f32"), (F64, "f64")):
        alstm_case(b, "k1_1l_" + tag, 1, False, 3, 5, 4, 3, 1, 5, dtype=dtype)
        alstm_case(b, "k2_1l_padded_" + tag, 1, False, 3, 5, 4, 3, 2, 5, lengths=pad5,
                   dtype=dtype)
        alstm_case(b, "k3_1l_h0_" + tag, 1, False, 3, 6, 4, 5, 3, 0, h0=True, dtype=dtype)
        alstm_case(b, "k3_2l_bi_padded_h0_" + tag, 2, True, 4, 7, 5, 4, 3, 6, lengths=pad7,
                   h0=True, dtype=dtype)
        alstm_case(b, "k5_longer_than_t_2l_bi_padded_" + tag, 2, True, 3, 4, 3, 4, 5, 3,
                   lengths=[4, 1, 3], dtype=dtype)
        alstm_case(b, "k3_2l_past_padded_" + tag, 2, False, 3, 5, 4, 4, 3, 5, lengths=pad5,
                   h0=True, past=[0, 2, 1], dtype=dtype)
        alstm_case(b, "k4_bi_past_time_major_padded_" + tag, 1, True, 4, 6, 3, 4, 4, 5,
                   lengths=[6, 2, 5, 1], h0=True, past=[3, 0, 1, 2], batch_first=False,
                   dtype=dtype)
        alstm_case(b, "k2_2l_bi_nobias_padded_" + tag, 2, True, 3, 5, 4, 3, 2, 4, lengths=pad5,
                   bias=False, dtype=dtype)
    # Wider f32: the vector kernels' full vectors and tails, longer sums.
    alstm_case(b, "k4_2l_bi_wide_padded_f32", 2, True, 5, 9, 20, 37, 4, 19,
               lengths=[9, 4, 7, 1, 8], h0=True)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20250311)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
