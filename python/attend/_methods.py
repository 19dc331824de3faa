"""Tensor methods the PyTorch way (x.sum(dim), x.softmax(dim), ...), each calling the module
function of the same name."""
from . import _attend

Tensor = _attend.Tensor

# Methods whose module function takes the tensor as its first argument: x.name(*a, **k) is
# attend.name(x, *a, **k).
_FIRST_ARGUMENT = (
    "add", "sub", "mul", "div", "pow", "neg", "abs", "exp", "log", "sqrt", "rsqrt", "tanh",
    "sigmoid", "relu", "clamp", "clip",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "logical_and", "logical_or",
    "masked_fill",
    "sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "var", "std",
    "matmul", "mm", "bmm", "softmax", "log_softmax",
    "index_select", "gather", "topk", "split", "chunk",
)


def _method(name):
    fn = getattr(_attend, name)

    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)

    method.__name__ = name
    method.__qualname__ = "Tensor." + name
    method.__doc__ = "attend.%s(self, ...): %s" % (name, (fn.__doc__ or "").strip())
    return method


def _where(self, condition, other):
    """x.where(condition, y): x where condition is true, else y (attend.where(condition, x, y))."""
    return _attend.where(condition, self, other)


def _attach():
    for name in _FIRST_ARGUMENT:
        # What the Tensor class binds itself (views, copies, operators) is kept as it is.
        if name not in Tensor.__dict__:
            setattr(Tensor, name, _method(name))
    if "where" not in Tensor.__dict__:
        Tensor.where = _where
    # PyTorch's spellings of the same methods.
    if "negative" not in Tensor.__dict__:
        Tensor.negative = Tensor.neg
    if "divide" not in Tensor.__dict__:
        Tensor.divide = Tensor.div
    if "multiply" not in Tensor.__dict__:
        Tensor.multiply = Tensor.mul
    if "subtract" not in Tensor.__dict__:
        Tensor.subtract = Tensor.sub


_attach()
