"""attend.optim from Python: SGD, Adam and AdamW against torch.optim over several steps, their
state dicts, gradient clipping, every learning-rate schedule against
torch.optim.lr_scheduler, and clear errors (attend.Error) for bad arguments."""
import math

import numpy as np
import pytest
import torch

import attend

optim = attend.optim
R64 = dict(rtol=1e-10, atol=1e-12)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def quadratic_grads(ps, step):
    """Gradients of a fixed quadratic (c * p^2 + d * p, summed) that depend on p and the step."""
    out = []
    for i, p in enumerate(ps):
        c = 0.5 + i + 0.1 * step
        d = rand(*p.shape, seed=100 + i)
        out.append(2 * c * p + d)
    return out


def run_both(make_a, make_t, steps=6, skip_second_at=None):
    init = [rand(3, 4, seed=1), rand(5, seed=2)]
    pa = [attend.tensor(p, requires_grad=True) for p in init]
    pt = [torch.tensor(p, requires_grad=True) for p in init]
    oa, ot = make_a(pa), make_t(pt)
    for s in range(steps):
        for p, q, g in zip(pa, pt, quadratic_grads([p.detach().numpy() for p in pa], s)):
            p.grad = g
            q.grad = torch.tensor(g)
        if s == skip_second_at:  # a parameter without a gradient is skipped
            pa[1].grad = None
            pt[1].grad = None
        oa.step()
        ot.step()
        for p, q in zip(pa, pt):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), **R64)
    return oa, ot, pa, pt


CASES = [
    ("sgd", lambda p: optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    ("sgd_momentum",
     lambda p: optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("sgd_nesterov", lambda p: optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    ("adam", lambda p: optim.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    ("adam_amsgrad_wd",
     lambda p: optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1,
                          amsgrad=True),
     lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1,
                                amsgrad=True)),
    ("adamw", lambda p: optim.AdamW(p, lr=0.01), lambda p: torch.optim.AdamW(p, lr=0.01)),
    ("adamw_amsgrad", lambda p: optim.AdamW(p, lr=0.03, weight_decay=0.2, amsgrad=True),
     lambda p: torch.optim.AdamW(p, lr=0.03, weight_decay=0.2, amsgrad=True)),
]


@pytest.mark.parametrize("name,make_a,make_t", CASES, ids=[c[0] for c in CASES])
def test_optimizer_matches_torch(name, make_a, make_t):
    oa, ot, pa, _ = run_both(make_a, make_t, skip_second_at=2)
    assert oa.step_count == 6
    assert oa.type == {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}[name.split("_")[0]]
    # per-parameter step counts: the second parameter missed one update, as in torch
    st = oa.state
    if "state.0.step" in st:
        assert st["state.0.step"].item() == 6 and st["state.1.step"].item() == 5
    if name.startswith("adam"):
        ts = ot.state[ot.param_groups[0]["params"][0]]
        np.testing.assert_allclose(st["state.0.exp_avg"].numpy(), ts["exp_avg"].numpy(), **R64)
        np.testing.assert_allclose(st["state.0.exp_avg_sq"].numpy(), ts["exp_avg_sq"].numpy(),
                                   **R64)
    if name == "sgd_momentum":
        ts = ot.state[ot.param_groups[0]["params"][0]]
        np.testing.assert_allclose(st["state.0.momentum_buffer"].numpy(),
                                   ts["momentum_buffer"].numpy(), **R64)


def test_properties_lr_and_zero_grad():
    p = attend.tensor(rand(3), requires_grad=True)
    o = optim.Adam([p], lr=0.1, betas=(0.8, 0.9), eps=1e-7, weight_decay=0.5)
    assert o.betas == (0.8, 0.9) and o.eps == 1e-7 and o.weight_decay == 0.5
    assert len(o.params) == 1 and o.params[0].data_ptr() == p.data_ptr()
    assert repr(o).startswith("Adam(lr=0.1")
    o.lr = 0.5
    assert o.lr == 0.5
    s = optim.SGD([p], momentum=0.9)
    assert s.lr == 0.01 and s.momentum == 0.9 and s.weight_decay == 0.0
    assert optim.AdamW([p]).weight_decay == 0.01
    p.grad = np.ones(3)
    o.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), 0)
    o.zero_grad()
    assert p.grad is None
    o.step()  # no gradient: nothing moves
    assert o.state == {}
    # works on a module's parameters, with a module's zero_grad
    m = attend.nn.Linear(3, 2)
    o = optim.SGD(m.parameters(), lr=1.0)
    w0 = m.weight.detach().numpy().copy()
    m(np.ones((1, 3), dtype=np.float32)).backward(np.ones((1, 2), dtype=np.float32))
    o.step()
    np.testing.assert_allclose(m.weight.detach().numpy(), w0 - 1.0, rtol=1e-6)


