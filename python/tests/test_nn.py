"""attend.nn from Python: every module's output and parameter gradients against torch.nn with the
same weights (copied through state_dict/load_state_dict under torch's names), the Module base
(state dicts, train/eval, named parameters), initialisers, safetensors files and checkpoints, and
clear errors (attend.Error) for bad arguments."""
import math
import os

import numpy as np
import pytest
import torch

import attend

nn = attend.nn
R64 = dict(rtol=1e-10, atol=1e-12)
R32 = dict(rtol=1e-5, atol=1e-6)


def T(t):
    """An attend tensor as a torch tensor (a copy)."""
    return torch.from_numpy(np.array(t.detach().numpy(), copy=True))


def copy_to_torch(am, tm, strict=True):
    tm.load_state_dict({k: T(v) for k, v in am.state_dict().items()}, strict=strict)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def compare(am, tm, x, tol=R64, a_call=None, t_call=None, out=lambda o: o):
    """Runs both modules on x, backpropagates the same upstream gradient, and compares the
    outputs, the input gradient and every parameter's gradient by name."""
    xa = attend.tensor(x)
    xa.requires_grad = True
    xt = torch.tensor(x, requires_grad=True)
    ya = out(a_call(xa) if a_call else am(xa))
    yt = out(t_call(xt) if t_call else tm(xt))
    np.testing.assert_allclose(ya.detach().numpy(), yt.detach().numpy(), **tol)
    g = rand(*yt.shape, seed=7).astype(x.dtype)
    ya.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(xa.grad.detach().numpy(), xt.grad.detach().numpy(), **tol)
    tparams = dict(tm.named_parameters())
    for name, p in am.named_parameters():
        if name not in tparams:  # attend's own extras (AdvancedLSTM's attention)
            continue
        assert p.grad is not None, name
        np.testing.assert_allclose(p.grad.detach().numpy(), tparams[name].grad.detach().numpy(), **tol,
                                   err_msg=name)
    return ya, yt


# ---- basic layers ----

def test_linear_matches_torch_f64_and_f32():
    am = nn.Linear(5, 3, dtype="float64", generator=attend.Generator(1))
    tm = torch.nn.Linear(5, 3).double()
    copy_to_torch(am, tm)
    compare(am, tm, rand(4, 2, 5))
    assert am.in_features == 5 and am.out_features == 3 and am.bias.shape == (3,)
    # torch -> attend, f32, without bias
    tm = torch.nn.Linear(4, 2, bias=False)
    am = nn.Linear(4, 2, bias=False)
    assert am.bias is None and list(am.state_dict()) == ["weight"]
    am.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    compare(am, tm, rand(3, 4).astype(np.float32), tol=R32)


def test_linear_default_init_is_torchs_bound():
    am = nn.Linear(100, 50)
    w = am.weight.detach().numpy()
    assert np.abs(w).max() <= 1 / math.sqrt(100) and np.abs(w).max() > 0.09
    assert am.weight.dtype == "float32" and am.weight.requires_grad


def test_embedding_with_padding_idx():
    am = nn.Embedding(10, 4, padding_idx=-2, dtype="float64")
    assert am.padding_idx == 8 and np.all(am.weight.detach().numpy()[8] == 0)
    tm = torch.nn.Embedding(10, 4, padding_idx=8).double()
    copy_to_torch(am, tm)
    idx = np.array([[1, 8, 3], [8, 9, 1]])
    ya, yt = am(idx), tm(torch.from_numpy(idx))
    np.testing.assert_allclose(ya.detach().numpy(), yt.detach().numpy(), **R64)
    g = rand(2, 3, 4)
    ya.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(am.weight.grad.detach().numpy(), tm.weight.grad.detach().numpy(), **R64)
    assert nn.Embedding(5, 2).padding_idx is None
    assert am.num_embeddings == 10 and am.embedding_dim == 4


