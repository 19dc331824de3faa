"""The type stubs (python/attend/*.pyi) are what python/tools/make_stubs.py writes for this build,
they parse, and every public function and class of the module has a docstring."""
import ast
import pathlib
import re
import subprocess
import sys
import types

import attend
from attend import _attend

ROOT = pathlib.Path(__file__).resolve().parents[2]
SIGNATURE = re.compile(r"^\s*(\d+\.\s*)?\w+\(.*\)(\s*->.*)?$")


def test_committed_stubs_match_the_module(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "python" / "tools" / "make_stubs.py"),
                    str(tmp_path)], check=True, capture_output=True)
    made = sorted(p.name for p in tmp_path.glob("*.pyi"))
    assert made == ["__init__.pyi", "attention.pyi", "models.pyi", "nn.pyi", "optim.pyi"]
    for name in made:
        committed = ROOT / "python" / "attend" / name
        assert committed.exists(), f"{name} is missing: run python/tools/make_stubs.py"
        assert committed.read_text() == (tmp_path / name).read_text(), (
            f"python/attend/{name} is out of date: run python/tools/make_stubs.py")
        ast.parse(committed.read_text())


def public(mod):
    for name in dir(mod):
        if name.startswith("_"):
            continue
        obj = getattr(mod, name)
        if isinstance(obj, types.ModuleType):
            yield from public(obj) if obj.__name__.startswith("attend") else ()
            continue
        if callable(obj):
            yield f"{mod.__name__}.{name}", obj
            if isinstance(obj, type):
                for m, v in vars(obj).items():
                    if not m.startswith("_") and callable(v):
                        yield f"{mod.__name__}.{name}.{m}", v


def test_every_function_and_class_has_a_docstring():
    missing = []
    for name, obj in public(_attend):
        doc = (getattr(obj, "__doc__", None) or "").strip()
        # pybind11 puts the signature first; a docstring is text beyond it.
        text = [l for l in doc.splitlines()
                if l.strip() and not SIGNATURE.match(l) and l.strip() != "Overloaded function."]
        if not text and not isinstance(obj, type):
            missing.append(name)
        elif isinstance(obj, type) and not doc:
            missing.append(name)
    assert not missing, "no docstring: " + ", ".join(sorted(missing)[:40])
    assert attend.Tensor.__doc__
