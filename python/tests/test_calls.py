"""The bound calls the other tests reach only another way (a module's forward through __call__,
Tensor methods beside their functions), each checked against the way already tested or NumPy,
so that every bound function is called by the suite (conftest.py enforces it)."""
import json

import numpy as np
import pytest

import attend
import attend.attention as A


def same(a, b):
    if isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    elif a is None or isinstance(a, (int, float)):
        assert a == b
    else:
        np.testing.assert_array_equal(np.asarray(a.detach().numpy()), b.detach().numpy())


def g(seed=0):
    return attend.Generator(seed)


@pytest.mark.parametrize("name", ["context", "han", "mha", "secnn", "sab", "se", "sla",
                                  "transparent"])
def test_forward_equals_call(name):
    r = np.random.default_rng(0)
    if name == "context":
        m, args = A.ContextAttention(4, 3, generator=g()), (attend.randn(2, 5, 4, generator=g(1)),)
    elif name == "han":
        m = A.HierarchicalAttentionNetwork(11, 4, 3, 5, 6, generator=g())
        args = (r.integers(1, 11, (2, 3, 4)), np.array([[4, 2, 0], [3, 4, 1]]), np.array([2, 3]))
    elif name == "mha":
        m = A.MultiHeadAttention(8, 2, generator=g())
        x = attend.randn(3, 2, 8, generator=g(1))
        args = (x, x, x)
    elif name == "secnn":
        m = A.SeCnn(1, 4, 8, 3, 2, generator=g())
        args = (attend.randn(2, 1, 8, 8, generator=g(1)),)
    elif name == "sab":
        m = A.SparseAttentiveBacktracking(3, 4, ktop=2, katt=2, ktrunc=3, generator=g())
        args = (attend.randn(2, 9, 3, generator=g(1)),)
    elif name == "se":
        m = A.SqueezeExcitation(4, 2, generator=g())
        args = (attend.randn(2, 4, 3, 3, generator=g(1)),)
    elif name == "sla":
        m = A.StackedLatentAttention(4, 4, 3, 2, generator=g())
        args = (attend.randn(2, 1, 4, generator=g(1)), attend.randn(2, 5, 4, generator=g(2)))
    else:
        m = A.TransparentAttention(3, 2)
        args = ([attend.randn(2, 4, 5, generator=g(i)) for i in range(3)],)
    same(m.forward(*args), m(*args))


def test_prepacked_linear_and_seq2seq_forward():
    lin = attend.nn.Linear(6, 5, generator=g())
    packed = attend.nn.PrepackedLinear(lin)
    x = attend.randn(3, 6, generator=g(1))
    np.testing.assert_allclose(packed.forward(x).numpy(), lin(x).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    model = attend.models.make_model("rnn-attention", src_vocab=20, tgt_vocab=20, embed_dim=4,
                                     hidden_dim=6, attention_dim=4, dropout=0.0)
    batch = attend.models.make_batch([[5, 6], [7]], [[8], [9, 10]])
    same(model.forward(batch), model(batch))


def test_module_apply_reaches_every_module():
    seen = []
    seq = attend.nn.Sequential(attend.nn.Linear(2, 3), attend.nn.Linear(3, 1))
    assert seq.apply(lambda m: seen.append(type(m).__name__)) is seq
    assert seen.count("Linear") == 2 and "Sequential" in seen


def test_tensor_methods_equal_numpy():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 10
    t = attend.tensor(a)
    assert t.dim() == 3 and t.size() == (2, 3, 4) and t.size(1) == 3
    np.testing.assert_array_equal(t.clip(-2, 3).numpy(), np.clip(a, -2, 3))
    np.testing.assert_array_equal(t.div(2).numpy(), a / 2)
    np.testing.assert_array_equal(t.narrow(2, 1, 2).numpy(), a[:, :, 1:3])
    np.testing.assert_array_equal(t.select(1, 2).numpy(), a[:, 2])
    m = attend.tensor(a[0])
    assert not m.t().is_contiguous() and m.t().contiguous().is_contiguous()
    np.testing.assert_array_equal(m.t().contiguous().numpy(), a[0].T)
    b = attend.tensor(np.ones((2, 4, 5), dtype=np.float32))
    np.testing.assert_allclose(t.bmm(b).numpy(), a @ np.ones((2, 4, 5)), rtol=1e-6)
    assert t.double().dtype == "float64" and t.double().float().dtype == "float32"
    c = t.clone()
    with attend.no_grad():
        c.fill_(7.0)
    assert (c.numpy() == 7).all() and t.numpy()[0, 0, 0] == -10  # the clone owns its memory
    w = attend.ones(3, requires_grad=True)
    (w * w).sum().backward()
    assert w.grad is not None
    w.zero_grad()
    assert w.grad is None or (w.grad.numpy() == 0).all()


def test_generators_threads_and_as_tensor():
    gen = attend.Generator(1)
    gen.manual_seed(5)
    np.testing.assert_array_equal(attend.randn(4, generator=gen).numpy(),
                                  attend.randn(4, generator=attend.Generator(5)).numpy())
    assert isinstance(attend.default_generator(), attend.Generator)
    before = attend.get_num_threads()
    attend.set_num_threads(1)
    assert attend.get_num_threads() == 1
    attend.set_num_threads(before)
    arr = np.ones(3, dtype=np.float32)
    t = attend.as_tensor(arr)
    arr[0] = 5
    assert t.numpy()[0] in (1.0, 5.0)  # shares memory when it can, as torch.as_tensor
    assert attend.as_tensor([1, 2]).dtype == "int64"


def test_bracket_score_json():
    s = attend.brackets(["(S (NP XX ) (VP XX ) )"], ["(S (NP XX ) (VP XX XX ) )"])
    js = json.loads(s.json(3))
    assert js["score"] == pytest.approx(100 * s.f1, abs=1e-3) and js["name"] == s.name