def test_layer_norm_matches_torch():
    am = nn.LayerNorm((3, 4), eps=1e-6, dtype="float64")
    tm = torch.nn.LayerNorm((3, 4), eps=1e-6).double()
    with torch.no_grad():
        tm.weight.normal_()
        tm.bias.normal_()
    am.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    compare(am, tm, rand(2, 3, 4))
    assert am.normalized_shape == (3, 4) and am.eps == 1e-6
    plain = nn.LayerNorm(4, elementwise_affine=False)
    assert plain.weight is None and plain.num_parameters() == 0


def test_dropout_train_eval_and_seeded_stream():
    x = np.ones((200, 50), dtype=np.float32)
    d = nn.Dropout(0.25, seed=3)
    y = d(x).detach().numpy()
    zeros = (y == 0).mean()
    assert 0.2 < zeros < 0.3
    np.testing.assert_allclose(y[y != 0], 1 / 0.75, rtol=1e-6)
    assert "rng_state" in d.state_dict() and d.p == 0.25
    # the same seed draws the same mask; eval is the identity
    np.testing.assert_array_equal(nn.Dropout(0.25, seed=3)(x).detach().numpy(), y)
    assert d.eval() is d and not d.training
    np.testing.assert_array_equal(d(x).detach().numpy(), x)
    d.train()
    assert d.training
    with pytest.raises(attend.Error):
        nn.Dropout(1.5)


class Square(torch.nn.Module):
    def forward(self, x):
        return x * x


def test_sequential_with_modules_and_callables_matches_torch():
    am = nn.Sequential(nn.Linear(4, 6, dtype="float64"), lambda x: x * x,
                       nn.Linear(6, 2, dtype="float64"))
    tm = torch.nn.Sequential(torch.nn.Linear(4, 6), Square(), torch.nn.Linear(6, 2)).double()
    assert list(am.state_dict()) == list(tm.state_dict())  # '0.weight', ..., '2.bias'
    copy_to_torch(am, tm)
    compare(am, tm, rand(3, 4))
    assert len(am) == 3 and isinstance(am[0], nn.Linear) and am[-1] is not None
    assert len(am.children()) == 2 and am.named_children()[1][0] == "2"
    with pytest.raises(attend.Error):
        am[1]  # a function step
    with pytest.raises(attend.Error):
        am[3]
    am.append(nn.Dropout(0.5))
    assert len(am) == 4
    with pytest.raises(attend.Error):
        nn.Sequential(nn.GRU(2, 2))  # returns a tuple
    with pytest.raises(attend.Error):
        nn.Sequential(3)
    bad = nn.Sequential(lambda x: "not a tensor")
    with pytest.raises(attend.Error):
        bad(np.ones(2))


def test_positional_encodings():
    pe = nn.SinusoidalPositionalEncoding(10, 6, dtype="float64")
    pos = np.arange(10)[:, None]
    i = np.arange(0, 6, 2)[None, :]
    want = np.zeros((10, 6))
    want[:, 0::2] = np.sin(pos / 10000 ** (i / 6))
    want[:, 1::2] = np.cos(pos / 10000 ** (i / 6))
    np.testing.assert_allclose(pe.table.detach().numpy(), want, rtol=1e-12, atol=1e-12)
    x = rand(2, 7, 6)
    np.testing.assert_allclose(pe(x).detach().numpy(), x + want[:7], **R64)
    assert list(pe.state_dict()) == ["pe"] and pe.num_parameters() == 0
    lp = nn.LearnedPositionalEncoding(8, 3, dtype="float64", generator=attend.Generator(4))
    x = rand(2, 5, 3)
    xa = attend.tensor(x)
    y = lp(xa)
    np.testing.assert_allclose(y.detach().numpy(), x + lp.weight.detach().numpy()[:5], **R64)
    y.backward(np.ones((2, 5, 3)))
    want_grad = np.zeros((8, 3))
    want_grad[:5] = 2
    np.testing.assert_allclose(lp.weight.grad.detach().numpy(), want_grad, **R64)
    with pytest.raises(attend.Error):
        pe(rand(2, 11, 6))


# ---- convolution and pooling ----

