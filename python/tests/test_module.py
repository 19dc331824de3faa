"""Python subclasses of attend.nn.Module, as torch.nn.Module's: attribute assignment registers
Parameters, buffers and sub-modules under torch's names; a model composed in Python (an attention
layer from attend.attention pieces) gives torch's values, gradients and Adam steps with the same
weights; the Python half of a child lives as long as its parent; clear errors; no leaks."""
import gc
import sys
import tracemalloc
import weakref

import numpy as np
import pytest
import torch

import attend

nn = attend.nn
R64 = dict(rtol=1e-10, atol=1e-12)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def T(t):
    """An attend tensor as a torch tensor (a copy)."""
    return torch.from_numpy(np.array(t.detach().numpy(), copy=True))


class Net(nn.Module):
    """The example of the brief (and of docs/python.md)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 2)
        self.scale = nn.Parameter(attend.ones(2))
        self.register_buffer("mean", attend.zeros(2))

    def forward(self, x):
        return self.fc2(attend.relu(self.fc1(x))) * self.scale


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 8)
        self.fc2 = torch.nn.Linear(8, 2)
        self.scale = torch.nn.Parameter(torch.ones(2))
        self.register_buffer("mean", torch.zeros(2))

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x))) * self.scale


def test_the_example_registers_torchs_names():
    net = Net()
    y = net(attend.randn(3, 4))
    assert y.shape == (3, 2) and y.requires_grad
    ref = TorchNet()
    # The same names as torch. The order: parameters as torch's named_parameters (the module's
    # own first, then each child's), then the buffers; torch puts each module's buffers right
    # after its own parameters (scale, mean, fc1.weight, ...). Loading goes by name.
    assert set(net.state_dict()) == set(ref.state_dict())
    assert list(net.state_dict()) == ["scale", "fc1.weight", "fc1.bias", "fc2.weight",
                                      "fc2.bias", "mean"]
    assert [k for k, _ in net.named_parameters()] == [k for k, _ in ref.named_parameters()]
    assert [k for k, _ in net.named_buffers()] == ["mean"]
    assert [k for k, _ in net.named_children()] == ["fc1", "fc2"]
    assert net.num_parameters() == sum(p.numel() for p in ref.parameters()) == 60
    assert len(net.parameters()) == 5 and all(p.requires_grad for p in net.parameters())
    assert not net.mean.requires_grad
    # The attributes are the registered objects themselves.
    assert isinstance(net.scale, nn.Parameter) and isinstance(net.scale, attend.Tensor)
    assert isinstance(net.fc1, nn.Linear) and isinstance(net, nn.Module)
    assert list(net.children())[0] is net.fc1
    assert [name for name, _ in net.named_modules()] == ["", "fc1", "fc2"]
    assert list(net.modules())[0] is net
    # Parameters are the handles that the layers use: an optimizer step moves the output.
    opt = attend.optim.Adam(net.parameters(), lr=1e-2)
    x = attend.randn(3, 4, generator=attend.Generator(3))
    before = net(x).detach().numpy().copy()
    (net(x) ** 2).sum().backward()
    opt.step()
    assert not np.allclose(net(x).detach().numpy(), before)
    assert "parameters=60" in repr(net)


def test_parameter_is_torchs():
    t = attend.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert isinstance(p, attend.Tensor) and p.requires_grad and p.is_leaf and p.grad is None
    assert not t.requires_grad  # a new leaf sharing t's memory
    with attend.no_grad():
        p[0] = 5.0
    assert t.numpy()[0] == 5.0
    assert repr(p).startswith("Parameter containing:")
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)
    assert nn.Parameter(np.ones(3)).dtype == "float64"  # what attend.tensor takes
    y = (nn.Parameter(attend.ones(2)) * 3).sum()  # a Tensor for every op
    assert y.item() == 6.0
    with pytest.raises(attend.Error, match="only float32"):
        nn.Parameter(attend.tensor([1, 2]))
    # frozen stays frozen once registered
    m = nn.Module()
    m.frozen = nn.Parameter(attend.ones(2), requires_grad=False)
    assert [k for k, _ in m.named_parameters()] == ["frozen"] and not m.frozen.requires_grad


# ---- a model composed in Python against the same model in torch ----

class SelfAttention(nn.Module):
    """Single-head self-attention with a residual connection and LayerNorm, from attend's
    pieces: projections (C++ Linear), ScaledDotScore, soft_weights with a padding mask (true =
    excluded), weighted_sum; a Python Parameter gates the residual."""

    def __init__(self, d, dtype):
        super().__init__()
        self.q = nn.Linear(d, d, dtype=dtype)
        # no key bias: it adds q.b to a whole row of scores, which the softmax ignores, so its
        # gradient is zero up to rounding (noise that Adam would scale up to lr)
        self.k = nn.Linear(d, d, bias=False, dtype=dtype)
        self.v = nn.Linear(d, d, dtype=dtype)
        self.score = attend.attention.ScaledDotScore()
        self.out = nn.Linear(d, d, bias=False, dtype=dtype)
        self.gate = nn.Parameter(attend.full((d,), 0.5, dtype=dtype))
        self.norm = nn.LayerNorm(d, dtype=dtype)
        self.last_weights = None  # a plain attribute

    def forward(self, x, mask):
        scores = self.score(self.q(x), self.k(x))             # [B, T, T]
        w = attend.attention.soft_weights(scores, mask[:, None, :])
        self.last_weights = w
        context = attend.attention.weighted_sum(w, self.v(x))
        return self.norm(x * self.gate + self.out(context))


class Scale(nn.Module):
    """A Python module inside a Sequential."""

    def __init__(self, d, dtype):
        super().__init__()
        self.alpha = nn.Parameter(attend.full((d,), 1.5, dtype=dtype))

    def forward(self, x):
        return x * self.alpha


class Block(nn.Module):
    """Python modules inside a Python module; a Sequential mixing C++ layers, a callable and a
    Python module; a buffer."""

    def __init__(self, d, dtype):
        super().__init__()
        self.attn = SelfAttention(d, dtype)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d, dtype=dtype), attend.tanh,
                                nn.Linear(2 * d, d, dtype=dtype), Scale(d, dtype))
        self.register_buffer("shift", attend.full((d,), 0.25, dtype=dtype))

    def forward(self, x, mask):
        h = self.attn(x, mask)
        return self.ff(h) + h + self.shift


class TorchSelfAttention(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q = torch.nn.Linear(d, d)
        self.k = torch.nn.Linear(d, d, bias=False)
        self.v = torch.nn.Linear(d, d)
        self.out = torch.nn.Linear(d, d, bias=False)
        self.gate = torch.nn.Parameter(torch.empty(d))
        self.norm = torch.nn.LayerNorm(d)

    def forward(self, x, mask):
        q, k = self.q(x), self.k(x)
        scores = q @ k.transpose(1, 2) / q.shape[-1] ** 0.5
        w = torch.softmax(scores.masked_fill(mask[:, None, :], float("-inf")), dim=-1)
        return self.norm(x * self.gate + self.out(w @ self.v(x)))


class TorchScale(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.alpha = torch.nn.Parameter(torch.empty(d))

    def forward(self, x):
        return x * self.alpha


class TorchBlock(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.attn = TorchSelfAttention(d)
        self.ff = torch.nn.Sequential(torch.nn.Linear(d, 2 * d), torch.nn.Tanh(),
                                      torch.nn.Linear(2 * d, d), TorchScale(d))
        self.register_buffer("shift", torch.empty(d))

    def forward(self, x, mask):
        h = self.attn(x, mask)
        return self.ff(h) + h + self.shift


class Model(nn.Module):
    def __init__(self, d, dtype):
        super().__init__()
        self.block = Block(d, dtype)
        self.head = nn.Linear(d, 1, dtype=dtype)

    def forward(self, x, mask):
        return self.head(self.block(x, mask))


class TorchModel(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.block = TorchBlock(d)
        self.head = torch.nn.Linear(d, 1)

    def forward(self, x, mask):
        return self.head(self.block(x, mask))


D = 6
MASK = np.array([[False] * 5, [False, False, False, True, True]])  # the second row is padded


def torch_twin(am, dtype):
    """The torch model with attend's weights, moved by state_dict names."""
    tm = TorchModel(D).to(dtype)
    state = {k: torch.from_numpy(np.array(v.numpy(), copy=True))
             for k, v in am.state_dict().items()}
    assert set(state) == set(tm.state_dict())  # the (torch) names match one for one
    tm.load_state_dict(state)
    return tm


