"""attend: tensors, reverse-mode autograd and every attention mechanism of the attend C++ library,
from Python. The classes and functions are the C++ library's own (attend._attend, pybind11);
errors raised by the library are attend.Error, a ValueError.

    import attend
    x = attend.randn(2, 3, requires_grad=True)
    (x * x).sum().backward()
    x.grad.numpy()
"""
import sys as _sys

from . import _attend
from ._attend import *  # noqa: F401,F403
from ._attend import Error, Tensor, attention, models, nn, optim  # noqa: F401

__version__ = "0.1.0"

#: dtype names, as attend.Tensor.dtype reports them
float32, float64, int64, bool_ = "float32", "float64", "int64", "bool"

# `import attend.nn` and `from attend.nn import Linear` work as for any package.
for _name in ("nn", "optim", "attention", "models"):
    _sys.modules[__name__ + "." + _name] = getattr(_attend, _name)

from ._attend.nn import load_safetensors, save_safetensors  # noqa: E402,F401
from . import _methods  # noqa: E402,F401  (Tensor methods: x.sum(), x.softmax(dim), ...)
