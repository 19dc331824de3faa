#!/usr/bin/python3
# PyTorch oracle cases for tests/attention/test_attention.cc: every attention mechanism's outputs and grads.
"""PyTorch oracle for attend::attention: each mechanism written with PyTorch ops (and
torch.nn.MultiheadAttention itself), with the same weights, outputs and gradients.

Writes the binary format of ops_reference.py. Inputs are x<i> in the order each op key documents
below (queries first, then keys, then the module's parameters in NamedParameters() order, then
masks and other non-floating inputs); y<i> are the outputs, dy<i> their random cotangents and
dx<i> the gradients of sum_i(y_i * dy_i) w.r.t. the floating inputs. NamedParameters() lists a
module's own parameters before its sub-modules' (as torch's named_parameters()), so for example
AdditiveScore's v comes before query_proj.weight.

Op keys and their inputs:
  additive           q, k, v, query_proj.weight, key_proj.weight, key_proj.bias
  dot, scaled_dot    q, k
  general            q, k, weight
  concat             q, k, weight, v
  location|max_len   q, k, proj.weight, proj.bias            (k only gives Tk)
  cosine|beta|eps    q, k
  cosine_strength|eps q, k, beta [B, Tq]
  mwan|kind          q, k, weight, v                         (kind dot or minus)
  match              q, k
  soft|mask          scores[, mask]
  topk|k|mask        scores[, mask]
  sparsemax|mask     scores[, mask]
  local_p|window|lengths
                     scores, query, v, proj.weight[, source_lengths i64]; y0 weights,
                     y1 centres
  sdpa|causal|mask   q, k, v[, mask]; y0 context, y1 weights
  weighted_sum       weights, values
  mha|heads|self|bias|kpm|am|causal|avg
                     query[, key, value], in_proj_weight[, in_proj_bias], out_proj.weight
                     [, out_proj.bias][, key_padding_mask][, attn_mask]; y0 output, y1 weights.
                     self=1: query is key is value (one input, gradients summed). causal=1: the
                     causal mask is passed to torch as attn_mask (am=causal).

No case has a row with every position masked: torch gives NaN there, attend gives zeros (that
convention is tested in C++ alone). Run with Debian's /usr/bin/python3 (python3-torch).
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
from torch.nn.utils import stateless  # noqa: E402
from ops_reference import generator_main, Builder, op_key, write_file  # noqa: E402

F32, F64 = torch.float32, torch.float64
NEG_INF = float("-inf")

# Sizes: odd and pairwise different, so a transposed or swapped dim cannot pass by accident.
B, TQ, TK, DQ, DK, A = 2, 3, 5, 4, 6, 7


def masked_softmax(scores, mask):
    return torch.softmax(scores if mask is None else scores.masked_fill(mask, NEG_INF), -1)


def padding_mask(b, batch, tk, min_len=1):
    """[batch, tk] true beyond a random length in [min_len, tk]: never a fully masked row."""
    lengths = b.randint(min_len, tk + 1, batch)
    return torch.arange(tk).unsqueeze(0) >= lengths.unsqueeze(1)


def row_mask(b, shape, p=0.4):
    """A random mask with at least one kept position in every row of the last dim."""
    m = b.mask(*shape, p=p)
    keep = b.randint(0, shape[-1], *shape[:-1], 1)
    return m.scatter(len(shape) - 1, keep, False)


# ---- score functions ----------------------------------------------------------------------

def score_cases(b, dt, tag):
    # Parameters are scaled so that the tanh arguments stay O(1) (not saturated).
    q, k = b.randn(B, TQ, DQ, dtype=dt), b.randn(B, TK, DK, dtype=dt)
    wq, wk = b.randn(A, DQ, dtype=dt, scale=0.5), b.randn(A, DK, dtype=dt, scale=0.4)
    bk, v = b.randn(A, dtype=dt, scale=0.5), b.randn(A, dtype=dt)
    b.add("additive_" + tag, op_key("additive"), [q, k, v, wq, wk, bk],
          lambda q, k, v, wq, wk, bk:
          torch.tanh((q @ wq.T).unsqueeze(2) + (k @ wk.T + bk).unsqueeze(1)) @ v)

    qs, ks = b.randn(B, TQ, DK, dtype=dt), b.randn(B, TK, DK, dtype=dt)
    b.add("dot_" + tag, op_key("dot"), [qs, ks], lambda q, k: q @ k.transpose(1, 2))
    b.add("scaled_dot_" + tag, op_key("scaled_dot"), [qs, ks],
          lambda q, k: q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]))

    w = b.randn(DQ, DK, dtype=dt, scale=0.5)
    b.add("general_" + tag, op_key("general"), [q, k, w],
          lambda q, k, w: q @ (k @ w.T).transpose(1, 2))

    wc, vc = b.randn(A, DQ + DK, dtype=dt, scale=0.4), b.randn(A, dtype=dt)

    def concat(q, k, w, v):
        # v^T tanh(W [q; k_j]) built literally from the concatenated pair.
        pair = torch.cat([q.unsqueeze(2).expand(-1, -1, k.shape[1], -1),
                          k.unsqueeze(1).expand(-1, q.shape[1], -1, -1)], dim=-1)
        return torch.tanh(pair @ w.T) @ v
    b.add("concat_" + tag, op_key("concat"), [q, k, wc, vc], concat)

    max_len = 8
    wl, bl = b.randn(max_len, DQ, dtype=dt), b.randn(max_len, dtype=dt)
    b.add("location_" + tag, op_key("location", max_len=max_len), [q, k, wl, bl],
          lambda q, k, w, bb: (q @ w.T + bb)[..., : k.shape[1]])

    eps = 1e-8

    def unit(x):
        # attend's normalisation: x / sqrt(|x|^2 + eps).
        return x / torch.sqrt((x * x).sum(-1, keepdim=True) + eps)
    b.add("cosine_" + tag, op_key("cosine", beta=1.7, eps=eps), [qs, ks],
          lambda q, k: 1.7 * unit(q) @ unit(k).transpose(1, 2))
    beta = b.positive(B, TQ, dtype=dt, lo=0.5, hi=5.0)
    b.add("cosine_strength_" + tag, op_key("cosine_strength", eps=eps), [qs, ks, beta],
          lambda q, k, bt: (unit(q) @ unit(k).transpose(1, 2)) * bt.unsqueeze(2))

    wm, vm = b.randn(A, DK, dtype=dt, scale=0.5), b.randn(A, dtype=dt)
    b.add("mwan_dot_" + tag, op_key("mwan", kind="dot"), [qs, ks, wm, vm],
          lambda q, k, w, v: torch.tanh((q.unsqueeze(2) * k.unsqueeze(1)) @ w.T) @ v)
    b.add("mwan_minus_" + tag, op_key("mwan", kind="minus"), [qs, ks, wm, vm],
          lambda q, k, w, v: torch.tanh((q.unsqueeze(2) - k.unsqueeze(1)) @ w.T) @ v)

    b.add("match_" + tag, op_key("match"), [qs, ks],
          lambda q, k: 1.0 / (1.0 + torch.sqrt(((q.unsqueeze(2) - k.unsqueeze(1)) ** 2).sum(-1))))


# ---- scores to weights --------------------------------------------------------------------

def topk_weights(scores, k, mask):
    """Softmax over the k largest unmasked scores of each row (all unmasked ones if fewer)."""
    m = torch.zeros_like(scores, dtype=torch.bool) if mask is None else mask.expand(scores.shape)
    kk = min(k, scores.shape[-1])
    idx = scores.detach().masked_fill(m, NEG_INF).topk(kk, dim=-1).indices
    kept = torch.zeros_like(m).scatter(-1, idx, True) & ~m
    return masked_softmax(scores, ~kept)


def sparsemax_row(z):
    """Sort-based sparsemax of a 1-D tensor (Martins & Astudillo 2016, Algorithm 1)."""
    zs, _ = torch.sort(z, descending=True)
    ks = torch.arange(1, z.numel() + 1, dtype=z.dtype)
    cum = zs.cumsum(0)
    support = int((1 + ks * zs > cum).sum())
    tau = (cum[support - 1] - 1) / support
    return torch.clamp(z - tau, min=0)


def sparsemax(scores, mask):
    m = torch.zeros_like(scores, dtype=torch.bool) if mask is None else mask.expand(scores.shape)
    flat, fm = scores.reshape(-1, scores.shape[-1]), m.reshape(-1, scores.shape[-1])
    rows = []
    for z, ex in zip(flat, fm):
        keep = (~ex).nonzero().squeeze(1)
        rows.append(torch.zeros_like(z).index_put((keep,), sparsemax_row(z[keep])))
    return torch.stack(rows).reshape(scores.shape)


def weight_cases(b, dt, tag):
    s = b.randn(B, TQ, TK, dtype=dt, scale=1.5)
    b.add("soft_" + tag, op_key("soft", mask=0), [s], lambda s: masked_softmax(s, None))
    for name, shape in (("full", (B, TQ, TK)), ("bcast", (B, 1, TK))):
        m = row_mask(b, shape)
        b.add("soft_mask_%s_%s" % (name, tag), op_key("soft", mask=1),
              [b.randn(B, TQ, TK, dtype=dt, scale=1.5), m], masked_softmax)

    # Distinct scores: the top-k selection is unique.
    for kk, use_mask in ((2, False), (3, True), (1, True), (9, True)):
        sd = b.distinct(B, TQ, TK, dtype=dt)
        ins = [sd] + ([row_mask(b, (B, TQ, TK), p=0.3)] if use_mask else [])
        b.add("topk_k%d_mask%d_%s" % (kk, use_mask, tag), op_key("topk", k=kk, mask=int(use_mask)),
              ins, lambda s, m=None, kk=kk: topk_weights(s, kk, m))

    # Scale 0.6 puts several positions in each row's support (a single one would be one-hot).
    for use_mask, shape in ((False, None), (True, (B, TQ, 7)), (True, (B, 1, 7))):
        ss = b.randn(B, TQ, 7, dtype=dt, scale=0.6)
        ins = [ss] + ([row_mask(b, shape, p=0.3)] if use_mask else [])
        name = "sparsemax_%s_%s" % ("nomask" if not use_mask else "mask%d" % shape[1], tag)
        b.add(name, op_key("sparsemax", mask=int(use_mask)), ins,
              lambda s, m=None: sparsemax(s, m))


def local_p_cases(b, dt, tag):
    tk, hidden, dq, window = 9, 5, 4, 2
    sigma = window / 2.0
    lengths = torch.tensor([9, 6], dtype=torch.int64)

    def local_p(scores, query, v, wp, lens=None):
        s = torch.full((B,), float(tk), dtype=dt) if lens is None else lens.to(dt)
        p = s.unsqueeze(1) * torch.sigmoid(torch.tanh(query @ wp.T) @ v)       # [B, Tq]
        dist = torch.arange(tk, dtype=dt).view(1, 1, tk) - p.unsqueeze(2)     # [B, Tq, Tk]
        excluded = (dist.detach().abs() > window) | \
            (torch.arange(tk).view(1, 1, tk) >= s.view(B, 1, 1))
        w = masked_softmax(scores, excluded) * torch.exp(-dist * dist / (2 * sigma * sigma))
        return w, p

    for use_lengths in (False, True):
        # Redraw until no centre sits within 1e-3 of a window edge, where f32 and f64 rounding
        # could disagree about which positions are inside.
        while True:
            scores = b.randn(B, TQ, tk, dtype=dt)
            query = b.randn(B, TQ, dq, dtype=dt)
            wp, v = b.randn(hidden, dq, dtype=dt), b.randn(hidden, dtype=dt, scale=1.5)
            with torch.no_grad():
                _, p = local_p(scores, query, v, wp, lengths if use_lengths else None)
            d = (torch.arange(tk, dtype=F64).view(1, 1, tk) - p.to(F64).unsqueeze(2)).abs()
            if ((d - window).abs() > 1e-3).all():
                break
        ins = [scores, query, v, wp] + ([lengths] if use_lengths else [])
        b.add("local_p_lengths%d_%s" % (use_lengths, tag),
              op_key("local_p", window=window, lengths=int(use_lengths)), ins, local_p)


# ---- query-key-value ----------------------------------------------------------------------

def causal_mask(tq, tk):
    """attend's convention: query i sees keys j <= i + (tk - tq) (aligned with the last keys)."""
    return torch.arange(tk).view(1, tk) > torch.arange(tq).view(tq, 1) + (tk - tq)