def test_python_composed_model_matches_torch_values_and_gradients():
    attend.manual_seed(11)
    am = Model(D, "float64")
    tm = torch_twin(am, torch.float64)
    x = rand(2, 5, D, seed=1)
    xa = attend.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ya = am(xa, attend.tensor(MASK))
    yt = tm(xt, torch.tensor(MASK))
    np.testing.assert_allclose(ya.detach().numpy(), yt.detach().numpy(), **R64)
    # the padded keys got no weight
    assert np.all(am.block.attn.last_weights.detach().numpy()[1, :, 3:] == 0)
    g = rand(2, 5, 1, seed=2)
    ya.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(xa.grad.numpy(), xt.grad.numpy(), **R64)
    tparams = dict(tm.named_parameters())
    names = [k for k, _ in am.named_parameters()]
    assert names == list(tparams)  # the same names in the same order
    assert "block.ff.3.alpha" in names and "block.attn.gate" in names
    for name, p in am.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), **R64,
                                   err_msg=name)
    am.zero_grad()
    assert all(p.grad is None for p in am.parameters())


def test_adam_steps_match_torch_f32():
    # f32, 5 steps at lr 1e-2. attend and torch sum in different orders, so a gradient differs
    # from torch's in its last bits (relative ~1e-6 after the attention, LayerNorm and
    # backward); Adam's step lr * m / (sqrt(v) + eps) is scale-free, so that moves each step by
    # ~lr * 1e-6 = 1e-8, and the parameters (|w| < 2, f32 spacing ~1e-7) agree to a few of their
    # own roundings: atol 2e-6 after 5 steps (measured: 1.2e-7), losses to rtol 1e-5. Every
    # gradient is far from zero (|g| > 2e-5), so no sign of rounding noise decides a step (that
    # would show as a difference near lr = 1e-2, far above the tolerance).
    attend.manual_seed(5)
    am = Model(D, "float32")
    tm = torch_twin(am, torch.float32)
    x = rand(2, 5, D, seed=3).astype(np.float32)
    target = rand(2, 5, 1, seed=4).astype(np.float32)
    oa = attend.optim.Adam(am.parameters(), lr=1e-2)
    ot = torch.optim.Adam(tm.parameters(), lr=1e-2)
    for step in range(5):
        oa.zero_grad()
        ot.zero_grad()
        la = ((am(attend.tensor(x), attend.tensor(MASK)) - attend.tensor(target)) ** 2).mean()
        lt = ((tm(torch.tensor(x), torch.tensor(MASK)) - torch.tensor(target)) ** 2).mean()
        assert la.item() == pytest.approx(lt.item(), rel=1e-5), step
        la.backward()
        lt.backward()
        oa.step()
        ot.step()
        tparams = dict(tm.named_parameters())
        for name, p in am.named_parameters():
            np.testing.assert_allclose(p.detach().numpy(), tparams[name].detach().numpy(),
                                       rtol=0, atol=2e-6, err_msg="%s after step %d" % (name, step))
        if step == 0:
            first = la.item()
    assert la.item() < 0.5 * first  # it trains


