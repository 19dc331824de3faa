"""attend.Tensor from Python: NumPy exchange without copies, autograd, operators, indexing,
no_grad, creation, and clear errors (attend.Error) for bad arguments. PyTorch is the oracle for
values and gradients."""
import gc
import sys

import numpy as np
import pytest
import torch

import attend


def address(a):
    return a.__array_interface__["data"][0]


# ---- NumPy exchange ----

def test_from_numpy_shares_memory_both_ways():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = attend.from_numpy(a)
    assert t.shape == (2, 3) and t.dtype == "float32"
    assert t.data_ptr() == address(a)
    a[0, 0] = 42.0
    assert t[0, 0].item() == 42.0
    back = t.numpy()
    assert address(back) == address(a)
    back[1, 2] = -1.0
    assert a[1, 2] == -1.0


@pytest.mark.parametrize("dtype,name", [(np.float32, "float32"), (np.float64, "float64"),
                                        (np.int64, "int64"), (np.bool_, "bool")])
def test_every_dtype_round_trips_without_a_copy(dtype, name):
    a = (np.arange(12) % 3).astype(dtype).reshape(3, 4)
    t = attend.from_numpy(a)
    assert t.dtype == name
    b = t.numpy()
    assert b.dtype == a.dtype and address(b) == address(a)
    np.testing.assert_array_equal(b, a)


def test_strided_views_are_shared_not_copied():
    a = np.arange(24, dtype=np.float64).reshape(4, 6)
    v = a[1:, ::2]  # non-contiguous view
    t = attend.from_numpy(v)
    assert t.data_ptr() == address(v)
    assert t.stride() == (6 * 1, 2)  # in elements
    np.testing.assert_array_equal(t.numpy(), v)
    tt = attend.from_numpy(a.T)
    np.testing.assert_array_equal(tt.numpy(), a.T)


def test_views_keep_their_owner_alive():
    a = np.arange(5, dtype=np.float32)
    t = attend.from_numpy(a)
    del a
    gc.collect()
    np.testing.assert_array_equal(t.numpy(), np.arange(5, dtype=np.float32))
    n = attend.tensor([1.0, 2.0, 3.0]).numpy()  # the tensor lives in the array's base
    gc.collect()
    np.testing.assert_array_equal(n, [1.0, 2.0, 3.0])
    view = attend.from_numpy(np.ones((3, 3), np.float32))[1]
    gc.collect()
    assert view.numpy().tolist() == [1.0, 1.0, 1.0]


def test_buffer_protocol():
    t = attend.tensor([[1, 2], [3, 4]])
    m = memoryview(t)
    assert m.shape == (2, 2) and m.format in ("l", "q")
    np.testing.assert_array_equal(np.asarray(t), [[1, 2], [3, 4]])
    assert address(np.asarray(t)) == t.data_ptr()


def test_unsupported_arrays_are_clear_errors():
    with pytest.raises(attend.Error, match="int32"):
        attend.from_numpy(np.zeros(3, np.int32))
    ro = np.zeros(3, np.float32)
    ro.setflags(write=False)
    with pytest.raises(attend.Error, match="read-only"):
        attend.from_numpy(ro)
    with pytest.raises(attend.Error, match="negative"):
        attend.from_numpy(np.arange(4.0)[::-1])
    # attend.tensor copies what from_numpy cannot share.
    np.testing.assert_array_equal(attend.tensor(np.arange(4.0)[::-1]).numpy(), [3, 2, 1, 0])
    np.testing.assert_array_equal(attend.tensor(np.zeros(3, np.int32)).numpy(), [0, 0, 0])
    assert issubclass(attend.Error, ValueError)


def test_numpy_of_a_tensor_that_requires_grad_is_refused():
    x = attend.randn(3, requires_grad=True)
    with pytest.raises(attend.Error, match="detach"):
        x.numpy()
    assert x.detach().numpy().shape == (3,)


# ---- creation ----

