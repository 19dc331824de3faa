"""Imported by the reference trainers before torch: torch (and the BLAS it loads) read their
thread settings when first imported, so --threads N must reach the environment first."""
import os
import sys

if "--threads" in sys.argv[:-1]:
    _n = sys.argv[sys.argv.index("--threads") + 1]
    os.environ.setdefault("OMP_NUM_THREADS", _n)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", _n)
