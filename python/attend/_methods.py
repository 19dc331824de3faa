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


# ---- attend.nn.Module: torch's walks over the module tree ----

Module = _attend.nn.Module


def _named_modules(self, memo=None, prefix="", remove_duplicate=True):
    """(dotted name, module) of this module and every sub-module, depth-first, this one first
    with the name prefix ("" by default); a module reached twice comes once (torch's
    named_modules)."""
    if memo is None:
        # id -> module: holding the module keeps its Python object, so a C++ module reached
        # again through another parent comes back as the same object with the same id.
        memo = {}
    if remove_duplicate:
        if id(self) in memo:
            return
        memo[id(self)] = self
    yield prefix, self
    for name, child in self.named_children():
        yield from _named_modules(child, memo, prefix + ("." if prefix else "") + name,
                                  remove_duplicate)


def _modules(self):
    """This module and every sub-module, depth-first (torch's modules)."""
    for _, module in _named_modules(self):
        yield module


def _apply(self, fn):
    """Calls fn on every sub-module (children first) and then on this module; returns self, as
    torch's apply (e.g. model.apply(init_weights))."""
    for child in self.children():
        _apply(child, fn)
    fn(self)
    return self


_module_init = Module.__init__


def _module_init_checked(self, *args, **kwargs):
    # attend.nn.Module.__init__ builds the C++ half of a Python subclass; called on a C++ layer
    # (attend.nn.Module.__init__(linear)), pybind11 would abort the interpreter instead of raising.
    for cls in type(self).__mro__:
        if cls is Module:
            break
        if cls.__module__.startswith("attend._attend"):
            raise TypeError("attend.nn.Module.__init__() called on a %s, a C++ layer with its own "
                            "__init__" % cls.__name__)
    _module_init(self, *args, **kwargs)


_module_init_checked.__doc__ = _module_init.__doc__
_module_init_checked.__name__ = "__init__"
_module_init_checked.__qualname__ = "Module.__init__"


def _attach_module():
    if getattr(Module.__init__, "__func__", Module.__init__) is not _module_init_checked:
        Module.__init__ = _module_init_checked
    for name, fn in (("named_modules", _named_modules), ("modules", _modules), ("apply", _apply)):
        if name not in Module.__dict__:
            fn.__name__ = name
            fn.__qualname__ = "Module." + name
            setattr(Module, name, fn)


_attach_module()