def sdpa(q, k, v, mask=None, causal=False):
    m = mask
    if causal:
        c = causal_mask(q.shape[-2], k.shape[-2])
        m = c if m is None else (m | c)
    w = masked_softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), m)
    return w @ v, w


def qkv_cases(b, dt, tag):
    d, dv = 6, 4
    q, k, v = b.randn(B, TQ, d, dtype=dt), b.randn(B, TK, d, dtype=dt), b.randn(B, TK, dv, dtype=dt)
    b.add("sdpa_plain_" + tag, op_key("sdpa", causal=0, mask=0), [q, k, v], sdpa)
    pad = padding_mask(b, B, TK).view(B, 1, TK)
    b.add("sdpa_padding_" + tag, op_key("sdpa", causal=0, mask=1), [q, k, v, pad], sdpa)
    # Causal with Tq < Tk: the shifted diagonal; with padding on top (key 0 is never padded).
    b.add("sdpa_causal_shifted_padding_" + tag, op_key("sdpa", causal=1, mask=1), [q, k, v, pad],
          lambda q, k, v, m: sdpa(q, k, v, m, causal=True))
    xs = b.randn(B, TK, d, dtype=dt)
    b.add("sdpa_causal_self_" + tag, op_key("sdpa", causal=1, mask=0),
          [xs, b.randn(B, TK, d, dtype=dt), b.randn(B, TK, dv, dtype=dt)],
          lambda q, k, v: sdpa(q, k, v, causal=True))
    # Heads as an extra leading dim, padding mask broadcast over heads and queries.
    h = 3
    pad4 = padding_mask(b, B, TK).view(B, 1, 1, TK)
    b.add("sdpa_heads_padding_" + tag, op_key("sdpa", causal=0, mask=1),
          [b.randn(B, h, TQ, d, dtype=dt), b.randn(B, h, TK, d, dtype=dt),
           b.randn(B, h, TK, dv, dtype=dt), pad4], sdpa)
    # An arbitrary bool mask [B, Tq, Tk] with no fully masked row.
    b.add("sdpa_rowmask_" + tag, op_key("sdpa", causal=0, mask=1),
          [q, k, v, row_mask(b, (B, TQ, TK))], sdpa)

    wts = torch.softmax(b.randn(B, TQ, TK, dtype=F64), -1).to(dt)
    b.add("weighted_sum_" + tag, op_key("weighted_sum"), [wts, b.randn(B, TK, dv, dtype=dt)],
          lambda w, v: w @ v)
    wts4 = torch.softmax(b.randn(B, 2, TQ, TK, dtype=F64), -1).to(dt)
    b.add("weighted_sum_4d_" + tag, op_key("weighted_sum"), [wts4, b.randn(B, 2, TK, dv, dtype=dt)],
          lambda w, v: w @ v)