def test_train_eval_reach_cpp_and_python_children():
    class WithDropout(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.5, seed=1)
            self.inner = Scale(4, "float32")

        def forward(self, x):
            return self.inner(self.drop(x)) if self.training else -x

    outer = nn.Sequential(WithDropout())
    m = outer[0]
    assert m.training and m.drop.training and m.inner.training
    assert outer.eval() is outer
    assert not m.training and not m.drop.training and not m.inner.training
    x = attend.ones(2, 4)
    np.testing.assert_array_equal(outer(x).numpy(), -np.ones((2, 4)))  # the Python forward
    outer.train()
    assert m.drop.training and m.inner.training
    y = outer(attend.ones(100, 4)).detach().numpy()
    assert (y == 0).any() and np.allclose(y[y != 0], 3.0)  # dropout's 1/(1-p) times alpha 1.5
    # a child takes its parent's mode when registered (the C++ base does)
    outer.eval()
    late = nn.Module()
    m.late = late
    assert not late.training


def test_state_dict_round_trips_checkpoints_and_safetensors(tmp_path):
    attend.manual_seed(1)
    a = Model(D, "float64")
    b = Model(D, "float64")
    keys = b.load_state_dict(a.state_dict())
    assert keys.missing_keys == [] and keys.unexpected_keys == []
    for (k, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=k)
    with pytest.raises(attend.Error, match="missing key"):
        b.load_state_dict({"head.weight": a.head.weight})
    # safetensors
    path = tmp_path / "m.safetensors"
    nn.save_safetensors(path, a.state_dict())
    c = Model(D, "float64")
    c.load_state_dict(nn.load_safetensors(path))
    np.testing.assert_array_equal(c.block.attn.gate.detach().numpy(),
                                  a.block.attn.gate.detach().numpy())
    # checkpoint with the optimizer's state
    opt = attend.optim.Adam(a.parameters(), lr=0.1)
    x = attend.tensor(rand(2, 5, D, seed=5))
    a(x, attend.tensor(MASK)).sum().backward()
    opt.step()
    ck = tmp_path / "m.ckpt"
    nn.save_checkpoint(ck, a, opt, config='{"d": 6}')
    d = Model(D, "float64")
    opt_d = attend.optim.Adam(d.parameters(), lr=0.1)
    config, _ = nn.load_checkpoint(ck, d, opt_d)
    assert config == '{"d": 6}' and opt_d.step_count == 1
    np.testing.assert_array_equal(d(x, attend.tensor(MASK)).detach().numpy(),
                                  a(x, attend.tensor(MASK)).detach().numpy())