def test_conv1d_matches_torch():
    am = nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2, dtype="float64")
    tm = torch.nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2).double()
    copy_to_torch(am, tm)
    compare(am, tm, rand(2, 4, 9))
    assert am.weight.shape == (6, 2, 3) and nn.Conv1d(1, 1, 2, bias=False).bias is None


def test_conv2d_and_pools_match_torch():
    am = nn.Conv2d(3, 4, (3, 2), stride=(1, 2), padding=1, dilation=(2, 1), dtype="float64")
    tm = torch.nn.Conv2d(3, 4, (3, 2), stride=(1, 2), padding=1, dilation=(2, 1)).double()
    copy_to_torch(am, tm)
    compare(am, tm, rand(2, 3, 7, 6))
    assert am.bias.shape == (4,)
    x = rand(2, 3, 7, 6)
    for a, t in [(nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
                 (nn.MaxPool2d((3, 2), stride=(2, 1), padding=1),
                  torch.nn.MaxPool2d((3, 2), stride=(2, 1), padding=1)),
                 (nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
                  torch.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)),
                 (nn.AvgPool2d(2), torch.nn.AvgPool2d(2))]:
        compare(a, t, x)
    assert nn.MaxPool2d(3).kernel_size == (3, 3) and nn.AvgPool2d((1, 2)).kernel_size == (1, 2)
    gp = nn.GlobalAvgPool()
    np.testing.assert_allclose(gp(x).detach().numpy(), x.mean(axis=(2, 3)), **R64)
    assert nn.GlobalAvgPool(keepdim=True)(x).shape == (2, 3, 1, 1)
    with pytest.raises(attend.Error):
        nn.Conv2d(3, 4, "a")
    with pytest.raises(attend.Error):
        nn.Conv2d(3, 4, (1, 2, 3))
    with pytest.raises(attend.Error):
        am(rand(2, 5, 7, 6))  # wrong channel count


# ---- recurrent ----

@pytest.mark.parametrize("batch_first,bidirectional,layers", [(False, False, 1), (True, True, 2)])
def test_gru_matches_torch(batch_first, bidirectional, layers):
    am = nn.GRU(3, 4, num_layers=layers, batch_first=batch_first, bidirectional=bidirectional,
                dtype="float64")
    tm = torch.nn.GRU(3, 4, num_layers=layers, batch_first=batch_first,
                      bidirectional=bidirectional).double()
    assert list(am.state_dict()) == list(tm.state_dict())
    copy_to_torch(am, tm)
    d = 2 if bidirectional else 1
    h0 = rand(layers * d, 2, 4, seed=3)
    x = rand(2, 5, 3) if batch_first else rand(5, 2, 3)
    compare(am, tm, x, a_call=lambda x: am(x, h0)[0], t_call=lambda x: tm(x, torch.tensor(h0))[0])
    ha = am(x, h0)[1].detach().numpy()
    np.testing.assert_allclose(ha, tm(torch.tensor(x), torch.tensor(h0))[1].detach().numpy(),
                               **R64)
    assert am.num_layers == layers and am.bidirectional == bidirectional
    assert am.batch_first == batch_first and am.hidden_size == 4 and am.input_size == 3


def test_lstm_matches_torch_with_state_and_lengths():
    am = nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True, dtype="float64")
    tm = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True).double()
    copy_to_torch(am, tm)
    assert am.weight_hh_l1_reverse.shape == (16, 4)
    h0, c0 = rand(4, 3, 4, seed=1), rand(4, 3, 4, seed=2)
    x = rand(3, 5, 3)
    compare(am, tm, x, a_call=lambda x: am(x, (h0, c0))[0],
            t_call=lambda x: tm(x, (torch.tensor(h0), torch.tensor(c0)))[0])
    # padded batch: lengths against a packed sequence
    lengths = np.array([5, 2, 4])
    out, (hn, cn) = am(x, (h0, c0), lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), torch.tensor(lengths),
                                                     batch_first=True, enforce_sorted=False)
    tout, (thn, tcn) = tm(packed, (torch.tensor(h0), torch.tensor(c0)))
    tout, _ = torch.nn.utils.rnn.pad_packed_sequence(tout, batch_first=True, total_length=5)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), **R64)
    np.testing.assert_allclose(hn.detach().numpy(), thn.detach().numpy(), **R64)
    np.testing.assert_allclose(cn.detach().numpy(), tcn.detach().numpy(), **R64)
    # no state at all
    out2, _ = am(x)
    np.testing.assert_allclose(out2.detach().numpy(), tm(torch.tensor(x))[0].detach().numpy(), **R64)
    with pytest.raises(attend.Error):
        am(x, (h0,))
    with pytest.raises(attend.Error):
        am(x.astype(np.float32))  # dtype differs from the parameters
    with pytest.raises(attend.Error):
        am(rand(3, 5))