def test_tensor_dtypes_follow_pytorch():
    assert attend.tensor([1.0, 2.0]).dtype == "float32"
    assert attend.tensor([1, 2]).dtype == "int64"
    assert attend.tensor([True, False]).dtype == "bool"
    assert attend.tensor(np.zeros(2)).dtype == "float64"
    assert attend.tensor([1, 2], dtype="float64").dtype == "float64"
    assert attend.tensor(3.5).shape == ()


def test_creation_functions():
    assert attend.zeros(2, 3).numpy().tolist() == [[0, 0, 0], [0, 0, 0]]
    assert attend.ones((2,), dtype="int64").numpy().tolist() == [1, 1]
    assert attend.full((2, 2), 7.0).numpy().tolist() == [[7, 7], [7, 7]]
    assert attend.arange(4).numpy().tolist() == [0, 1, 2, 3]
    assert attend.empty(0, 3).shape == (0, 3)
    g1, g2 = attend.Generator(5), attend.Generator(5)
    np.testing.assert_array_equal(attend.randn(4, generator=g1).numpy(),
                                  attend.randn(4, generator=g2).numpy())
    attend.manual_seed(3)
    a = attend.rand(100).numpy()
    attend.manual_seed(3)
    assert np.array_equal(a, attend.rand(100).numpy()) and 0 <= a.min() and a.max() < 1
    r = attend.randint(2, 5, (1000,)).numpy()
    assert r.min() == 2 and r.max() == 4


@pytest.mark.parametrize("call", [
    lambda: attend.zeros(-1),
    lambda: attend.zeros(2, dtype="int32"),
    lambda: attend.tensor(None),
    lambda: attend.tensor(["a", "b"]),
    lambda: attend.randint(5, 2, (3,)),
    lambda: attend.arange(-3),
    lambda: attend.tensor([1, 2]).requires_grad_(),
    lambda: attend.randn(2, 3).reshape(7),
    lambda: attend.randn(2, 3).item(),
    lambda: attend.randn(2, 3)[5],
    lambda: attend.randn(2, 3)[0, 0, 0],
    lambda: attend.randn(2, 3) + attend.randn(4),
    lambda: attend.randn(2, 3) @ attend.randn(2, 3),
    lambda: attend.randn(2).backward(),
])
def test_bad_arguments_raise_attend_error_and_nothing_crashes(call):
    with pytest.raises((attend.Error, TypeError)):
        call()


# ---- autograd against PyTorch ----

def test_backward_matches_torch():
    v = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=np.float64)
    x = attend.tensor(v, requires_grad=True)
    w = attend.tensor(v.T.copy(), requires_grad=True)
    y = ((x @ w) * 3.0 - x.sum() / 2.0 + (x * x).mean()) ** 2
    y.sum().backward()
    xt = torch.tensor(v, requires_grad=True)
    wt = torch.tensor(v.T.copy(), requires_grad=True)
    yt = ((xt @ wt) * 3.0 - xt.sum() / 2.0 + (xt * xt).mean()) ** 2
    yt.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-12)
    x.grad = None
    assert x.grad is None


def test_operators_match_numpy():
    a = np.array([[1.0, -2.0], [3.0, 4.5]], dtype=np.float64)
    b = np.array([[0.5, 2.0], [-1.0, 3.0]], dtype=np.float64)
    ta, tb = attend.tensor(a), attend.tensor(b)
    for got, want in [(ta + tb, a + b), (ta - tb, a - b), (ta * tb, a * b), (ta / tb, a / b),
                      (ta + 1, a + 1), (1 - ta, 1 - a), (2 * ta, 2 * a), (1 / tb, 1 / b),
                      (ta - 1.5, a - 1.5), (ta / 2, a / 2), (-ta, -a), (abs(ta), abs(a)),
                      (ta @ tb, a @ b), (ta ** 2, a ** 2), (ta + b, a + b)]:
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-15)
    np.testing.assert_array_equal((ta > tb).numpy(), a > b)
    np.testing.assert_array_equal((ta == 1.0).numpy(), a == 1.0)
    np.testing.assert_array_equal((ta <= tb).numpy(), a <= b)
    np.testing.assert_array_equal((~(ta > 0)).numpy(), ~(a > 0))