def test_registration_methods_and_reassignment():
    m = nn.Module()
    m.register_parameter("w", nn.Parameter(attend.ones(3)))
    m.register_buffer("b", attend.zeros(3))
    m.add_module("lin", nn.Linear(3, 3))
    m.register_module("odd-name", nn.Linear(3, 1))  # any name without a dot, as torch
    m.plain = attend.ones(2)  # a Tensor that is not a Parameter stays a plain attribute
    m.note = "text"
    assert list(m.state_dict()) == ["w", "lin.weight", "lin.bias", "odd-name.weight",
                                    "odd-name.bias", "b"]
    assert getattr(m, "odd-name").weight.shape == (1, 3) and m.note == "text"
    # the same object again is no change; new values go in place (attend's `b += 1` makes a
    # new tensor, which could not replace the registered one)
    w = m.w
    m.w = w
    m.lin = m.lin
    m.b = m.b
    with attend.no_grad():
        m.b.copy_(m.b + 1)
    np.testing.assert_array_equal(m.state_dict()["b"].numpy(), np.ones(3))
    for value in (nn.Parameter(attend.ones(3)), None):
        with pytest.raises(attend.Error, match="cannot replace or remove"):
            m.w = value
    with pytest.raises(attend.Error, match="cannot replace or remove"):
        m.lin = nn.Linear(3, 3)
    with pytest.raises(attend.Error, match="cannot replace or remove"):
        m.b = attend.zeros(3)
    with pytest.raises(attend.Error, match="cannot delete the registered"):
        del m.lin
    del m.note
    assert not hasattr(m, "note")
    # None declares a name, as torch; a later assignment of the right kind registers it
    m.register_buffer("later", None)
    m.opt = None  # plain
    m.register_parameter("p", None)
    assert m.later is None and m.p is None and "later" not in m.state_dict()
    m.later = attend.full((2,), 7.0)
    m.p = nn.Parameter(attend.ones(1))
    assert m.state_dict()["later"].numpy().tolist() == [7.0, 7.0]
    assert "p" in dict(m.named_parameters())
    # plain attributes can become registrations (torch's __setattr__ drops the plain one)
    m.opt = nn.Linear(1, 1)
    assert "opt.weight" in m.state_dict()
    m.note = "plain"
    with pytest.raises(attend.Error, match="attribute 'note' already exists"):
        m.register_buffer("note", attend.ones(1))  # register_* does not replace a plain one
    m.register_buffer("twice", attend.ones(1))
    with pytest.raises(attend.Error, match="cannot replace or remove"):
        m.register_buffer("twice", attend.ones(1))