def test_cells_match_torch():
    am = nn.GRUCell(3, 5, dtype="float64")
    tm = torch.nn.GRUCell(3, 5).double()
    copy_to_torch(am, tm)
    h = rand(2, 5, seed=4)
    compare(am, tm, rand(2, 3), a_call=lambda x: am(x, h), t_call=lambda x: tm(x, torch.tensor(h)))
    assert am.input_size == 3 and am.hidden_size == 5
    am = nn.LSTMCell(3, 5, dtype="float64")
    tm = torch.nn.LSTMCell(3, 5).double()
    copy_to_torch(am, tm)
    hc = (rand(2, 5, seed=4), rand(2, 5, seed=5))
    thc = tuple(torch.tensor(v) for v in hc)
    compare(am, tm, rand(2, 3), a_call=lambda x: am(x, hc)[1], t_call=lambda x: tm(x, thc)[1])
    compare(am, tm, rand(2, 3), a_call=lambda x: am(x)[0], t_call=lambda x: tm(x)[0])


def test_advanced_lstm_with_history_one_is_torch_lstm():
    am = nn.AdvancedLSTM(3, 4, num_layers=2, history=1, batch_first=True, dtype="float64")
    tm = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True).double()
    names = list(am.state_dict())
    assert "attn_weight_hist_l0" in names and "attn_v_l1" in names
    copy_to_torch(am, tm, strict=False)
    x = rand(2, 5, 3)
    compare(am, tm, x, a_call=lambda x: am(x)[0], t_call=lambda x: tm(x)[0])
    for name, p in am.named_parameters():  # one slot: its weight is 1 whatever the score
        if name.startswith("attn_"):
            assert p.grad is None or not p.grad.detach().numpy().any(), name
    out, state = am(x)
    np.testing.assert_allclose(state.h.detach().numpy(), tm(torch.tensor(x))[1][0].detach().numpy(), **R64)
    assert state.past_h is None and am.history == 1


def test_advanced_lstm_state_and_attention():
    am = nn.AdvancedLSTM(3, 4, history=3, attention_dim=5, generator=attend.Generator(2))
    x = rand(6, 2, 3).astype(np.float32)  # [T, B, in]
    out, state, att = am(x, return_attention=True)
    assert out.shape == (6, 2, 4) and len(att) == 1 and att[0].shape == (6, 2, 3)
    np.testing.assert_allclose(att[0].detach().numpy().sum(-1), 1.0, rtol=1e-5)
    assert state.past_h.shape == (2, 1, 2, 4) and state.past_count.tolist() == [2, 2]
    # continuing from the state equals one call over the whole sequence
    whole, _ = am(np.concatenate([x, x]))
    st = nn.AdvancedLSTM.State()
    first, st2 = am(x, state=st)
    assert st2 is st and st.h is not None
    second, _ = am(x, state=st)
    np.testing.assert_allclose(second.detach().numpy(), whole.detach().numpy()[6:], **R32)
    st.select_rows([1, 1, 0])
    assert st.h.shape == (1, 3, 4) and am.attention_dim == 5


