"""pytest setup shared by the package tests and the notebook runs (nbval).

Notebook kernels inherit this process's environment, so setting FAST mode here makes
`python -m pytest` run every notebook in FAST mode unless DIT_MINI_FAST=0 is set explicitly.
"""

import os

os.environ.setdefault("DIT_MINI_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# One fixed torch thread count, so that runs repeat bit for bit (the tests compare bits) and no
# test measures thread counts; tests/test_threads.py turns it off where the tuning is the subject.
os.environ.setdefault("DIT_MINI_THREADS", str(os.cpu_count() or 1))
