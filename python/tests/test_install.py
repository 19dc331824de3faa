"""`pip install --no-build-isolation .` into a virtual environment that sees Debian's packages
(--system-site-packages), offline: the installed module imports from outside the repository
and computes. The build tree of the tests (ATTEND_BIN_DIR) is reused, so the install compiles
nothing new."""
import os
import subprocess
import sys

import pytest

SOURCE = os.environ.get("ATTEND_SOURCE_DIR")
BUILD = os.environ.get("ATTEND_BIN_DIR")


@pytest.mark.skipif(not SOURCE or not BUILD, reason="needs ATTEND_SOURCE_DIR and ATTEND_BIN_DIR")
def test_pip_install_offline_into_a_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    env = dict(os.environ, ATTEND_BUILD_DIR=BUILD, PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    res = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-build-isolation",
                          "--no-index", SOURCE], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    code = ("import attend, numpy as np; x = attend.tensor([1.0, 2.0], requires_grad=True); "
            "(x * x).sum().backward(); print(attend.__file__); print(x.grad.numpy().tolist())")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    path, grad = out.stdout.split("\n")[:2]
    assert path.startswith(str(venv)), path
    assert grad == "[2.0, 4.0]"
    assert os.path.exists(os.path.join(os.path.dirname(path), "py.typed"))