def test_state_dict_round_trip_continues_identically():
    def make(ps):
        return optim.Adam(ps, lr=0.05, amsgrad=True)

    init = rand(4, seed=3)
    a = attend.tensor(init, requires_grad=True)
    oa = make([a])
    for s in range(3):
        a.grad = quadratic_grads([a.detach().numpy()], s)[0]
        oa.step()
    sd = oa.state_dict()
    assert sd["lr"] == 0.05 and sd["step_count"] == 3
    assert set(sd) == {"lr", "step_count", "state.0.step", "state.0.exp_avg",
                       "state.0.exp_avg_sq", "state.0.max_exp_avg_sq"}
    b = attend.tensor(a.detach().numpy().copy(), requires_grad=True)
    ob = make([b])
    ob.load_state_dict(sd)
    assert ob.step_count == 3
    for s in range(3, 6):
        for p, o in [(a, oa), (b, ob)]:
            p.grad = quadratic_grads([p.detach().numpy()], s)[0]
            o.step()
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    # all or nothing: a bad entry leaves the state as it was
    before = ob.state_dict()["state.0.exp_avg"].numpy().copy()
    bad = dict(sd)
    bad["state.0.exp_avg"] = np.zeros(5)
    with pytest.raises(attend.Error):
        ob.load_state_dict(bad)
    np.testing.assert_array_equal(ob.state["state.0.exp_avg"].numpy(), before)
    bad = dict(sd)
    bad["state.0.bogus"] = np.zeros(4)
    with pytest.raises(attend.Error):
        ob.load_state_dict(bad)
    with pytest.raises(attend.Error):
        optim.SGD([b]).load_state_dict(sd)  # another optimizer's buffers


def test_constructor_errors():
    p = attend.tensor(rand(3), requires_grad=True)
    with pytest.raises(attend.Error):
        optim.SGD([])
    with pytest.raises(attend.Error):
        optim.SGD([np.ones(3)])
    with pytest.raises(attend.Error):
        optim.Adam([{"params": [p]}])
    with pytest.raises(attend.Error):
        optim.SGD([p, p])  # duplicates
    with pytest.raises(attend.Error):
        optim.SGD([attend.tensor([1, 2])])  # not floating
    with pytest.raises(attend.Error):
        optim.SGD([p], nesterov=True)  # needs momentum
    with pytest.raises(attend.Error):
        optim.SGD([p], lr=-1.0)
    with pytest.raises(TypeError):
        optim.SGD(3)
    with pytest.raises(TypeError):
        optim.Adam([p], betas=0.9)


# ---- schedules ----

def pair(lr=0.1):
    p = attend.tensor(rand(2), requires_grad=True)
    q = torch.tensor(rand(2), requires_grad=True)
    return optim.SGD([p], lr=lr), torch.optim.SGD([q], lr=lr)


def run_schedules(sa, st, oa, ot, steps, metrics=None):
    assert sa.get_last_lr()[0] == pytest.approx(st.get_last_lr()[0], rel=1e-12)
    for i in range(steps):
        oa.step()
        ot.step()
        if metrics is None:
            sa.step()
            st.step()
        else:
            sa.step(metrics[i])
            st.step(metrics[i])
        want = ot.param_groups[0]["lr"]
        assert oa.lr == pytest.approx(want, rel=1e-12, abs=1e-15), i
        assert sa.lr == oa.lr and sa.last_epoch == i + 1


def test_step_lr_matches_torch():
    oa, ot = pair()
    sa = optim.lr_scheduler.StepLR(oa, 3, gamma=0.5)
    st = torch.optim.lr_scheduler.StepLR(ot, 3, gamma=0.5)
    run_schedules(sa, st, oa, ot, 10)
    assert sa.type == "StepLR" and sa.base_lr == 0.1 and sa.base_lrs == [0.1]
    assert optim.StepLR is optim.lr_scheduler.StepLR


def test_constant_lr_matches_torch_with_torchs_defaults():
    oa, ot = pair()
    sa = optim.ConstantLR(oa)
    st = torch.optim.lr_scheduler.ConstantLR(ot)
    run_schedules(sa, st, oa, ot, 8)
    oa, ot = pair()
    sa = optim.ConstantLR(oa, factor=0.25, total_iters=2)
    st = torch.optim.lr_scheduler.ConstantLR(ot, factor=0.25, total_iters=2)
    run_schedules(sa, st, oa, ot, 4)