def test_prepacked_linear_and_recurrent_step():
    lin = nn.Linear(6, 4)
    p = nn.PrepackedLinear(lin)
    x = rand(3, 6).astype(np.float32)
    np.testing.assert_allclose(p(x).detach().numpy(), lin(x).detach().numpy(), **R32)
    assert p.in_features == 6 and p.out_features == 4 and p.precision == "f32"
    # bf16 and int8: within their rounding of f32 (bounds proven in the C++ kernel tests).
    for precision, tol in (("bf16", 2e-2), ("int8", 5e-2)):
        q = nn.PrepackedLinear(lin, precision=precision)
        assert q.precision == precision
        np.testing.assert_allclose(q(x).detach().numpy(), lin(x).detach().numpy(), atol=tol)
    with pytest.raises(attend.Error, match="unknown precision"):
        nn.PrepackedLinear(lin, precision="fp8")
    gru = nn.GRU(6, 5, num_layers=2).eval()
    step = nn.PrepackedRecurrentStep(gru)
    h = np.zeros((2, 3, 5), dtype=np.float32)
    top, h1, c1 = step.step(x, h)
    out, hn = gru(x[None])
    np.testing.assert_allclose(top.detach().numpy(), out.detach().numpy()[0], **R32)
    np.testing.assert_allclose(h1.detach().numpy(), hn.detach().numpy(), **R32)
    assert c1 is None


# ---- the Module base ----

def test_state_dict_names_and_sharing():
    m = nn.LSTM(2, 3)
    sd = m.state_dict()
    assert list(sd) == [n for n, _ in m.named_parameters()]
    assert not sd["weight_ih_l0"].requires_grad
    assert sd["weight_ih_l0"].data_ptr() == m.weight_ih_l0.data_ptr()
    assert m.num_parameters() == sum(p.numel() for p in m.parameters())
    d = nn.Dropout(0.1)
    assert [n for n, _ in d.named_buffers()] == ["rng_state"] and len(d.buffers()) == 1
    assert repr(m) == "LSTM(parameters=%d)" % m.num_parameters()
    with pytest.raises(AttributeError):
        m.no_such_thing


def test_load_state_dict_is_in_place_and_checked():
    m = nn.Linear(3, 2, dtype="float64")
    w = m.weight
    new = {"weight": rand(2, 3), "bias": rand(2)}
    r = m.load_state_dict(new)
    assert r.missing_keys == [] and r.unexpected_keys == []
    np.testing.assert_array_equal(w.detach().numpy(), new["weight"])  # the same handle, updated
    before = m.weight.detach().numpy().copy()
    with pytest.raises(attend.Error, match="missing key 'bias'"):
        m.load_state_dict({"weight": rand(2, 3)})
    with pytest.raises(attend.Error, match="unexpected key 'extra'"):
        m.load_state_dict({"weight": rand(2, 3), "bias": rand(2), "extra": rand(1)})
    with pytest.raises(attend.Error, match="'weight' has shape"):
        m.load_state_dict({"weight": rand(3, 2), "bias": rand(2)})
    with pytest.raises(attend.Error):
        m.load_state_dict({"weight": None, "bias": rand(2)})
    np.testing.assert_array_equal(m.weight.detach().numpy(), before)  # failed loads change nothing
    r = m.load_state_dict({"bias": np.zeros(2), "extra": np.ones(1)}, strict=False)
    assert r.missing_keys == ["weight"] and r.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(m.bias.detach().numpy(), 0)
    with pytest.raises(TypeError):
        m.load_state_dict([1, 2])


def test_nested_names_train_eval_and_zero_grad():
    m = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.Dropout(0.5), nn.LayerNorm(3)))
    # parameters first, then buffers (torch interleaves by module; names are what matter)
    assert list(m.state_dict()) == ["0.weight", "0.bias", "1.1.weight", "1.1.bias",
                                    "1.0.rng_state"]
    assert m.train(False) is m and not m[1][0].training
    m.train()
    assert m[1][0].training
    y = m(np.ones((2, 2), dtype=np.float32))
    y.backward(np.ones((2, 3), dtype=np.float32))
    assert m[0].weight.grad is not None
    m.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(m[0].weight.grad.detach().numpy(), 0)
    m.zero_grad()
    assert m[0].weight.grad is None