def test_indexing_matches_numpy_and_torch_gradients():
    v = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    t = attend.tensor(v)
    for key in [0, -1, (1, 2), (slice(None), 1), (Ellipsis, 2), (slice(None, None, 2),),
                (0, slice(1, 3), slice(None, None, -1)), (None, 1), (Ellipsis, None),
                (1, [2, 0])]:
        np.testing.assert_array_equal(t[key].numpy(), v[key], err_msg=str(key))
    x = attend.tensor(v, requires_grad=True)
    xt = torch.tensor(v, requires_grad=True)
    y = (x[1, 1:, ::2] * x[0, [2, 1]][:, 1:3]).sum()
    yt = (xt[1, 1:, ::2] * xt[0, [2, 1]][:, 1:3]).sum()
    y.backward()
    yt.backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy())


def test_assignment_writes_in_place_and_refuses_what_needs_grad():
    t = attend.zeros(3, 4)
    t[1] = 5.0
    t[:, 0] = attend.tensor([1.0, 2.0, 3.0])
    t[2, 1:3] = np.array([7.0, 8.0], dtype=np.float32)
    assert t.numpy().tolist() == [[1, 0, 0, 0], [2, 5, 5, 5], [3, 7, 8, 0]]
    w = attend.randn(3, requires_grad=True)
    with pytest.raises(attend.Error, match="no_grad"):
        w[0] = 1.0
    with attend.no_grad():
        w[0] = 1.0
    assert w[0].item() == 1.0
    with pytest.raises(attend.Error):
        t[[0, 1]] = 1.0


def test_no_grad_scopes():
    x = attend.randn(3, requires_grad=True)
    assert attend.is_grad_enabled()
    with attend.no_grad():
        assert not attend.is_grad_enabled()
        y = x * 2
        with attend.enable_grad():
            assert (x * 2).requires_grad
        assert not attend.is_grad_enabled()
    assert attend.is_grad_enabled()
    assert not y.requires_grad and (x * 2).requires_grad


def test_views_and_shape_methods():
    v = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = attend.tensor(v)
    np.testing.assert_array_equal(t.reshape(6, 4).numpy(), v.reshape(6, 4))
    np.testing.assert_array_equal(t.view((4, 6)).numpy(), v.reshape(4, 6))
    np.testing.assert_array_equal(t.transpose(0, 2).numpy(), v.transpose(2, 1, 0))
    np.testing.assert_array_equal(t.permute(1, 0, 2).numpy(), v.transpose(1, 0, 2))
    np.testing.assert_array_equal(t.T.numpy(), np.swapaxes(v, -1, -2))
    np.testing.assert_array_equal(t.flatten().numpy(), v.reshape(-1))
    np.testing.assert_array_equal(t.unsqueeze(1).numpy(), v[:, None])
    np.testing.assert_array_equal(t[:, :1].squeeze(1).numpy(), v[:, 0])
    np.testing.assert_array_equal(attend.tensor([[1.0], [2.0]]).expand(2, 3).numpy(),
                                  [[1, 1, 1], [2, 2, 2]])
    assert t.to("float64").dtype == "float64" and t.long().dtype == "int64"
    assert len(t) == 2 and t.ndim == 3 and t.numel() == 24
    assert t.tolist() == v.tolist()


# ---- reference counts and memory ----

def test_no_reference_leak_over_100000_calls():
    a = np.ones(16, dtype=np.float32)
    before = sys.getrefcount(a)
    for _ in range(100_000):
        t = attend.from_numpy(a)
        del t
    assert sys.getrefcount(a) == before
    x, y = attend.ones(16), attend.ones(16)
    for _ in range(1000):  # warm the allocator's cache
        z = x + y
    in_use = attend.allocator_stats()["bytes_in_use"]
    rss = rss_kib()
    for _ in range(100_000):
        z = x + y
        n = z.numpy()
        del n
    del z
    gc.collect()
    assert attend.allocator_stats()["bytes_in_use"] <= in_use
    assert rss_kib() - rss < 4096, "RSS grew by %d KiB over 100,000 calls" % (rss_kib() - rss)


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4