def test_shared_parameters_and_modules_come_once():
    shared = nn.Linear(2, 2)

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = shared
            self.b = shared
            self.w = nn.Parameter(attend.ones(2))
            self.v = self.w  # the same Parameter under two names

    t = Tied()
    assert [k for k, _ in t.named_parameters()] == ["w", "a.weight", "a.bias"]
    assert t.num_parameters() == 2 + 6
    assert set(t.state_dict()) == {"w", "v", "a.weight", "a.bias", "b.weight", "b.bias"}
    assert [k for k, _ in t.named_modules()] == ["", "a"]


# ---- lifetime ----

class Inner(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor  # Python state only
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(x) * self.factor


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Inner(2.0)
        self.seq = nn.Sequential(Inner(3.0), nn.Linear(3, 3))
        self.add_module("extra", Inner(4.0))

    def forward(self, x):
        return self.seq(self.inner(x)) + self.extra(x)


def test_a_childs_python_half_lives_as_long_as_its_parent():
    outer = Outer()  # the children exist only through the parent
    gc.collect()
    x = attend.randn(2, 3)
    y = outer(x)
    assert y.shape == (2, 3)
    kids = list(outer.children())
    assert [type(k) for k in kids] == [Inner, nn.Sequential, Inner]
    assert kids[0] is outer.inner and kids[0].factor == 2.0 and kids[2].factor == 4.0
    assert type(outer.seq[0]) is Inner and outer.seq[0].factor == 3.0
    # a Sequential alone keeps its Python steps
    seq = nn.Sequential(Inner(5.0))
    ref = weakref.ref(seq[0])
    gc.collect()
    assert ref() is not None and seq[0].factor == 5.0
    np.testing.assert_allclose(seq(x).detach().numpy(), (seq[0].lin(x) * 5.0).detach().numpy(),
                               rtol=1e-6)
    # and nothing outlives its owner: no cycle through C++
    refs = [weakref.ref(outer.inner), weakref.ref(outer.seq[0]), weakref.ref(outer.extra)]
    del outer, kids, seq
    gc.collect()
    assert ref() is None and all(r() is None for r in refs)


# ---- errors ----

def test_forgetting_super_init_is_a_clear_error():
    class NoSuper(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(attend.Error, match=r"call super\(\).__init__\(\)"):
        NoSuper()

    class NoSuperAtAll(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(TypeError, match="__init__"):
        NoSuperAtAll()

    class EarlyCall(nn.Module):
        def __init__(self):
            self.parameters()

    with pytest.raises(attend.Error, match="not initialised"):
        EarlyCall()

    class EarlyGet(nn.Module):
        def __init__(self):
            self.seen = hasattr(self, "fc")
            super().__init__()

    assert EarlyGet().seen is False
    with pytest.raises(TypeError, match="C\\+\\+ layer"):
        nn.Module.__init__(nn.Linear(2, 2))


def test_a_module_without_forward_raises_not_implemented():
    class NoForward(nn.Module):
        pass

    with pytest.raises(NotImplementedError, match=r"NoForward\] is missing"):
        NoForward()(attend.ones(2))
    with pytest.raises(NotImplementedError):
        nn.Sequential(NoForward())(attend.ones(2))


def test_bad_arguments_are_errors():
    m = nn.Module()
    m.w = nn.Parameter(attend.ones(2))
    m.register_buffer("b", attend.ones(2))
    m.c = nn.Linear(2, 2)
    cases = [
        (lambda: m.register_parameter("x", attend.ones(2)), "must be an attend.nn.Parameter"),
        (lambda: m.register_parameter("x", 3), "must be an attend.nn.Parameter"),
        (lambda: m.register_buffer("x", [1.0]), "must be an attend.Tensor"),
        (lambda: m.register_buffer("x", attend.ones(1), persistent=False), "persistent=False"),
        (lambda: m.add_module("x", 3), "must be an attend.nn.Module"),
        (lambda: m.add_module("x", torch.nn.Linear(2, 2)), "must be an attend.nn.Module"),
        (lambda: m.add_module("a.b", nn.Linear(2, 2)), "cannot contain '.'"),
        (lambda: m.add_module("", nn.Linear(2, 2)), "cannot be empty"),
        (lambda: m.add_module("forward", nn.Linear(2, 2)), "attribute of the class"),
        (lambda: setattr(m, "training", nn.Parameter(attend.ones(1))), "attribute of the class"),
        (lambda: setattr(m, "w", attend.ones(2)), "to the parameter 'w'"),
        (lambda: setattr(m, "b", 3), "to the buffer 'b'"),
        (lambda: setattr(m, "c", "x"), "to the sub-module 'c'"),
        (lambda: setattr(m, "me", m), "cycle"),
        (lambda: setattr(m.c, "extra", nn.Parameter(attend.ones(1))), "C\\+\\+ layer"),
        (lambda: setattr(nn.Linear(2, 2), "sub", nn.Linear(2, 2)), "C\\+\\+ layer"),
        (lambda: nn.Module().add_module("x", Inner.__new__(Inner)), "not initialised"),
    ]
    for fn, match in cases:
        with pytest.raises(attend.Error, match=match):
            fn()
    with pytest.raises(TypeError):
        m.add_module(3, nn.Linear(2, 2))  # names are strings (pybind11's argument check)
    # a cycle through a deeper level, and through a Sequential
    a, b = nn.Module(), nn.Module()
    a.b = b
    with pytest.raises(attend.Error, match="cycle"):
        b.a = a
    seq = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(attend.Error, match="Sequential itself"):
        seq.append(seq)
    holder = nn.Module()
    holder.seq = seq
    with pytest.raises(attend.Error, match="Sequential itself"):
        seq.append(holder)
    # a Python subclass of a C++ layer that overrides forward cannot be a C++ step
    class MyLinear(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    with pytest.raises(attend.Error, match="overrides the forward"):
        nn.Sequential(MyLinear(2, 2))
    with pytest.raises(attend.Error, match="Tensor -> Tensor"):
        nn.Sequential(nn.GRU(2, 2))
    # nothing above registered anything
    assert list(m.state_dict()) == ["w", "c.weight", "c.bias", "b"]
    assert len(seq) == 1


# ---- references and memory ----

def test_no_reference_or_memory_growth_over_10000_constructions_and_calls():
    x = attend.randn(2, 3)
    factor = 1.25  # a float object that each Inner holds

    def run(n):
        for _ in range(n):
            o = Outer()
            o.inner.factor = factor
            o(x)
            del o

    run(100)  # warm the allocator and pybind11's caches
    gc.collect()
    refs_x, refs_factor = sys.getrefcount(x), sys.getrefcount(factor)
    objects = len(gc.get_objects())
    run(10_000)
    gc.collect()
    assert sys.getrefcount(x) == refs_x and sys.getrefcount(factor) == refs_factor
    assert len(gc.get_objects()) - objects < 50  # 10,000 leaked Outers would be 40,000+
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    run(10_000)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
    # one Outer is several KiB of Python objects; 10,000 leaked ones would be tens of MiB
    assert growth < 256 * 1024, "Python memory grew by %d bytes" % growth