@pytest.mark.parametrize("kw", [dict(), dict(mode="max", threshold_mode="abs", threshold=0.1,
                                             cooldown=1, patience=1, factor=0.5, min_lr=0.02)])
def test_reduce_lr_on_plateau_matches_torch(kw):
    oa, ot = pair()
    sa = optim.ReduceLROnPlateau(oa, **kw)
    st = torch.optim.lr_scheduler.ReduceLROnPlateau(ot, **kw)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.89] + [0.9] * 12 + [1.5, 1.5, 1.6, 1.55] * 3
    for i, m in enumerate(metrics):
        oa.step()
        ot.step()
        sa.step(m)
        st.step(m)
        assert oa.lr == pytest.approx(ot.param_groups[0]["lr"], rel=1e-12), i
        assert sa.best == st.best and sa.num_bad_epochs == st.num_bad_epochs
        assert sa.cooldown_counter == st.cooldown_counter
    with pytest.raises(attend.Error):
        sa.step()  # needs the metric


def test_inverse_sqrt_warmup_matches_lambda_lr():
    oa, ot = pair(lr=1.0)
    sa = optim.InverseSqrtWarmup(oa, d_model=64, warmup=4, factor=2.0)
    st = torch.optim.lr_scheduler.LambdaLR(
        ot, lambda e: 2.0 * 64 ** -0.5 * min(max(e, 1) ** -0.5, max(e, 1) * 4 ** -1.5))
    run_schedules(sa, st, oa, ot, 12)
    assert sa.lr_at(4) == pytest.approx(2.0 * 64 ** -0.5 * 4 ** -0.5, rel=1e-12)
    oa, ot = pair(lr=1.0)
    sa = optim.InverseSqrtWarmup(oa, lr_peak=0.01, warmup=5)
    st = torch.optim.lr_scheduler.LambdaLR(
        ot, lambda e: 0.01 * min(max(e, 1) / 5, math.sqrt(5 / max(e, 1))))
    run_schedules(sa, st, oa, ot, 12)


def test_schedule_state_round_trip_and_errors():
    oa, _ = pair()
    sa = optim.ReduceLROnPlateau(oa, patience=0)
    for m in [1.0, 2.0, 3.0]:
        sa.step(m)
    sd = sa.state_dict()
    assert sd["last_epoch"] == 3 and sd["best"] == 1.0
    ob, _ = pair()
    sb = optim.ReduceLROnPlateau(ob, patience=0)
    sb.load_state_dict(sd)
    assert sb.last_epoch == 3 and sb.best == 1.0 and sb.num_bad_epochs == sa.num_bad_epochs
    with pytest.raises(attend.Error):
        sb.load_state_dict({"last_epoch": 1.0})  # keys missing
    s = optim.StepLR(oa, 2)
    with pytest.raises(attend.Error):
        s.step(0.5)  # only ReduceLROnPlateau takes a metric
    for make in [lambda: optim.StepLR(oa, 0), lambda: optim.InverseSqrtWarmup(oa),
                 lambda: optim.InverseSqrtWarmup(oa, d_model=8, lr_peak=1.0),
                 lambda: optim.InverseSqrtWarmup(oa, d_model=8, warmup=0),
                 lambda: optim.ReduceLROnPlateau(oa, mode="median"),
                 lambda: optim.ReduceLROnPlateau(oa, threshold_mode="pct"),
                 lambda: optim.ReduceLROnPlateau(oa, factor=1.5)]:
        with pytest.raises(attend.Error):
            make()
    with pytest.raises(TypeError):
        optim.StepLR(None, 2)


def test_schedule_keeps_its_optimizer_alive():
    p = attend.tensor(rand(2), requires_grad=True)
    s = optim.StepLR(optim.SGD([p], lr=0.2), 1, gamma=0.5)
    import gc
    gc.collect()
    s.step()
    assert s.lr == pytest.approx(0.1)


def test_clip_grad_norm_in_optim():
    a = attend.tensor(rand(4), requires_grad=True)
    t = torch.tensor(rand(4), requires_grad=True)
    g = rand(4, seed=9) * 10
    a.grad = g
    t.grad = torch.tensor(g)
    na = optim.clip_grad_norm_(a, 1.0)
    nt = torch.nn.utils.clip_grad_norm_(t, 1.0)
    assert na == pytest.approx(float(nt), rel=1e-12)
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), **R64)
    a.grad = np.array([np.nan, 1.0, 1.0, 1.0])
    with pytest.raises(attend.Error):
        optim.clip_grad_norm_([a], 1.0, error_if_nonfinite=True)
