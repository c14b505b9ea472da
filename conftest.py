"""pytest setup shared by the package tests and the notebook runs (nbval).

Notebook kernels inherit this process's environment, so setting FAST mode here makes
`python -m pytest` run every notebook in FAST mode unless DIT_MINI_FAST=0 is set explicitly.
"""

import os

os.environ.setdefault("DIT_MINI_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