def test_constructor_errors():
    for make in [lambda: nn.Linear(-1, 2), lambda: nn.Linear(2, 0),
                 lambda: nn.Embedding(4, 2, padding_idx=4), lambda: nn.LayerNorm([]),
                 lambda: nn.LayerNorm(-3), lambda: nn.GRU(3, 4, num_layers=0),
                 lambda: nn.LSTM(3, 4, dtype="int64"), lambda: nn.Linear(2, 2, dtype="half"),
                 lambda: nn.Conv1d(3, 4, 0)]:
        with pytest.raises(attend.Error):
            make()
    with pytest.raises(TypeError):
        nn.Linear("a", 2)
    lin = nn.Linear(3, 2)
    with pytest.raises(attend.Error):
        lin(None)
    with pytest.raises(attend.Error):
        lin(np.ones((2, 4), dtype=np.float32))


def test_generator_makes_init_reproducible():
    a = nn.GRU(3, 4, generator=attend.Generator(9))
    b = nn.GRU(3, 4, generator=attend.Generator(9))
    c = nn.GRU(3, 4, generator=attend.Generator(10))
    np.testing.assert_array_equal(a.weight_ih_l0.detach().numpy(), b.weight_ih_l0.detach().numpy())
    assert not np.array_equal(a.weight_ih_l0.detach().numpy(), c.weight_ih_l0.detach().numpy())
    attend.manual_seed(5)
    d = nn.Linear(3, 3)
    attend.manual_seed(5)
    np.testing.assert_array_equal(d.weight.detach().numpy(), nn.Linear(3, 3).weight.detach().numpy())


# ---- init ----

def test_initialisers():
    init = nn.init
    g = attend.Generator(1)
    w = attend.zeros(200, 300)
    assert init.calculate_fan_in_and_fan_out(w) == (300, 200)
    assert init._calculate_fan_in_and_fan_out(attend.zeros(4, 3, 5)) == (15, 20)
    assert init.uniform_(w, -2, 3, generator=g) is not None
    a = w.detach().numpy()
    assert a.min() >= -2 and a.max() < 3 and abs(a.mean() - 0.5) < 0.05
    init.normal_(w, 1.0, 2.0, generator=g)
    assert abs(a.mean() - 1) < 0.05 and abs(a.std() - 2) < 0.05
    init.xavier_uniform_(w, gain=2.0)
    b = 2 * math.sqrt(6 / 500)
    assert a.max() <= b and a.max() > 0.98 * b
    init.xavier_normal_(w, generator=g)
    assert abs(a.std() - math.sqrt(2 / 500)) < 0.002
    init.kaiming_uniform_(w, a=math.sqrt(5))
    b = math.sqrt(6 / (6 * 300))
    assert a.max() <= b and a.max() > 0.98 * b
    init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu")
    b = math.sqrt(6 / 200)
    assert a.max() <= b and a.max() > 0.98 * b
    init.kaiming_normal_(w, generator=g)
    assert abs(a.std() - math.sqrt(2 / 300)) < 0.002
    init.constant_(w, 0.5)
    assert np.all(a == 0.5)
    init.zeros_(w)
    assert np.all(a == 0)
    init.ones_(w)
    assert np.all(a == 1)
    arr = np.zeros((3, 4))  # NumPy arrays are filled in place too
    init.constant_(arr, 2.0)
    assert np.all(arr == 2)
    with pytest.raises(attend.Error):
        init.kaiming_normal_(w, mode="fan_middle")
    with pytest.raises(attend.Error):
        init.kaiming_normal_(w, nonlinearity="tanh")
    with pytest.raises(attend.Error):
        init.xavier_uniform_(attend.zeros(3))  # no fan for 1-D
    with pytest.raises(attend.Error):
        init.uniform_(None)


# ---- files ----

