"""Every bound function and method is called by the suite: each public callable of the attend
package (the C++ bindings and the methods written in Python) is wrapped at the start of the
session to record its calls, and a run of the whole suite fails, naming them, if any was never
called."""
import functools
import os
import pathlib
import types

import attend

HERE = pathlib.Path(__file__).resolve().parent
CALLED = set()
TRACKED = {}


def _counting(key, fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        CALLED.add(key)
        return fn(*args, **kwargs)
    return call


def _is_function(obj):
    return isinstance(obj, (types.BuiltinFunctionType, types.FunctionType)) or \
        type(obj).__name__ == "instancemethod"


def _track():
    modules = [attend._attend, attend.nn, attend.optim, attend.attention, attend.models]
    modules += [getattr(m, n) for m in list(modules) for n in dir(m)
                if isinstance(getattr(m, n), types.ModuleType)
                and getattr(m, n).__name__.startswith("attend") and getattr(m, n) not in modules]
    classes = set()
    for mod in modules:
        for name, obj in list(vars(mod).items()):
            if name.startswith("_"):
                continue
            if isinstance(obj, type):
                classes.add(obj)
            elif _is_function(obj):
                key = f"{mod.__name__}.{name}"
                wrapped = _counting(key, obj)
                TRACKED[key] = obj
                setattr(mod, name, wrapped)
                if mod is attend._attend and getattr(attend, name, None) is obj:
                    setattr(attend, name, wrapped)
    for cls in classes:
        for name, obj in list(vars(cls).items()):
            if name.startswith("_"):
                continue
            key = f"{cls.__module__}.{cls.__qualname__}.{name}"
            if isinstance(obj, staticmethod):
                TRACKED[key] = obj
                setattr(cls, name, staticmethod(_counting(key, obj.__func__)))
            elif _is_function(obj):
                TRACKED[key] = obj
                setattr(cls, name, _counting(key, obj))


_track()


def pytest_sessionfinish(session, exitstatus):
    opt = session.config.option
    files = {pathlib.Path(str(item.fspath)).name for item in session.items}
    every_file = {p.name for p in HERE.glob("test_*.py")}
    if opt.keyword or opt.markexpr or files != every_file or os.environ.get("ATTEND_NO_CALL_CHECK"):
        return  # a partial run: nothing to say
    missing = sorted(set(TRACKED) - CALLED)
    if missing:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(f"never called by the suite ({len(missing)}): " + ", ".join(missing),
                            red=True)
        session.exitstatus = 1
