"""attend.attention from Python: every mechanism's context and weights, and the gradients of its
inputs and parameters, against the same formulas written in PyTorch (f64, rtol 1e-10; the torch
modules of tests/reference share attend's parameter names). Bad arguments raise attend.Error."""
import math
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import attend

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "reference"))
import attention_reference as ar  # noqa: E402
import structures_reference as sr  # noqa: E402

A = attend.attention
RTOL, ATOL = 1e-10, 1e-12
B, TQ, TK, DQ, DK, AD = 2, 3, 5, 4, 6, 7


def rng(seed=0):
    return np.random.default_rng(seed)


def to_np(t):
    return np.array(t.detach().numpy())


def close(a, b, rtol=RTOL, atol=ATOL, what=""):
    a = to_np(a) if isinstance(a, attend.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else \
        to_np(b) if isinstance(b, attend.Tensor) else np.asarray(b)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def params_of(module):
    """attend module -> {name: torch leaf} holding the same values."""
    return {n: torch.tensor(to_np(p), requires_grad=True) for n, p in module.named_parameters()}


def check(run_attend, run_torch, inputs, module=None, seed=1, rtol=RTOL, atol=ATOL,
          torch_module=None):
    """Runs both sides on the same f64 inputs (and parameters), compares every output, then the
    gradients of sum(y_i * dy_i) w.r.t. every input and parameter. Returns attend's outputs.
    With torch_module, attend's parameter values are copied into it and its own parameters are
    the torch side's (torch's RNNs ignore functional_call's substitutes)."""
    xa = [attend.tensor(x, requires_grad=x.dtype == np.float64) if isinstance(x, np.ndarray)
          else x for x in inputs]
    xt = [torch.tensor(x, requires_grad=x.dtype == np.float64) if isinstance(x, np.ndarray)
          else x for x in inputs]
    pt = params_of(module) if module is not None else {}
    if torch_module is not None:
        with torch.no_grad():
            for n, p in torch_module.named_parameters():
                p.copy_(pt[n])
        pt = dict(torch_module.named_parameters())
    ya = run_attend(*xa)
    yt = run_torch(*xt, **({"params": pt} if module is not None else {}))
    ya = list(ya) if isinstance(ya, (tuple, list)) else [ya]
    yt = list(yt) if isinstance(yt, (tuple, list)) else [yt]
    assert len(ya) == len(yt)
    g = rng(seed)
    loss = 0
    for i, (a, t) in enumerate(zip(ya, yt)):
        close(a, t, rtol, atol, "output %d" % i)
        dy = g.standard_normal(tuple(t.shape))
        if a.requires_grad:
            a.backward(attend.tensor(dy), retain_graph=True)
        if t.requires_grad:
            loss = loss + (t * torch.tensor(dy)).sum()
    if isinstance(loss, torch.Tensor):
        loss.backward()
    for i, (a, t) in enumerate(zip(xa, xt)):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            ga = a.grad
            close(np.zeros(t.shape) if ga is None else ga,
                  torch.zeros_like(t) if t.grad is None else t.grad, rtol, atol, "grad %d" % i)
    if module is not None:
        for name, p in module.named_parameters():
            t = pt[name]
            close(np.zeros(t.shape) if p.grad is None else p.grad,
                  torch.zeros_like(t) if t.grad is None else t.grad, rtol, atol, name)
    return ya


def randn(g, *shape, scale=1.0):
    return g.standard_normal(shape) * scale


def mask(g, *shape, p=0.4):
    """A bool mask with at least one kept position per row of the last dim."""
    m = g.random(shape) < p
    keep = g.integers(0, shape[-1], shape[:-1])
    np.put_along_axis(m, keep[..., None], False, axis=-1)
    return m


# ---- score functions ----

def test_additive_score_forward_and_prepared_path():
    g = rng(1)
    s = A.AdditiveScore(DQ, DK, AD, dtype="float64")
    assert [n for n, _ in s.named_parameters()] == ["v", "query_proj.weight", "key_proj.weight",
                                                    "key_proj.bias"]
    assert s.name == "AdditiveScore"
    q, k = randn(g, B, TQ, DQ), randn(g, B, TK, DK)

    def ref(q, k, params):
        p = params
        return torch.tanh((q @ p["query_proj.weight"].T).unsqueeze(2) +
                          (k @ p["key_proj.weight"].T + p["key_proj.bias"]).unsqueeze(1)) @ p["v"]
    check(lambda q, k: s(q, k), ref, [q, k], s)
    s.zero_grad()
    check(lambda q, k: s.scores(q, s.prepare_keys(k)), ref, [q, k], s)


def test_fused_additive_scores():
    g = rng(2)
    check(A.fused_additive_scores,
          lambda qp, kp, v: torch.tanh(qp.unsqueeze(2) + kp.unsqueeze(1)) @ v,
          [randn(g, B, TQ, AD), randn(g, B, TK, AD), randn(g, AD)])


def test_parameter_free_scores():
    g = rng(3)
    q, k = randn(g, B, TQ, DK), randn(g, B, TK, DK)
    check(lambda q, k: A.DotScore()(q, k), lambda q, k: q @ k.transpose(1, 2), [q, k])
    check(lambda q, k: A.ScaledDotScore().forward(q, k),
          lambda q, k: q @ k.transpose(1, 2) / math.sqrt(DK), [q, k])
    check(A.match_score,
          lambda q, k: 1 / (1 + ((q.unsqueeze(2) - k.unsqueeze(1)) ** 2).sum(-1).sqrt()), [q, k])

    def unit(x):
        return x / torch.sqrt((x * x).sum(-1, keepdim=True) + 1e-8)
    cos = A.CosineScore(beta=1.7)
    assert cos.beta == 1.7 and cos.eps == 1e-8
    check(cos, lambda q, k: 1.7 * unit(q) @ unit(k).transpose(1, 2), [q, k])
    check(cos.scores_with_strength,
          lambda q, k, b: (unit(q) @ unit(k).transpose(1, 2)) * b.unsqueeze(2),
          [q, k, g.uniform(0.5, 5.0, (B, TQ))])


def test_general_concat_location_scores():
    g = rng(4)
    q, k = randn(g, B, TQ, DQ), randn(g, B, TK, DK)
    gs = A.GeneralScore(DQ, DK, dtype="float64")
    check(gs, lambda q, k, params: q @ (k @ params["weight"].T).transpose(1, 2), [q, k], gs)

    cs = A.ConcatScore(DQ, DK, AD, dtype="float64")
    assert cs.query_dim == DQ and cs.key_dim == DK

    def concat(q, k, params):
        pair = torch.cat([q.unsqueeze(2).expand(-1, -1, TK, -1),
                          k.unsqueeze(1).expand(-1, TQ, -1, -1)], -1)
        return torch.tanh(pair @ params["weight"].T) @ params["v"]
    check(cs, concat, [q, k], cs)

    ls = A.LocationScore(DQ, 8, dtype="float64")
    check(ls, lambda q, k, params: (q @ params["proj.weight"].T + params["proj.bias"])[..., :TK],
          [q, k], ls)
    with pytest.raises(attend.Error):
        ls(q, randn(g, B, 9, DK))  # longer than max_source_len


@pytest.mark.parametrize("kind", ["dot", "minus"])
def test_mwan_score(kind):
    g = rng(5)
    s = A.MwanScore(kind, DK, AD, dtype="float64")
    assert s.kind == kind
    op = (lambda a, b: a * b) if kind == "dot" else (lambda a, b: a - b)
    check(s, lambda q, k, params: torch.tanh(op(q.unsqueeze(2), k.unsqueeze(1)) @
                                             params["weight"].T) @ params["v"],
          [randn(g, B, TQ, DK), randn(g, B, TK, DK)], s)
    with pytest.raises(attend.Error):
        A.MwanScore("plus", DK, AD)


def test_location_aware_score():
    g = rng(6)
    s = A.LocationAwareScore(DQ, DK, AD, filters=3, width=5, dtype="float64")
    q, k, prev = randn(g, B, 1, DQ), randn(g, B, TK, DK), g.dirichlet(np.ones(TK), B)

    def ref(q, k, prev, params):
        p = params
        f = F.conv1d(prev.unsqueeze(1), p["filters"], padding=2)  # [B, 3, Tk]
        keys = k @ p["key_proj.weight"].T + p["key_proj.bias"] + \
            f.transpose(1, 2) @ p["location_proj.weight"].T
        return torch.tanh((q @ p["query_proj.weight"].T).unsqueeze(2) + keys.unsqueeze(1)) @ p["v"]
    check(lambda q, k, prev: s.scores(q, s.prepare_keys(k), prev), ref, [q, k, prev], s)
    s.zero_grad()
    no_previous = torch.zeros(B, TK, dtype=torch.float64)
    check(lambda q, k: s(q, k), lambda q, k, params: ref(q, k, no_previous, params),
          [q, k], s)
    with pytest.raises(attend.Error):
        A.LocationAwareScore(DQ, DK, AD, filters=3, width=4)  # even width


def test_qkv_score_attend():
    g = rng(7)
    s = A.QkvScore(DQ, DK, AD, 3, dtype="float64")
    q, k, m = randn(g, B, TQ, DQ), randn(g, B, TK, DK), mask(g, B, TQ, TK)

    def ref(q, k, params, m=None):
        p = params
        e = (q @ p["query_proj.weight"].T) @ (k @ p["key_proj.weight"].T).transpose(1, 2)
        w = ar.masked_softmax(e / math.sqrt(AD), None if m is None else torch.tensor(m))
        return w @ (k @ p["value_proj.weight"].T), w
    check(s.attend, ref, [q, k], s)
    s.zero_grad()
    check(lambda q, k: s.attend(q, k, mask=m), lambda q, k, params: ref(q, k, params, m), [q, k], s)
    close(s.prepare_values(k), k @ to_np(s.state_dict()["value_proj.weight"]).T)


# ---- scores to weights ----

def test_soft_top_k_sparsemax_weights():
    g = rng(8)
    s = randn(g, B, TQ, TK, scale=1.5)
    for m in (None, mask(g, B, TQ, TK), mask(g, B, 1, TK)):
        tm = None if m is None else torch.tensor(m)
        check(lambda s: A.soft_weights(s, m), lambda s: ar.masked_softmax(s, tm), [s])
        check(lambda s: A.sparsemax(s, mask=m), lambda s: ar.sparsemax(s, tm), [s * 0.4])
        for k in (1, 2, 9):
            check(lambda s: A.top_k_weights(s, k, m), lambda s: ar.topk_weights(s, k, tm), [s])
    # A fully masked row gives zeros, not NaN.
    w = A.soft_weights(np.zeros((1, 3)), np.ones((1, 3), dtype=bool))
    np.testing.assert_array_equal(w, np.zeros((1, 3)))
    with pytest.raises(attend.Error):
        A.top_k_weights(s, 0)
    with pytest.raises(attend.Error):
        A.soft_weights(s, np.zeros((B, TQ, TK)))  # a float mask


def test_hard_attention():
    g = rng(9)
    s = randn(g, B, TQ, TK)
    h = A.HardAttention("argmax")
    assert h.mode == "argmax"
    np.testing.assert_array_equal(h(s).numpy(), np.eye(TK)[s.argmax(-1)])
    gumbel = A.HardAttention("gumbel_straight_through", seed=3, tau=0.5)
    w = gumbel.weights(attend.tensor(s, requires_grad=True))
    assert np.all(w.detach().numpy().sum(-1) == 1) and set(np.unique(w.detach().numpy())) <= {0, 1}
    r = A.HardAttention("reinforce", seed=1)
    x = attend.tensor(s, requires_grad=True)
    w = r.weights(x)
    assert np.all(to_np(w).sum(-1) == 1)
    loss = r.reinforce_loss(np.array([1.0, -1.0]))
    loss.backward()
    assert x.grad is not None and r.baseline_initialized
    with pytest.raises(attend.Error):
        r.reinforce_loss([1.0, 2.0])  # no Weights call since the last loss
    with pytest.raises(attend.Error):
        A.HardAttention("sample")


def test_local_windows():
    m = A.local_monotonic_mask(3, 6, 1)
    i, j = np.arange(3)[:, None], np.arange(6)[None, :]
    np.testing.assert_array_equal(m.numpy(), np.abs(j - i) > 1)
    with pytest.raises(attend.Error):
        A.local_monotonic_mask(-1, 3, 1)

    g = rng(10)
    tk, window = 9, 2
    lp = A.LocalPredictive(4, 5, window, dtype="float64")
    assert lp.window == window
    lengths = np.array([9, 6])

    def ref(scores, query, params, lens=None):
        s = torch.full((B,), float(tk), dtype=torch.float64) if lens is None else \
            torch.tensor(lens, dtype=torch.float64)
        p = s.unsqueeze(1) * torch.sigmoid(torch.tanh(query @ params["proj.weight"].T) @
                                           params["v"])
        dist = torch.arange(tk, dtype=torch.float64).view(1, 1, tk) - p.unsqueeze(2)
        excluded = (dist.detach().abs() > window) | \
            (torch.arange(tk).view(1, 1, tk) >= s.view(B, 1, 1))
        gauss = torch.exp(-dist * dist / (2 * (window / 2) ** 2))
        return ar.masked_softmax(scores, excluded) * gauss, p
    scores, query = randn(g, B, TQ, tk), randn(g, B, TQ, 4)
    check(lambda s, q: lp.weights(s, q), ref, [scores, query], lp)
    lp.zero_grad()
    check(lambda s, q: lp.weights(s, q, source_lengths=lengths),
          lambda s, q, params: ref(s, q, params, lengths), [scores, query], lp)


# ---- query-key-value ----

def test_scaled_dot_product_attention_composed_and_fused():
    g = rng(11)
    q, k, v = randn(g, B, TQ, 6), randn(g, B, TK, 6), randn(g, B, TK, 4)
    pad = np.arange(TK)[None, :] >= np.array([3, 5])[:, None]  # [B, Tk]
    for m, causal in ((None, False), (pad[:, None, :], False), (pad[:, None, :], True),
                      (mask(g, B, TQ, TK), False), (None, True)):
        tm = None if m is None else torch.tensor(m)
        check(lambda q, k, v: A.scaled_dot_product_attention(q, k, v, m, is_causal=causal),
              lambda q, k, v: ar.sdpa(q, k, v, tm, causal), [q, k, v])
    q4, k4, v4 = randn(g, B, 3, TQ, 6), randn(g, B, 3, TK, 6), randn(g, B, 3, TK, 4)
    for causal in (False, True):
        check(lambda q, k, v: A.fused_scaled_dot_product_attention(
                  q, k, v, key_padding_mask=pad, is_causal=causal),
              lambda q, k, v: ar.sdpa(q, k, v, torch.tensor(pad).view(B, 1, 1, TK), causal)[0],
              [q4, k4, v4])
    np.testing.assert_array_equal(A.causal_mask(2, 4).numpy(), ar.causal_mask(2, 4).numpy())
    check(A.weighted_sum, lambda w, v: w @ v, [g.dirichlet(np.ones(TK), (B, TQ)), v])
    # Dropout: the same generator state gives the same draw in both paths.
    g1, g2 = attend.Generator(5), attend.Generator(5)
    c1, _ = A.scaled_dot_product_attention(q4, k4, v4, dropout_p=0.5, generator=g1)
    c2 = A.fused_scaled_dot_product_attention(q4, k4, v4, dropout_p=0.5, generator=g2)
    close(c1, c2, rtol=1e-9, atol=1e-12)
    with pytest.raises(attend.Error):
        A.scaled_dot_product_attention(q, k, randn(g, B, TK + 1, 4))
    with pytest.raises(attend.Error):
        A.scaled_dot_product_attention(q, k, v, np.zeros((B, TQ, TK)))  # float mask
    with pytest.raises(attend.Error, match="query"):
        A.scaled_dot_product_attention(None, k, v)
    A.check_mask(np.zeros((1, TK), dtype=bool), [B, TQ, TK])
    with pytest.raises(attend.Error):
        A.check_mask(np.zeros((2, TK), dtype=bool), [3, TQ, TK])


def test_fused_kernel_switch():
    before = A.fused_kernels()
    A.set_fused_kernels(False)
    assert not A.fused_kernels()
    A.set_fused_kernels(before)
    assert A.fused_kernels() == before


MHA_CASES = [  # self, bias, key_padding_mask, attn_mask, average
    (True, True, False, "none", True),
    (True, True, True, "causal", False),
    (False, True, True, "2d", False),
    (False, True, False, "3d", True),
    (False, False, True, "none", False),
]


@pytest.mark.parametrize("is_self,bias,use_kpm,am,avg", MHA_CASES)
def test_multi_head_attention_against_torch(is_self, bias, use_kpm, am, avg):
    g = rng(12)
    e, h = 8, 2
    mha = A.MultiHeadAttention(e, h, bias=bias, dtype="float64")
    names = ["in_proj_weight"] + (["in_proj_bias"] if bias else []) + ["out_proj.weight"] + \
        (["out_proj.bias"] if bias else [])
    assert [n for n, _ in mha.named_parameters()] == names
    assert list(mha.state_dict().keys()) == names + ["rng_state"]
    # Non-zero biases so that a bias bug cannot hide.
    mha.load_state_dict({**{n: randn(g, *p.shape, scale=0.4) for n, p in mha.named_parameters()},
                         "rng_state": np.zeros(2, dtype=np.int64)})
    torch_mha = torch.nn.MultiheadAttention(e, h, bias=bias, batch_first=True, dtype=torch.float64)
    tq = TK if is_self else TQ
    kpm = np.arange(TK)[None, :] >= np.array([3, 5])[:, None] if use_kpm else None
    attn = {"none": None, "causal": ar.causal_mask(tq, TK).numpy(), "2d": mask(g, tq, TK),
            "3d": mask(g, B * h, tq, TK)}[am]
    seqs = [randn(g, B, tq, e)] + ([] if is_self else [randn(g, B, TK, e), randn(g, B, TK, e)])

    def run_attend(*xs):
        qkv = (xs[0],) * 3 if is_self else xs
        return mha(*qkv, key_padding_mask=kpm, attn_mask=attn, average_attn_weights=avg)

    def run_torch(*xs, params):
        qkv = (xs[0],) * 3 if is_self else xs
        return torch.nn.utils.stateless.functional_call(
            torch_mha, params, qkv,
            {"key_padding_mask": None if kpm is None else torch.tensor(kpm),
             "attn_mask": None if attn is None else torch.tensor(attn),
             "average_attn_weights": avg})
    check(run_attend, run_torch, seqs, mha)


def test_multi_head_attention_paths_agree():
    g = rng(13)
    e, h, s = 8, 2, 4
    mha = A.MultiHeadAttention(e, h, dtype="float64", generator=attend.Generator(3))
    assert (mha.embed_dim, mha.num_heads, mha.head_dim, mha.dropout) == (e, h, e // h, 0.0)
    x, mem = randn(g, B, TQ, e), randn(g, B, s, e)
    pad = np.array([[False] * s, [False, False, True, True]])
    out, w = mha(x, x, x, is_causal=True)
    out2, w2 = mha.self_attention(x, is_causal=True)
    close(out2, out), close(w2, w)
    o_none, w_none = mha(x, x, x, need_weights=False)
    assert w_none is None
    close(o_none, mha(x, x, x)[0])
    kv = mha.cross_keys_values(mem)
    out, w = mha.cross_attention(x, kv, pad_mask=pad)
    ref, wref = mha(x, mem, mem, key_padding_mask=pad)
    close(out, ref), close(w, wref)
    # The shared core over projected heads.
    q = mha.split_heads(mha.project(x, 0, e))
    k = mha.split_heads(mha.project(mem, e, e))
    v = mha.split_heads(mha.project(mem, 2 * e, e))
    assert tuple(q.shape) == (B, h, TQ, e // h)
    close(A.MultiHeadAttention.merge_heads(q), to_np(mha.project(x, 0, e)))
    out, w = mha.attend_heads(q, k, v, pad_mask=pad, average_attn_weights=False)
    close(out, ref)
    assert tuple(w.shape) == (B, h, TQ, s)
    assert not mha.uses_fused_kernel(TQ, s, True)
    with pytest.raises(attend.Error):
        mha.project(x, 2 * e, 2 * e)
    # Incremental decoding: step by step equals causal self-attention.
    cache = A.KVCache.empty(B, h, TQ, e // h, dtype="float64")
    assert cache.capacity == TQ and cache.length == 0
    full, _ = mha.self_attention(x, is_causal=True)
    steps = [to_np(mha.self_attention_step(x[:, t:t + 1], cache)) for t in range(TQ)]
    assert cache.length == TQ
    close(np.concatenate(steps, 1), full)
    with pytest.raises(attend.Error):
        mha.self_attention_step(x[:, :1], cache)  # full
    cache.reorder([1, 0], TQ + 2)
    assert cache.capacity == TQ + 2
    # Packed f32 weights in eval mode give the unpacked result.
    m32 = A.MultiHeadAttention(e, h)
    m32.eval()
    x32 = x.astype(np.float32)
    packed = m32.pack(False)
    # The packed path is for inference: no graph is recorded.
    with attend.no_grad():
        c32 = A.KVCache.empty(B, h, 2, e // h)
        ref32, _ = m32.self_attention(x32[:, :2], is_causal=True)
        got = np.concatenate([to_np(m32.self_attention_step(x32[:, t:t + 1], c32, packed))
                              for t in range(2)], 1)
        np.testing.assert_allclose(got, to_np(ref32), rtol=1e-5, atol=1e-6)
        kv32 = m32.cross_keys_values(mem.astype(np.float32))
        a, _ = m32.cross_attention(x32, kv32, packed=m32.pack(True), need_weights=False)
        b, _ = m32(x32, mem.astype(np.float32), mem.astype(np.float32))
    np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-5, atol=1e-6)


def test_multi_head_attention_errors_and_dropout():
    with pytest.raises(attend.Error):
        A.MultiHeadAttention(6, 4)  # 6 % 4 != 0
    with pytest.raises(attend.Error):
        A.MultiHeadAttention(8, 2, dropout=1.5)
    mha = A.MultiHeadAttention(8, 2, dropout=0.5)
    x = np.random.default_rng(0).standard_normal((1, 4, 8)).astype(np.float32)
    with pytest.raises(attend.Error):
        mha(x, x, x, attn_mask=np.zeros((3, 3), dtype=bool))
    with pytest.raises(attend.Error):
        mha(x, x, x[:, :, :4])
    with pytest.raises(attend.Error):
        mha.load_state_dict({"in_proj_weight": np.zeros((3, 3))}, strict=False)
    with pytest.raises(attend.Error):
        mha.load_state_dict({"bogus": np.zeros(3)})
    mha.train()
    a, _ = mha(x, x, x)
    b, _ = mha(x, x, x)
    assert not np.array_equal(to_np(a), to_np(b))  # dropout draws a fresh mask
    assert to_np(mha.rng_state)[1] > 0  # the stream is mirrored into the buffer
    mha.eval()
    np.testing.assert_array_equal(to_np(mha(x, x, x)[0]), to_np(mha(x, x, x)[0]))


# ---- structures ----

def test_context_attention():
    g = rng(14)
    ca = A.ContextAttention(6, 5, dtype="float64")
    ref = sr.ContextAttention(6, 5).double()
    h, m = randn(g, B, TK, 6), np.arange(TK)[None, :] >= np.array([2, 5])[:, None]

    def run_torch(h, params):
        return torch.nn.utils.stateless.functional_call(ref, params, (h, torch.tensor(m)))
    check(lambda h: ca(h, m), run_torch, [h], ca)
    with pytest.raises(attend.Error):
        ca(randn(g, B, TK, 5))


def test_hierarchical_attention_network():
    g = rng(15)
    han = A.HierarchicalAttentionNetwork(11, 4, 3, 5, 6, dtype="float64")
    ref = sr.HierarchicalAttentionNetwork(11, 4, 3, 5, 6).double()
    assert [n for n, _ in han.named_parameters()] == [n for n, _ in ref.named_parameters()]
    words = g.integers(1, 11, (2, 3, 4))
    lengths = np.array([[4, 2, 0], [3, 4, 1]])
    counts = np.array([2, 3])

    def run_torch(params):
        return ref(torch.tensor(words), torch.tensor(lengths), torch.tensor(counts))
    check(lambda: han(words, lengths, counts), run_torch, [], han, torch_module=ref)
    with pytest.raises(attend.Error):
        han(words, lengths, np.array([0, 3]))


def test_sparse_attentive_backtracking():
    g = rng(16)
    sab = A.SparseAttentiveBacktracking(3, 4, ktop=2, katt=2, ktrunc=3, dtype="float64")
    assert (sab.ktop, sab.katt, sab.ktrunc) == (2, 2, 3)
    ref = sr.SparseAttentiveBacktracking(3, 4, 2, 2, 3).double()
    assert [n for n, _ in sab.named_parameters()] == [n for n, _ in ref.named_parameters()]
    x = randn(g, B, 9, 3)
    out, weights, steps = sab(x)
    _, ref_steps = ref(torch.tensor(x))
    assert steps == ref_steps and len(weights) == len(steps)

    def run_attend(x):
        o, w, _ = sab(x)
        return [o] + w

    def run_torch(x, params):
        return torch.nn.utils.stateless.functional_call(ref, params, (x,))[0]
    check(run_attend, run_torch, [x], sab)


def test_stacked_latent_attention():
    g = rng(17)
    sla = A.StackedLatentAttention(DQ, DK, AD, 3, dtype="float64")
    ref = sr.StackedLatentAttention(DQ, DK, AD, 3).double()
    # attend keeps lists of layers; torch's reference names them key_proj_<l>, query_proj_<l>.
    names = [n for n, _ in sla.named_parameters()]
    assert sorted(names) == sorted(n for n, _ in ref.named_parameters())
    assert len(sla.key_proj) == 3 and len(sla.v) == 3
    q, k, m = randn(g, B, TQ, DQ), randn(g, B, TK, DK), mask(g, B, TQ, TK)

    def run_attend(q, k):
        c, w = sla(q, k, m)
        return [c] + w

    def run_torch(q, k, params):
        return torch.nn.utils.stateless.functional_call(ref, params, (q, k, torch.tensor(m)))
    check(run_attend, run_torch, [q, k], sla)


def test_transparent_attention():
    g = rng(18)
    ta = A.TransparentAttention(3, 2, dtype="float64")
    ta.load_state_dict({"logits": randn(g, 2, 3)})
    ref = sr.TransparentAttention(3, 2).double()
    layers = [randn(g, B, TK, 4) for _ in range(3)]

    def run_attend(*ls):
        return ta(list(ls)) + [ta.mix_weights()]

    def run_torch(*ls, params):
        return torch.nn.utils.stateless.functional_call(ref, params, ls)
    check(run_attend, run_torch, layers, ta)
    with pytest.raises(attend.Error):
        ta(layers[:2])


def test_squeeze_excitation_and_se_cnn():
    g = rng(19)
    se = A.SqueezeExcitation(6, 2, dtype="float64")
    ref = sr.SqueezeExcitation(6, 2).double()

    def run_torch(x, params):
        return torch.nn.utils.stateless.functional_call(ref, params, (x,))
    check(lambda x: se.forward_with_weights(x), run_torch, [randn(g, B, 6, 3, 4)], se)
    se.zero_grad()
    check(lambda x: se(x), lambda x, params: run_torch(x, params)[0], [randn(g, B, 6, 5)], se)
    with pytest.raises(attend.Error):
        se(randn(g, B, 5, 3))

    net = A.SeCnn(2, 4, 6, 3, 2, dtype="float64")
    names = [n for n, _ in net.named_parameters()]
    assert names[:2] == ["conv1.weight", "conv1.bias"] and names[-1] == "classifier.bias"

    def secnn(x, params):
        p = params
        h = torch.relu(F.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1))
        s1 = torch.sigmoid(F.linear(torch.relu(F.linear(h.mean((2, 3)), p["se1.fc1.weight"],
                                                        p["se1.fc1.bias"])),
                                    p["se1.fc2.weight"], p["se1.fc2.bias"]))
        h = F.max_pool2d(h * s1[:, :, None, None], 2)
        h = torch.relu(F.conv2d(h, p["conv2.weight"], p["conv2.bias"], padding=1))
        s2 = torch.sigmoid(F.linear(torch.relu(F.linear(h.mean((2, 3)), p["se2.fc1.weight"],
                                                        p["se2.fc1.bias"])),
                                    p["se2.fc2.weight"], p["se2.fc2.bias"]))
        h = h * s2[:, :, None, None]
        return F.linear(h.mean((2, 3)), p["classifier.weight"], p["classifier.bias"]), s1, s2

    def run_attend(x):
        logits, ws = net(x)
        return [logits] + ws
    check(run_attend, secnn, [randn(g, B, 2, 4, 6)], net)


@pytest.mark.parametrize("gate", [True, False])
def test_image_attention(gate):
    g = rng(20)
    ia = A.ImageAttention(5, 4, 6, gate=gate, dtype="float64")
    assert (ia.gate is None) == (not gate)
    ref = sr.ImageAttention(5, 4, 6, gate).double()
    assert [n for n, _ in ia.named_parameters()] == [n for n, _ in ref.named_parameters()]
    feats, h1, h2 = randn(g, B, 5, 2, 3), randn(g, B, 4), randn(g, B, 4)

    def run_attend(f, h1, h2):
        p = ia.prepare(f)
        assert (p.height, p.width) == (2, 3) and tuple(p.keys.shape) == (B, 6, 6)
        return list(ia.step(p, h1)) + list(ia.step(p, h2))

    def run_torch(f, h1, h2, params):
        return torch.nn.utils.stateless.functional_call(ref, params, (f, h1, h2))
    check(run_attend, run_torch, [feats, h1, h2], ia)


# ---- modules and arguments ----

def test_module_state_dict_round_trip_and_modes():
    a = A.AdditiveScore(DQ, DK, AD, generator=attend.Generator(1))
    b = A.AdditiveScore(DQ, DK, AD, generator=attend.Generator(2))
    assert sum(p.numel() for p in a.parameters()) == AD + AD * DQ + AD * DK + AD
    assert not np.array_equal(to_np(a.v), to_np(b.v))
    b.load_state_dict(a.state_dict())
    for (n1, p1), (n2, p2) in zip(a.named_parameters(), b.named_parameters()):
        assert n1 == n2 and np.array_equal(to_np(p1), to_np(p2))
    assert len(a.parameters()) == 4 and all(p.requires_grad for p in a.parameters())
    assert a.training
    a.eval()
    assert not a.training
    a.train()
    assert a.training
    # Same generator seed, same initialisation.
    c = A.AdditiveScore(DQ, DK, AD, generator=attend.Generator(1))
    assert np.array_equal(to_np(c.v), to_np(b.v))


def test_bad_arguments_raise():
    for make in (lambda: A.AdditiveScore(-1, 2, 3), lambda: A.GeneralScore(0, 2),
                 lambda: A.ContextAttention(3, -2), lambda: A.StackedLatentAttention(2, 2, 2, 0),
                 lambda: A.SqueezeExcitation(2, 4), lambda: A.TransparentAttention(0, 1),
                 lambda: A.SparseAttentiveBacktracking(2, 3, 0, 1, 1),
                 lambda: A.LocalPredictive(2, 3, 0), lambda: A.KVCache.empty(1, 1, -1, 2),
                 lambda: A.AdditiveScore(2, 2, 2, dtype="int8")):
        with pytest.raises(attend.Error):
            make()
    s = A.DotScore()
    with pytest.raises(attend.Error):
        s(np.zeros((2, 3, 4)), np.zeros((2, 3, 5)))
    with pytest.raises(attend.Error):
        s(np.zeros((2, 3, 4)), np.zeros((3, 3, 4)))
    with pytest.raises(attend.Error, match="query"):
        s(None, np.zeros((2, 3, 4)))
    with pytest.raises((attend.Error, TypeError)):
        A.weighted_sum("weights", np.zeros((2, 3, 4)))
    with pytest.raises(TypeError):
        A.top_k_weights(np.zeros((2, 3)), "two")
    with pytest.raises(TypeError):
        mha_cache = A.MultiHeadAttention(4, 2)
        mha_cache.self_attention_step(np.zeros((1, 1, 4), dtype=np.float32), "cache")
    mha = A.MultiHeadAttention(4, 2)
    with pytest.raises(attend.Error):
        mha.cross_attention(np.zeros((1, 2, 4), dtype=np.float32), A.KVCache())
    with pytest.raises(attend.Error):
        A.KVCache().reorder([0], 1)
    assert A.scaled_dot_product_attention.__doc__ and A.MultiHeadAttention.__doc__