def test_safetensors_round_trip(tmp_path):
    tensors = {"a": rand(2, 3), "b": rand(4).astype(np.float32),
               "c": np.arange(5, dtype=np.int64), "d": np.array([True, False])}
    path = tmp_path / "x.safetensors"
    nn.save_safetensors(path, tensors, metadata={"k": "v"})
    back = nn.load_safetensors(str(path), require_checksum=True)
    assert list(back) == list(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == str(v.dtype)
        np.testing.assert_array_equal(back[k].detach().numpy(), v)
    got, meta = nn.load_safetensors(path, with_metadata=True)
    assert meta["k"] == "v" and "attend.crc32" in meta
    # a model's state dict through a file
    m = nn.LSTM(2, 3)
    nn.save_safetensors(path, m.state_dict())
    m2 = nn.LSTM(2, 3)
    m2.load_state_dict(nn.load_safetensors(path))
    np.testing.assert_array_equal(m2.weight_hh_l0.detach().numpy(), m.weight_hh_l0.detach().numpy())


def test_safetensors_errors(tmp_path):
    with pytest.raises(attend.Error):
        nn.load_safetensors(tmp_path / "missing.safetensors")
    path = tmp_path / "x.safetensors"
    nn.save_safetensors(path, {"w": np.arange(64, dtype=np.float64)})
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x10  # a flipped bit in a weight
    path.write_bytes(bytes(data))
    with pytest.raises(attend.Error, match="(?i)checksum|crc"):
        nn.load_safetensors(path)
    path.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}")
    with pytest.raises(attend.Error):
        nn.load_safetensors(path)
    path.write_bytes(b"")
    with pytest.raises(attend.Error):
        nn.load_safetensors(path)
    with pytest.raises(attend.Error):
        nn.save_safetensors(tmp_path / "no_dir" / "x.safetensors", {"w": np.ones(2)})
    with pytest.raises(attend.Error):
        nn.save_safetensors(path, {"w": None})
    with pytest.raises(TypeError):
        nn.load_safetensors(3.5)


def test_checkpoint_round_trip(tmp_path):
    m = nn.Linear(3, 2, dtype="float64")
    opt = attend.optim.Adam(m.parameters(), lr=0.1)
    sched = attend.optim.StepLR(opt, 2, gamma=0.5)
    for p in m.parameters():
        p.grad = np.ones(p.shape)
    opt.step()
    sched.step()
    path = tmp_path / "ckpt.safetensors"
    nn.save_checkpoint(path, m, opt, sched, config='{"a": 1}', extra={"note": "x"})
    m2 = nn.Linear(3, 2, dtype="float64")
    opt2 = attend.optim.Adam(m2.parameters(), lr=0.1)
    sched2 = attend.optim.StepLR(opt2, 2, gamma=0.5)
    config, extra = nn.load_checkpoint(path, m2, opt2, sched2)
    assert config == '{"a": 1}' and extra == {"note": "x"}
    np.testing.assert_array_equal(m2.weight.detach().numpy(), m.weight.detach().numpy())
    assert opt2.step_count == 1 and sched2.last_epoch == 1
    np.testing.assert_array_equal(opt2.state["state.0.exp_avg"].detach().numpy(),
                                  opt.state["state.0.exp_avg"].detach().numpy())
    with pytest.raises(attend.Error):
        nn.load_checkpoint(path, nn.Linear(3, 3, dtype="float64"))
    with pytest.raises(attend.Error):
        nn.load_checkpoint(tmp_path / "none", m2)


def test_clip_grad_norm_matches_torch():
    ps = [rand(3, 4, seed=1), rand(5, seed=2)]
    for norm_type in [2.0, 1.0, float("inf")]:
        a = [attend.tensor(p, requires_grad=True) for p in ps]
        t = [torch.tensor(p, requires_grad=True) for p in ps]
        for x, y, s in zip(a, t, [3, 4]):
            g = rand(*x.shape, seed=s)
            x.grad = g
            y.grad = torch.tensor(g)
        na = nn.utils.clip_grad_norm_(a, 0.5, norm_type=norm_type)
        nt = torch.nn.utils.clip_grad_norm_(t, 0.5, norm_type=norm_type)
        assert na == pytest.approx(float(nt), rel=1e-12)
        for x, y in zip(a, t):
            np.testing.assert_allclose(x.grad.detach().numpy(), y.grad.detach().numpy(), **R64)
    with pytest.raises(attend.Error):
        nn.utils.clip_grad_norm_([np.ones(2)], 1.0)