def mha_cases(b, dt, tag):
    e, h = 8, 2
    configs = [
        # name, self, bias, key_padding_mask, attn_mask kind, average
        ("self", True, True, False, "none", True),
        ("self_causal_heads", True, True, False, "causal", False),
        ("self_causal_kpm", True, True, True, "causal", True),
        ("cross_kpm", False, True, True, "none", True),
        ("cross_kpm_mask2d_heads", False, True, True, "2d", False),
        ("cross_mask3d", False, True, False, "3d", True),
        ("cross_nobias_kpm", False, False, True, "none", False),
    ]
    for name, is_self, bias, use_kpm, am, avg in configs:
        tq = TK if is_self else TQ
        mha = torch.nn.MultiheadAttention(e, h, dropout=0.0, bias=bias, batch_first=True,
                                          dtype=dt)
        # Non-zero biases (torch starts them at zero), so a bias bug cannot hide.
        params = [("in_proj_weight", b.randn(3 * e, e, dtype=dt, scale=0.4))]
        if bias:
            params.append(("in_proj_bias", b.randn(3 * e, dtype=dt, scale=0.3)))
        params.append(("out_proj.weight", b.randn(e, e, dtype=dt, scale=0.4)))
        if bias:
            params.append(("out_proj.bias", b.randn(e, dtype=dt, scale=0.3)))
        assert [n for n, _ in params] == [n for n, _ in mha.named_parameters()]
        seqs = [b.randn(B, tq, e, dtype=dt)]
        if not is_self:
            seqs += [b.randn(B, TK, e, dtype=dt), b.randn(B, TK, e, dtype=dt)]
        masks = []
        if use_kpm:
            masks.append(padding_mask(b, B, TK))
        if am == "causal":
            masks.append(causal_mask(tq, TK))
        elif am == "2d":
            masks.append(row_mask(b, (tq, TK)))
        elif am == "3d":
            masks.append(row_mask(b, (B * h, tq, TK)))
        n_seq, n_par = len(seqs), len(params)

        def run(*xs, mha=mha, params=params, is_self=is_self, use_kpm=use_kpm, am=am, avg=avg,
                n_seq=n_seq, n_par=n_par):
            seq, par, rest = xs[:n_seq], xs[n_seq:n_seq + n_par], list(xs[n_seq + n_par:])
            query, key, value = (seq[0],) * 3 if is_self else seq
            kpm = rest.pop(0) if use_kpm else None
            attn_mask = rest.pop(0) if am != "none" else None
            out, weights = stateless.functional_call(
                mha, {n: p for (n, _), p in zip(params, par)}, (query, key, value),
                {"key_padding_mask": kpm, "need_weights": True, "attn_mask": attn_mask,
                 "average_attn_weights": avg})
            return out, weights

        b.add("mha_%s_%s" % (name, tag),
              op_key("mha", heads=h, self=is_self, bias=bias, kpm=use_kpm, am=am,
                     causal=am == "causal", avg=avg),
              seqs + [p for _, p in params] + masks, run)


def build_cases(seed):
    b = Builder(seed)
    for dt, tag in ((F32, "f32"), (F64, "f64")):
        score_cases(b, dt, tag)
        weight_cases(b, dt, tag)
        local_p_cases(b, dt, tag)
        qkv_cases(b, dt, tag)
        mha_cases(b, dt, tag)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 4)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
