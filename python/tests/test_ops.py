"""The ops as module functions and Tensor methods (attend.softmax, attend.conv2d, x.sum(dim),
attend.grad, ...): values and gradients against PyTorch in float64, and clear errors
(attend.Error) for bad arguments."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import attend

RTOL64, ATOL64 = 1e-10, 1e-12
RTOL32, ATOL32 = 1e-5, 1e-6

rng = np.random.default_rng(1234)


def randn(*shape):
    return rng.standard_normal(shape)


def close(got, want, rtol=RTOL64, atol=ATOL64):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    got = got.detach().numpy() if isinstance(got, attend.Tensor) else np.asarray(got)
    assert got.shape == want.shape, (got.shape, want.shape)
    if got.dtype == np.bool_ or np.issubdtype(got.dtype, np.integer):
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def outputs_of(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def check(fn_attend, fn_torch, *arrays, fn_args=None, rtol=RTOL64, atol=ATOL64):
    """Calls fn_attend on attend tensors and fn_torch on torch tensors made from `arrays` (float
    arrays require grad, others are index/mask data), compares every output, then back-propagates
    the same random upstream gradient through both and compares the gradients of the inputs."""
    a_in, t_in = [], []
    for x in arrays:
        x = np.asarray(x)
        needs = x.dtype.kind == "f"
        a_in.append(attend.tensor(x, requires_grad=needs))
        t_in.append(torch.tensor(x, requires_grad=needs))
    a_out = outputs_of(fn_attend(*a_in))
    t_out = outputs_of(fn_torch(*t_in))
    assert len(a_out) == len(t_out)
    for a, t in zip(a_out, t_out):
        close(a, t, rtol, atol)
    a_loss, t_loss = None, None
    for a, t in zip(a_out, t_out):
        if not t.requires_grad:
            continue
        g = randn(*t.shape).astype(t.detach().numpy().dtype)
        al = attend.sum(a * attend.tensor(g))
        tl = (t * torch.tensor(g)).sum()
        a_loss = al if a_loss is None else a_loss + al
        t_loss = tl if t_loss is None else t_loss + tl
    if t_loss is None:
        return a_out
    a_loss.backward()
    t_loss.backward()
    for a, t in zip(a_in, t_in):
        if t.requires_grad:
            if t.grad is None:
                assert a.grad is None or not np.any(a.grad.numpy())
            else:
                close(a.grad, t.grad, rtol, atol)
    return a_out


# ---- elementwise ----

@pytest.mark.parametrize("name,positive", [
    ("neg", False), ("abs", False), ("exp", False), ("log", True), ("sqrt", True),
    ("rsqrt", True), ("tanh", False), ("sigmoid", False), ("relu", False)])
def test_unary(name, positive):
    x = randn(3, 4)
    if positive:
        x = np.abs(x) + 0.1
    check(getattr(attend, name), getattr(torch, name), x)
    # the Tensor method of the same name
    check(lambda a: getattr(a, name)(), lambda t: getattr(t, name)(), x)


def test_gelu_is_the_exact_form():
    check(attend.gelu, F.gelu, randn(5, 3))
    with pytest.raises(attend.Error, match="approximate"):
        attend.gelu(attend.ones(2), approximate="tanh")


def test_binary_ops_broadcast_with_tensors_and_numbers():
    x, y = randn(2, 3, 4), randn(3, 1)
    check(attend.add, torch.add, x, y)
    check(lambda a, b: attend.add(a, b, alpha=2.5), lambda a, b: torch.add(a, b, alpha=2.5), x, y)
    check(attend.sub, torch.sub, x, y)
    check(lambda a, b: attend.sub(a, b, alpha=-0.5), lambda a, b: torch.sub(a, b, alpha=-0.5),
          x, y)
    check(attend.mul, torch.mul, x, y)
    check(attend.div, torch.div, x, np.abs(y) + 0.5)
    check(lambda a: attend.add(a, 1.5), lambda t: t + 1.5, x)
    check(lambda a: attend.add(2.0, a), lambda t: 2.0 + t, x)
    check(lambda a: attend.sub(a, 3, alpha=2), lambda t: torch.sub(t, 3, alpha=2), x)
    check(lambda a: attend.sub(1.0, a), lambda t: 1.0 - t, x)
    check(lambda a: attend.mul(a, -2.0), lambda t: t * -2.0, x)
    check(lambda a: attend.mul(3.0, a), lambda t: 3.0 * t, x)
    check(lambda a: attend.div(a, 4.0), lambda t: t / 4.0, x)
    check(lambda a: attend.div(2.0, a), lambda t: 2.0 / t, np.abs(x) + 0.5)
    check(lambda a, b: a.add(b), lambda a, b: a.add(b), x, y)
    check(lambda a, b: a.divide(b), lambda a, b: a.divide(b), x, np.abs(y) + 0.5)
    # NumPy arrays and nested lists are accepted as operands
    out = attend.add(np.ones((2, 2), np.float32), [[1.0, 2.0], [3.0, 4.0]])  # lists are float32
    np.testing.assert_array_equal(out.numpy(), [[2.0, 3.0], [4.0, 5.0]])


def test_pow_and_clamp():
    x = np.abs(randn(3, 4)) + 0.2
    check(lambda a: attend.pow(a, 2.5), lambda t: torch.pow(t, 2.5), x)
    check(lambda a: a.pow(-1.0), lambda t: t.pow(-1.0), x)
    y = randn(4, 5)
    check(lambda a: attend.clamp(a, min=-0.5, max=0.7), lambda t: torch.clamp(t, -0.5, 0.7), y)
    check(lambda a: attend.clamp(a, min=0.1), lambda t: torch.clamp(t, min=0.1), y)
    check(lambda a: attend.clip(a, max=0.1), lambda t: torch.clip(t, max=0.1), y)
    check(lambda a: a.clamp(-0.2, 0.2), lambda t: t.clamp(-0.2, 0.2), y)
    with pytest.raises(attend.Error, match="at least one"):
        attend.clamp(attend.ones(2))


def test_float32_within_float32_tolerance():
    x, y = randn(4, 5).astype(np.float32), randn(5, 3).astype(np.float32)
    check(lambda a, b: attend.softmax(attend.matmul(a, b), -1),
          lambda a, b: torch.softmax(a @ b, -1), x, y, rtol=RTOL32, atol=ATOL32)
    assert attend.exp(attend.tensor(x)).dtype == "float32"


# ---- comparisons and selection ----

def test_comparisons_and_logical_ops():
    x, y = randn(3, 4), randn(4)
    x[0, 0] = y[0]
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        check(getattr(attend, name), getattr(torch, name), x, y)
        check(lambda a, n=name: getattr(attend, n)(a, 0.25),
              lambda t, n=name: getattr(torch, n)(t, 0.25), x)
        check(lambda a, b, n=name: getattr(a, n)(b), lambda a, b, n=name: getattr(a, n)(b), x, y)
    p, q = x > 0, y > 0
    check(attend.logical_not, torch.logical_not, p)
    check(attend.logical_and, torch.logical_and, p, q)
    check(attend.logical_or, torch.logical_or, p, q)
    check(lambda a, b: a.logical_and(b), lambda a, b: a.logical_and(b), p, q)
    assert attend.gt(attend.tensor(x), 0.0).dtype == "bool"
    ints = attend.tensor([0, 1, 2])
    np.testing.assert_array_equal(attend.ge(ints, 1).numpy(), [False, True, True])
    with pytest.raises(attend.Error, match="0.5"):
        attend.ge(ints, 0.5)  # would compare against 0 in int64


def test_where_and_masked_fill():
    c, x, y = randn(3, 1) > 0, randn(3, 4), randn(4)
    check(attend.where, torch.where, c, x, y)
    check(lambda c_, a: attend.where(c_, a, 0.5),
          lambda c_, t: torch.where(c_, t, torch.tensor(0.5, dtype=torch.float64)), c, x)
    check(lambda c_, a: attend.where(c_, -1.0, a),
          lambda c_, t: torch.where(c_, torch.tensor(-1.0, dtype=torch.float64), t), c, x)
    check(lambda c_, a, b: a.where(c_, b), lambda c_, a, b: a.where(c_, b), c, x, y)
    m = randn(1, 4) > 0
    check(lambda a, m_: attend.masked_fill(a, m_, -7.0), lambda t, m_: t.masked_fill(m_, -7.0),
          x, m)
    check(lambda a, m_: a.masked_fill(m_, 2.0), lambda t, m_: t.masked_fill(m_, 2.0), x, m)
    with pytest.raises(attend.Error, match="tensor"):
        attend.where(attend.tensor([True]), 1.0, 2.0)


# ---- reductions ----

@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), (-1, True), ((0, 2), False),
                                         ([0, 1], True)])
def test_sum_mean_amax_amin(dim, keepdim):
    x = randn(3, 4, 5)  # continuous values: no ties

    def targs(d):
        return () if d is None else (tuple(d) if isinstance(d, list) else d,)

    for name in ("sum", "mean", "amax", "amin"):
        tfn = getattr(torch, name)
        if dim is None:
            check(getattr(attend, name), tfn, x)
        else:
            check(lambda a, n=name: getattr(attend, n)(a, dim, keepdim=keepdim),
                  lambda t, f=tfn: f(t, *targs(dim), keepdim=keepdim), x)
    check(lambda a: a.sum(dim=dim, keepdim=keepdim),
          lambda t: t.sum(*targs(dim), keepdim=keepdim) if dim is not None else t.sum(), x)


def test_max_min_with_and_without_dim():
    x = randn(4, 6)
    check(attend.max, torch.max, x)
    check(attend.min, torch.min, x)
    for keepdim in (False, True):
        out = check(lambda a: attend.max(a, 1, keepdim=keepdim),
                    lambda t: tuple(torch.max(t, 1, keepdim=keepdim)), x)
        assert out[1].dtype == "int64"
        check(lambda a: attend.min(a, dim=0, keepdim=keepdim),
              lambda t: tuple(torch.min(t, dim=0, keepdim=keepdim)), x)
    res = attend.tensor(x).max(dim=-1)
    np.testing.assert_array_equal(res.values.numpy(), x.max(-1))
    np.testing.assert_array_equal(res.indices.numpy(), x.argmax(-1))
    v, i = attend.tensor(x).min(0)
    np.testing.assert_array_equal(i.numpy(), x.argmin(0))


def test_argmax_argmin():
    x = randn(3, 5)
    check(attend.argmax, torch.argmax, x)
    check(attend.argmin, torch.argmin, x)
    check(lambda a: attend.argmax(a, 1), lambda t: torch.argmax(t, 1), x)
    check(lambda a: attend.argmin(a, 0, keepdim=True), lambda t: torch.argmin(t, 0, keepdim=True),
          x)
    check(lambda a: a.argmax(dim=-1), lambda t: t.argmax(dim=-1), x)


def test_var_and_std():
    x = randn(4, 5)
    check(attend.var, torch.var, x)
    check(lambda a: attend.var(a, 1, unbiased=False), lambda t: torch.var(t, 1, unbiased=False), x)
    check(lambda a: attend.var(a, (0, 1), keepdim=True),
          lambda t: torch.var(t, (0, 1), keepdim=True), x)
    check(lambda a: attend.var(a, 0, correction=0), lambda t: torch.var(t, 0, unbiased=False), x)
    check(attend.std, torch.std, x)
    check(lambda a: a.std(1, keepdim=True), lambda t: t.std(1, keepdim=True), x)
    check(lambda a: a.var(0), lambda t: t.var(0), x)


# ---- linear algebra ----

@pytest.mark.parametrize("sa,sb", [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 2)), ((3, 4), (4, 5)),
                                   ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul(sa, sb):
    check(attend.matmul, torch.matmul, randn(*sa), randn(*sb))


@pytest.mark.parametrize("sx", [(3, 5), (2, 3, 5), (5,)])
def test_linear(sx):
    check(attend.linear, F.linear, randn(*sx), randn(4, 5), randn(4))
    check(lambda x, w: attend.linear(x, w), lambda x, w: F.linear(x, w), randn(*sx), randn(4, 5))
    with pytest.raises(attend.Error, match="Linear"):
        attend.linear(attend.ones(3, 5), attend.ones(4, 6))


def test_mm_bmm_and_method():
    check(attend.mm, torch.mm, randn(3, 4), randn(4, 2))
    check(attend.bmm, torch.bmm, randn(2, 3, 4), randn(2, 4, 5))
    check(lambda a, b: a.matmul(b), lambda a, b: a.matmul(b), randn(3, 4), randn(4, 2))
    check(lambda a, b: a.mm(b), lambda a, b: a.mm(b), randn(3, 4), randn(4, 2))
    # a transposed view goes in without a copy and gives the same product
    a = randn(5, 3)
    check(lambda t: attend.matmul(t.T, t), lambda t: t.T @ t, a)
    with pytest.raises(attend.Error, match="mm"):
        attend.mm(attend.ones(2, 3, 4, dtype="float64"), attend.ones(4, 2, dtype="float64"))
    with pytest.raises(attend.Error, match="bmm"):
        attend.bmm(attend.ones(3, 4), attend.ones(4, 2))
    with pytest.raises(attend.Error):
        attend.matmul(attend.ones(3, 4), attend.ones(5, 2))


# ---- normalisation and probabilities ----

def test_softmax_and_log_softmax():
    x = randn(3, 4, 5)
    for dim in (0, 1, -1):
        check(lambda a: attend.softmax(a, dim), lambda t: torch.softmax(t, dim), x)
        check(lambda a: attend.log_softmax(a, dim=dim), lambda t: torch.log_softmax(t, dim), x)
    check(lambda a: a.softmax(-1), lambda t: t.softmax(-1), x)
    check(lambda a: a.log_softmax(1), lambda t: t.log_softmax(1), x)


def test_softmax_with_mask():
    x = randn(3, 5)
    mask = rng.random((3, 5)) < 0.4
    mask[:, 0] = False
    check(lambda a, m: attend.softmax(a, -1, mask=m),
          lambda t, m: torch.softmax(t.masked_fill(m, float("-inf")), -1), x, mask)
    # a fully masked row gives zeros and a zero gradient
    full = np.zeros((2, 4), bool)
    full[1] = True
    a = attend.tensor(randn(2, 4), requires_grad=True)
    p = attend.softmax(a, 1, mask=full)
    np.testing.assert_array_equal(p.detach().numpy()[1], np.zeros(4))
    attend.sum(p * attend.tensor(randn(2, 4))).backward()
    np.testing.assert_array_equal(a.grad.numpy()[1], np.zeros(4))
    lp = attend.log_softmax(a, 1, mask=full).detach().numpy()
    assert np.all(np.isneginf(lp[1]))
    close(lp[0], torch.log_softmax(torch.tensor(a.detach().numpy()[0]), 0))


def test_log_softmax_with_mask_on_kept_positions():
    x = randn(4, 6)
    mask = rng.random((1, 6)) < 0.5
    mask[0, 2] = False
    a = attend.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    keep = ~mask[0]
    out = attend.log_softmax(a, -1, mask=mask)
    ref = torch.log_softmax(t.masked_fill(torch.tensor(mask), float("-inf")), -1)
    close(out.detach().numpy()[:, keep], ref[:, keep])
    g = randn(4, int(keep.sum()))
    attend.sum(attend.index_select(out, 1, np.flatnonzero(keep)) * attend.tensor(g)).backward()
    (ref[:, keep] * torch.tensor(g)).sum().backward()
    close(a.grad, t.grad)


def test_layer_norm():
    x, w, b = randn(2, 3, 4), randn(4), randn(4)
    check(lambda a, w_, b_: attend.layer_norm(a, (4,), w_, b_),
          lambda t, w_, b_: F.layer_norm(t, (4,), w_, b_), x, w, b)
    w2, b2 = randn(3, 4), randn(3, 4)
    check(lambda a, w_, b_: attend.layer_norm(a, [3, 4], weight=w_, bias=b_, eps=1e-3),
          lambda t, w_, b_: F.layer_norm(t, [3, 4], w_, b_, eps=1e-3), x, w2, b2)
    check(lambda a: attend.layer_norm(a, 4), lambda t: F.layer_norm(t, (4,)), x)
    with pytest.raises(attend.Error, match="normalized_shape"):
        attend.layer_norm(attend.tensor(x), (5,))
    with pytest.raises(attend.Error, match="normalized_shape"):
        attend.layer_norm(attend.tensor(x), (1, 2, 3, 4))


def test_dropout():
    x = attend.tensor(np.ones((200, 50)), requires_grad=True)
    y = attend.dropout(x, 0.3, generator=attend.Generator(7))
    v = y.detach().numpy()
    kept = v != 0
    np.testing.assert_allclose(v[kept], 1.0 / 0.7, rtol=RTOL64)
    assert 0.25 < 1.0 - kept.mean() < 0.35
    attend.sum(y).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, 1.0 / 0.7, 0.0), rtol=RTOL64)
    # the same generator seed gives the same mask; training=False and p=0 are the identity
    y2 = attend.dropout(x, p=0.3, generator=attend.Generator(7)).detach().numpy()
    np.testing.assert_array_equal(v, y2)
    np.testing.assert_array_equal(attend.dropout(x, 0.3, training=False).detach().numpy(), 1.0)
    np.testing.assert_array_equal(attend.dropout(x, 0.0).detach().numpy(), 1.0)
    attend.manual_seed(3)
    d1 = attend.dropout(x.detach(), 0.5).numpy()
    attend.manual_seed(3)
    d2 = attend.dropout(x.detach(), 0.5).numpy()
    np.testing.assert_array_equal(d1, d2)
    with pytest.raises(attend.Error, match="probability"):
        attend.dropout(x, 1.5)


# ---- indexing ----

def test_embedding_with_padding_idx():
    w = randn(6, 3)
    idx = np.array([[0, 2, 5], [2, 2, 1]])
    check(lambda i, w_: attend.embedding(i, w_), lambda i, w_: F.embedding(i, w_), idx, w)
    check(lambda i, w_: attend.embedding(i, w_, padding_idx=2),
          lambda i, w_: F.embedding(i, w_, padding_idx=2), idx, w)
    check(lambda i, w_: attend.embedding(i, w_, padding_idx=-1),
          lambda i, w_: F.embedding(i, w_, padding_idx=-1), idx, w)
    with pytest.raises(attend.Error, match="padding_idx"):
        attend.embedding(idx, w, padding_idx=6)
    with pytest.raises(attend.Error):
        attend.embedding(np.array([7]), w)


def test_index_select_gather_topk():
    x = randn(4, 5)
    idx = np.array([3, 0, 3])
    check(lambda a, i: attend.index_select(a, 0, i), lambda t, i: torch.index_select(t, 0, i),
          x, idx)
    check(lambda a, i: a.index_select(1, i), lambda t, i: t.index_select(1, i), x, idx)
    gi = rng.integers(0, 4, size=(3, 5))
    check(lambda a, i: attend.gather(a, 0, i), lambda t, i: torch.gather(t, 0, i), x, gi)
    gi1 = rng.integers(0, 5, size=(4, 2))
    check(lambda a, i: a.gather(1, i), lambda t, i: t.gather(1, i), x, gi1)
    for largest in (True, False):
        check(lambda a: attend.topk(a, 3, largest=largest),
              lambda t: tuple(torch.topk(t, 3, largest=largest)), x)
        check(lambda a: attend.topk(a, 2, dim=0, largest=largest),
              lambda t: tuple(torch.topk(t, 2, dim=0, largest=largest)), x)
    r = attend.tensor(x).topk(2)
    np.testing.assert_array_equal(r.indices.numpy(), np.argsort(-x, 1)[:, :2])
    with pytest.raises(attend.Error, match="out of range"):
        attend.topk(x, 6)
    with pytest.raises(attend.Error):
        attend.index_select(x, 0, np.array([9]))


# ---- joining and splitting ----

def test_cat_stack():
    a, b = randn(2, 3), randn(4, 3)
    check(lambda p, q: attend.cat([p, q]), lambda p, q: torch.cat([p, q]), a, b)
    check(lambda p, q: attend.concat((p.T, q.T), dim=1), lambda p, q: torch.cat((p.T, q.T), 1),
          a, b)
    c = randn(2, 3)
    check(lambda p, q: attend.stack([p, q], 1), lambda p, q: torch.stack([p, q], 1), a, c)
    check(lambda p, q: attend.stack((p, q), dim=-1), lambda p, q: torch.stack((p, q), -1), a, c)
    with pytest.raises(attend.Error):
        attend.stack([a, b])
    with pytest.raises(attend.Error):
        attend.cat([])
    with pytest.raises(attend.Error, match="None"):
        attend.cat([a, None])


def test_split_chunk():
    x = randn(7, 4)
    check(lambda a: attend.split(a, 3), lambda t: torch.split(t, 3), x)
    check(lambda a: attend.split(a, [1, 4, 2]), lambda t: torch.split(t, [1, 4, 2]), x)
    check(lambda a: attend.split(a, 2, dim=1), lambda t: torch.split(t, 2, dim=1), x)
    check(lambda a: a.split([3, 1], 1), lambda t: t.split([3, 1], 1), x)
    check(lambda a: attend.chunk(a, 3), lambda t: torch.chunk(t, 3), x)
    check(lambda a: a.chunk(2, dim=1), lambda t: t.chunk(2, dim=1), x)
    assert isinstance(attend.split(x, 3), tuple)
    with pytest.raises(attend.Error, match="sum"):
        attend.split(x, [3, 3])
    with pytest.raises(attend.Error):
        attend.split(x, [3, -1, 5])
    with pytest.raises(attend.Error, match="positive"):
        attend.split(x, 0)
    with pytest.raises(attend.Error, match="positive"):
        attend.chunk(x, 0)


# ---- losses ----

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(reduction, smoothing):
    logits = randn(6, 5)
    target = np.array([0, 4, -100, 2, 2, 1])
    check(lambda a, y: attend.cross_entropy(a, y, reduction=reduction, label_smoothing=smoothing),
          lambda t, y: F.cross_entropy(t, y, reduction=reduction, label_smoothing=smoothing),
          logits, target)
    target[2] = 3
    check(lambda a, y: attend.cross_entropy(a, y, ignore_index=1, reduction=reduction,
                                            label_smoothing=smoothing),
          lambda t, y: F.cross_entropy(t, y, ignore_index=1, reduction=reduction,
                                       label_smoothing=smoothing), logits, target)


def test_cross_entropy_errors():
    with pytest.raises(attend.Error, match="reduction"):
        attend.cross_entropy(randn(2, 3), np.array([0, 1]), reduction="avg")
    with pytest.raises(attend.Error):
        attend.cross_entropy(randn(2, 3), np.array([0, 1, 2]))
    with pytest.raises(attend.Error, match="None"):
        attend.cross_entropy(randn(2, 3), None)


# ---- convolution and pooling ----

def test_conv1d():
    x, w, b = randn(2, 4, 11), randn(6, 2, 3), randn(6)
    check(lambda a, w_, b_: attend.conv1d(a, w_, b_, stride=2, padding=1, dilation=2, groups=2),
          lambda t, w_, b_: F.conv1d(t, w_, b_, stride=2, padding=1, dilation=2, groups=2),
          x, w, b)
    w1 = randn(3, 4, 5)
    check(attend.conv1d, F.conv1d, x, w1)
    check(lambda a, w_: attend.conv1d(a, w_, padding=2), lambda t, w_: F.conv1d(t, w_, padding=2),
          x[0], w1)
    with pytest.raises(attend.Error):
        attend.conv1d(x, randn(6, 3, 3))
    with pytest.raises(attend.Error, match="positive"):
        attend.conv1d(x, w1, stride=0)
    with pytest.raises(attend.Error, match="non-negative"):
        attend.conv1d(x, w1, padding=-1)


def test_conv2d_and_causal_conv2d():
    x, w, b = randn(2, 3, 7, 8), randn(4, 3, 3, 2), randn(4)
    check(lambda a, w_, b_: attend.conv2d(a, w_, b_, stride=(2, 1), padding=1, dilation=(1, 2)),
          lambda t, w_, b_: F.conv2d(t, w_, b_, stride=(2, 1), padding=1, dilation=(1, 2)),
          x, w, b)
    check(lambda a, w_: attend.conv2d(a, w_, groups=3), lambda t, w_: F.conv2d(t, w_, groups=3),
          x, randn(6, 1, 2, 2))
    wc = randn(5, 3, 2, 3)  # KH = 2, KW = 3: reads rows i-1..i, columns j-1..j+1
    check(lambda a, w_, b_: attend.causal_conv2d(a, w_, b_),
          lambda t, w_, b_: F.conv2d(F.pad(t, (1, 1, 1, 0)), w_, b_), x, wc, randn(5))
    check(attend.causal_conv2d, lambda t, w_: F.conv2d(F.pad(t, (1, 1, 1, 0)), w_), x, wc)
    with pytest.raises(attend.Error, match="pair"):
        attend.conv2d(x, w, stride=(1, 2, 3))
    with pytest.raises(attend.Error, match="positive"):
        attend.conv2d(x, w, dilation=(0, 1))
    with pytest.raises(attend.Error):
        attend.conv2d(x[0, 0], w)


def test_pooling():
    x1, x2 = randn(2, 3, 10), randn(2, 3, 7, 9)
    check(lambda a: attend.max_pool1d(a, 3), lambda t: F.max_pool1d(t, 3), x1)
    check(lambda a: attend.max_pool1d(a, 3, stride=2, padding=1),
          lambda t: F.max_pool1d(t, 3, stride=2, padding=1), x1)
    check(lambda a: attend.max_pool2d(a, (2, 3)), lambda t: F.max_pool2d(t, (2, 3)), x2)
    check(lambda a: attend.max_pool2d(a, 3, stride=(2, 1), padding=1),
          lambda t: F.max_pool2d(t, 3, stride=(2, 1), padding=1), x2)
    check(lambda a: attend.avg_pool1d(a, 4, stride=3, padding=2),
          lambda t: F.avg_pool1d(t, 4, stride=3, padding=2), x1)
    check(lambda a: attend.avg_pool1d(a, 3, padding=1, count_include_pad=False),
          lambda t: F.avg_pool1d(t, 3, padding=1, count_include_pad=False), x1)
    check(lambda a: attend.avg_pool2d(a, 2), lambda t: F.avg_pool2d(t, 2), x2)
    check(lambda a: attend.avg_pool2d(a, (3, 2), stride=1, padding=(1, 1),
                                      count_include_pad=False),
          lambda t: F.avg_pool2d(t, (3, 2), stride=1, padding=(1, 1), count_include_pad=False),
          x2)
    check(lambda a: attend.adaptive_avg_pool2d(a, (3, 4)),
          lambda t: F.adaptive_avg_pool2d(t, (3, 4)), x2)
    check(lambda a: attend.adaptive_avg_pool2d(a, 1), lambda t: F.adaptive_avg_pool2d(t, 1), x2)
    check(attend.global_avg_pool, lambda t: t.mean((2, 3)), x2)
    check(lambda a: attend.global_avg_pool(a, keepdim=True), lambda t: t.mean(2, keepdim=True),
          x1)
    with pytest.raises(attend.Error, match="padding"):
        attend.max_pool1d(x1, 2, padding=2)
    with pytest.raises(attend.Error, match="positive"):
        attend.avg_pool2d(x2, 2, stride=0)
    with pytest.raises(attend.Error, match="positive"):
        attend.max_pool1d(x1, 0)
    with pytest.raises(attend.Error, match="positive"):
        attend.adaptive_avg_pool2d(x2, (0, 2))


# ---- the recurrent layer ----

def torch_rnn(mode, x, ws, bidirectional, lengths, h0=None, c0=None):
    """A torch GRU/LSTM layer with the given weights: ws = [w_ih, w_hh, b_ih, b_hh] per
    direction."""
    cls = torch.nn.LSTM if mode == "lstm" else torch.nn.GRU
    hidden = ws[1].shape[1]
    net = cls(x.shape[2], hidden, batch_first=True, bidirectional=bidirectional).double()
    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    for d in range(2 if bidirectional else 1):
        for k, name in enumerate(names):
            # plain tensors in place of the parameters, so the gradients reach the inputs
            full = name + ("_reverse" if d else "")
            del net._parameters[full]
            setattr(net, full, ws[4 * d + k])
    state = None if h0 is None else ((h0, c0) if mode == "lstm" else h0)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                     enforce_sorted=False)
    out, hn = net(packed, state)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                    total_length=x.shape[1])
    if mode == "lstm":
        return out, hn[0], hn[1]
    return out, hn


@pytest.mark.parametrize("mode,dirs", [("lstm", 2), ("gru", 1), ("gru", 2), ("lstm", 1)])
def test_rnn_layer_against_torch(mode, dirs):
    B, T, I, H = 3, 5, 4, 3
    G = 4 if mode == "lstm" else 3
    x = randn(B, T, I)
    lengths = np.array([5, 2, 4])
    ws = []
    for _ in range(dirs):
        ws += [randn(G * H, I) * 0.5, randn(G * H, H) * 0.5, randn(G * H) * 0.1,
               randn(G * H) * 0.1]
    h0 = randn(dirs, B, H)
    c0 = randn(dirs, B, H)

    def run_attend(x_, *rest):
        w, h, c = rest[:4 * dirs], rest[4 * dirs], rest[4 * dirs + 1]
        out, hn, cn = attend.rnn_layer(mode, x_, [w[4 * d] for d in range(dirs)],
                                       [w[4 * d + 1] for d in range(dirs)],
                                       b_ih=[w[4 * d + 2] for d in range(dirs)],
                                       b_hh=[w[4 * d + 3] for d in range(dirs)], h0=h,
                                       c0=c if mode == "lstm" else None,
                                       lengths=attend.tensor(lengths))
        if mode == "lstm":
            return out, hn, cn
        assert cn is None
        return out, hn

    def run_torch(x_, *rest):
        w, h, c = rest[:4 * dirs], rest[4 * dirs], rest[4 * dirs + 1]
        return torch_rnn(mode, x_, list(w), dirs == 2, torch.tensor(lengths), h, c)

    check(run_attend, run_torch, x, *ws, h0, c0)


def test_rnn_layer_defaults_and_errors():
    x = attend.tensor(randn(2, 3, 4))
    w_ih, w_hh = attend.tensor(randn(9, 4)), attend.tensor(randn(9, 3))
    out, hn, cn = attend.rnn_layer("gru", x, [w_ih], [w_hh])
    assert out.shape == (2, 3, 3) and hn.shape == (1, 2, 3) and cn is None
    # one tensor stands for a one-direction list
    out2, _, _ = attend.rnn_layer("gru", x, w_ih, w_hh)
    np.testing.assert_array_equal(out.numpy(), out2.numpy())
    with pytest.raises(attend.Error, match="mode"):
        attend.rnn_layer("rnn", x, [w_ih], [w_hh])
    with pytest.raises(attend.Error):
        attend.rnn_layer("lstm", x, [w_ih], [w_hh])
    with pytest.raises(attend.Error, match="None"):
        attend.rnn_layer("gru", x, None, [w_hh])


# ---- image ops ----

def test_crop_zoom_against_grid_sample():
    B, C, H, W = 2, 3, 6, 7
    x = randn(B, C, H, W)
    boxes = np.array([[3.1, 2.7, 1.9], [4.2, 3.3, 2.6]])

    def torch_zoom(t, bx):
        theta = torch.zeros(B, 2, 3, dtype=torch.float64)
        theta[:, 0, 0] = 2 * bx[:, 2] / W
        theta[:, 0, 2] = 2 * bx[:, 0] / W - 1
        theta[:, 1, 1] = 2 * bx[:, 2] / H
        theta[:, 1, 2] = 2 * bx[:, 1] / H - 1
        grid = F.affine_grid(theta, [B, C, 4, 5], align_corners=False)
        return F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    check(lambda a, bx: attend.crop_zoom(a, bx, 4, 5), torch_zoom, x, boxes)
    with pytest.raises(attend.Error, match="positive"):
        attend.crop_zoom(x, boxes, 0, 5)
    with pytest.raises(attend.Error):
        attend.crop_zoom(x, boxes[:, :2], 4, 5)


def test_boxcar_mask():
    boxes = np.array([[2.5, 3.0, 1.5], [1.2, 2.2, 0.8]])
    h, w, k = 5, 4, 3.0

    def torch_mask(bx):
        s = torch.sigmoid
        xs = torch.arange(w, dtype=torch.float64) + 0.5
        ys = torch.arange(h, dtype=torch.float64) + 0.5
        tx, ty, tl = bx[:, 0:1], bx[:, 1:2], bx[:, 2:3]
        mx = s(k * (xs - (tx - tl))) - s(k * (xs - (tx + tl)))  # [B, w]
        my = s(k * (ys - (ty - tl))) - s(k * (ys - (ty + tl)))  # [B, h]
        return (my[:, :, None] * mx[:, None, :])[:, None]

    check(lambda bx: attend.boxcar_mask(bx, h, w, k), torch_mask, boxes)
    assert attend.boxcar_mask(boxes, 2, 3).shape == (2, 1, 2, 3)
    with pytest.raises(attend.Error, match="positive"):
        attend.boxcar_mask(boxes, h, w, k=0.0)
    with pytest.raises(attend.Error, match="positive"):
        attend.boxcar_mask(boxes, -1, w)


# ---- autograd functions ----

def test_backward_over_several_roots():
    x = randn(3, 4)
    a = attend.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    g = randn(3)
    attend.backward([attend.sum(attend.exp(a)), attend.sum(a * a, 1)],
                    [None, attend.tensor(g)])
    torch.autograd.backward([torch.exp(t).sum(), (t * t).sum(1)], [None, torch.tensor(g)])
    close(a.grad, t.grad)
    # a single root, retained graph, accumulation
    y = attend.sum(attend.tanh(a))
    attend.backward(y, retain_graph=True)
    attend.backward(y)
    yt = torch.tanh(t).sum()
    torch.autograd.backward(yt, retain_graph=True)
    torch.autograd.backward(yt)
    close(a.grad, t.grad)
    with pytest.raises(attend.Error, match="grad_tensors"):
        attend.backward([attend.sum(a * 2.0)], [None, None])


def test_grad():
    x, y = randn(3, 4), randn(4, 2)
    a, b = attend.tensor(x, requires_grad=True), attend.tensor(y, requires_grad=True)
    t, u = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    out = attend.sum(attend.tanh(attend.matmul(a, b)))
    ga, gb = attend.grad(out, [a, b])
    gt = torch.autograd.grad(torch.tanh(t @ u).sum(), [t, u])
    close(ga, gt[0])
    close(gb, gt[1])
    assert a.grad is None and b.grad is None  # .grad untouched
    # several outputs (summed), a grad_output, one input, a tuple back; the graph is kept
    o1 = attend.matmul(a, b)
    o2 = attend.sum(attend.exp(a))
    go = randn(3, 2)
    (g,) = attend.grad([o1, o2], a, grad_outputs=[attend.tensor(go), None])
    to1, to2 = t @ u, torch.exp(t).sum()
    (gt1,) = torch.autograd.grad([to1, to2], t, grad_outputs=[torch.tensor(go), None])
    close(g, gt1)
    (again,) = attend.grad(o2, [a])
    close(again, torch.exp(torch.tensor(x)))
    # an input the output does not depend on gets zeros
    unused = attend.tensor(randn(2), requires_grad=True)
    (gz,) = attend.grad(o2, [unused])
    np.testing.assert_array_equal(gz.numpy(), np.zeros(2))
    with pytest.raises(attend.Error, match="require"):
        attend.grad(o2, [attend.tensor(x)])
    with pytest.raises(attend.Error, match="grad_outputs"):
        attend.grad([o1, o2], [a], grad_outputs=[None])


# ---- Tensor methods ----

def test_tensor_methods_call_the_module_functions():
    x = randn(3, 4)
    a = attend.tensor(x)
    np.testing.assert_allclose(a.sum(1).numpy(), x.sum(1), rtol=RTOL64)
    np.testing.assert_allclose(a.mean().item(), x.mean(), rtol=RTOL64)
    np.testing.assert_allclose(a.amax(0).numpy(), x.max(0), rtol=RTOL64)
    np.testing.assert_allclose(a.amin((0, 1)).item(), x.min(), rtol=RTOL64)
    assert a.max().item() == x.max() and a.min().item() == x.min()
    assert a.argmin().item() == x.argmin()
    np.testing.assert_allclose(a.relu().numpy(), np.maximum(x, 0), rtol=RTOL64)
    np.testing.assert_array_equal(a.gt(0).numpy(), x > 0)
    np.testing.assert_array_equal(a.ge(a).numpy(), np.ones((3, 4), bool))
    np.testing.assert_array_equal(a.lt(0).logical_not().numpy(), x >= 0)
    np.testing.assert_array_equal(a.gt(0).logical_or(a.lt(-1)).numpy(), (x > 0) | (x < -1))
    np.testing.assert_allclose(a.sub(1.0).numpy(), x - 1.0, rtol=RTOL64)
    np.testing.assert_allclose(a.mul(a).numpy(), x * x, rtol=RTOL64)
    np.testing.assert_allclose(a.multiply(2.0).numpy(), 2 * x, rtol=RTOL64)
    np.testing.assert_allclose(a.subtract(a).numpy(), 0 * x, rtol=RTOL64)
    np.testing.assert_allclose(a.negative().numpy(), -x, rtol=RTOL64)
    np.testing.assert_allclose(a.neg().abs().numpy(), np.abs(x), rtol=RTOL64)
    assert a.sum.__doc__ and "sum" in a.sum.__doc__
    assert attend.Tensor.sum.__name__ == "sum"
    # what the Tensor class binds itself is not replaced
    assert a.reshape(4, 3).shape == (4, 3)
    with pytest.raises(attend.Error):
        a.sum(5)


def test_every_op_has_a_docstring():
    names = ["add", "sub", "mul", "div", "pow", "neg", "abs", "exp", "log", "sqrt", "rsqrt",
             "tanh", "sigmoid", "relu", "gelu", "clamp", "clip", "eq", "ne", "lt", "le", "gt",
             "ge", "logical_not", "logical_and", "logical_or", "where", "masked_fill", "sum",
             "mean", "amax", "amin", "max", "min", "argmax", "argmin", "var", "std", "matmul",
             "linear", "mm", "bmm", "softmax", "log_softmax", "layer_norm", "dropout", "embedding",
             "index_select", "gather", "topk", "cat", "concat", "stack", "split", "chunk",
             "cross_entropy", "conv1d", "conv2d", "causal_conv2d", "max_pool1d", "max_pool2d",
             "avg_pool1d", "avg_pool2d", "adaptive_avg_pool2d", "global_avg_pool", "rnn_layer",
             "crop_zoom", "boxcar_mask", "backward", "grad"]
    for n in names:
        doc = getattr(attend, n).__doc__
        assert doc and len(doc.strip().splitlines()) >= 2, n  # signature line and description


# ---- bad arguments ----

def test_bad_arguments_raise_and_the_interpreter_survives():
    x = attend.tensor(randn(2, 3))
    with pytest.raises(attend.Error, match="None"):
        attend.softmax(None, 0)
    with pytest.raises(attend.Error, match="None"):
        attend.add(x, None)
    with pytest.raises(attend.Error):
        attend.softmax(x, 2)
    with pytest.raises(attend.Error):
        attend.sum(x, (0, 7))
    with pytest.raises(attend.Error):
        attend.add(x, attend.ones(4, dtype="float64"))
    with pytest.raises(attend.Error):
        attend.exp(attend.tensor([True, False]))
    with pytest.raises(attend.Error):
        attend.gather(x, 1, np.array([[0.5, 1.0]]))
    with pytest.raises(attend.Error):
        attend.max(x, 3)
    with pytest.raises(attend.Error):
        attend.matmul(x, x)
    with pytest.raises(attend.Error, match="dim must be an int"):
        attend.max(x, x)  # elementwise maximum is not bound
    with pytest.raises(attend.Error, match="sequence of ints"):
        attend.sum(x, "rows")
    with pytest.raises(attend.Error, match="sequence of ints"):
        attend.sum(x, (0, 1.5))
    with pytest.raises(attend.Error, match="sequence of ints"):
        attend.conv2d(attend.ones(1, 1, 3, 3), attend.ones(1, 1, 2, 2), stride="2")
    with pytest.raises(attend.Error, match="sequence of ints"):
        attend.split(x, 1.5)
    with pytest.raises(TypeError):
        attend.softmax(x, "last")
    with pytest.raises(TypeError):
        attend.pow(x, x)
    with pytest.raises(attend.Error):
        attend.embedding(np.array([0]), randn(3))
    with pytest.raises(attend.Error):
        attend.masked_fill(x, randn(2, 3), 0.0)
    assert attend.sum(x).item() == pytest.approx(float(x.numpy().sum()))
