"""Builds attend._attend with the project's CMake for `pip install --no-build-isolation .`.

The metadata is in pyproject.toml. CMake configures a build of the library and the module alone
(no tests, tools or benchmarks) in the build_ext temporary directory, or reuses the build tree
named by ATTEND_BUILD_DIR (e.g. ATTEND_BUILD_DIR=build after scripts/test.sh), then the module
is copied where setuptools packs it.
"""
import glob
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = os.environ.get("ATTEND_BUILD_DIR") or os.path.join(
            os.path.abspath(self.build_temp), "cmake")
        build_dir = os.path.abspath(build_dir)
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            subprocess.check_call([
                "cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                "-DATTEND_BUILD_TESTS=OFF", "-DATTEND_BUILD_BENCH=OFF",
                "-DATTEND_BUILD_TOOLS=OFF", "-DATTEND_INSTALL=OFF", "-DATTEND_BUILD_PYTHON=ON",
                "-DPython3_EXECUTABLE=" + sys.executable])
        jobs = str(os.cpu_count() or 1)
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "attend_python",
                               "-j" + jobs])
        built = glob.glob(os.path.join(build_dir, "python", "attend", "_attend*.so"))
        if not built:
            raise RuntimeError("setup.py: CMake built no attend/_attend*.so in " + build_dir +
                               " (are pybind11-dev and python3-dev installed? scripts/setup.sh)")
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built[0], target)


setup(ext_modules=[Extension("attend._attend", sources=[])],
      cmdclass={"build_ext": CMakeBuild})
