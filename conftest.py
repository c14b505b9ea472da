"""pytest setup shared by the package tests and the notebook runs (nbval).

Notebook kernels inherit this process's environment, so setting FAST mode here makes
`python -m pytest` run every notebook in FAST mode unless DIT_MINI_FAST=0 is set explicitly.

With pytest-xdist (`-n auto`, the README's test command) the cores are shared out: each worker's
torch, and the notebook kernels and subprocesses it starts, get cores // workers threads. Tests
are handed out in work units (`work_unit`): the tests of one module stay on one worker (their
module fixtures are built once), the cells of one notebook too (they share a kernel), the site's
tests and the grading tests form one unit each (a session fixture; a check that no grading process
is left), and tests/test_browser.py's notebooks are handed out one by one. (xdist's own
`--dist loadgroup` does not group on pytest 9: it renames a node id that pytest 9 no longer reads.)

Each notebook runs once per session: a test marked `runs_notebook(path)` executes that notebook
with every check nbval makes of it (tests/test_browser.py runs the solutions in grading mode,
tests/test_site.py the learners' copies that the site is built from), so when such a test is
selected and not skipped, nbval's run of the same notebook is deselected. `pytest notebooks/...`
alone still runs nbval.
"""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("DIT_MINI_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

# Work units of pytest-xdist (a path relative to the repository): modules that share one unit,
# and modules whose tests are handed out one by one (each one runs a whole notebook).
UNITS = {
    "tests/test_site.py": "the course site",  # the learners' runs and the site built from them
    "tests/test_site_browser.py": "the course site",
}
# Every tests/test_grading*.py is one unit: the no-process-left checks see every sandbox of this
# checkout, and as root two graders at once would share the per-slot user ids.
GRADING = "tests/test_grading"
SPREAD = {"tests/test_browser.py"}


def work_unit(nodeid: str) -> str:
    """The work unit of a test: tests of one unit run on one worker, one after the other."""
    path = nodeid.split("::")[0]
    if path.startswith(GRADING):
        return "grading"
    return nodeid if path in SPREAD else UNITS.get(path, path)


def _workers(config) -> int:
    """How many pytest-xdist workers share the machine (1 without xdist)."""
    if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # in a worker
        return int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    tx = getattr(config.option, "tx", None)  # in the controller: one entry per worker
    return max(1, len(tx)) if tx and getattr(config.option, "dist", "no") != "no" else 1


def pytest_configure(config):
    """One fixed torch thread count, so that runs repeat bit for bit (the tests compare bits) and
    no test measures thread counts; tests/test_threads.py turns it off where the tuning is the
    subject. Under xdist the controller sets it before it starts the workers, which inherit it."""
    workers = _workers(config)
    share = max(1, (os.cpu_count() or 1) // workers)
    os.environ.setdefault("DIT_MINI_THREADS", str(share))
    if workers > 1:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, str(share))
        if "torch" in sys.modules:  # imported already (by a plugin): set it there too
            sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    config.pluginmanager.register(OneRunPerNotebook(), "dit-mini-one-run-per-notebook")


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """With -n (xdist's default --dist load): hand tests out by `work_unit`, the units with the
    most tests first. Another --dist given explicitly is obeyed."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByWorkUnit(config, log)


class OneRunPerNotebook:
    """Deselects nbval's run of a notebook that a selected `runs_notebook` test executes."""

    @staticmethod
    def _skipped(item) -> bool:
        return any(m.args and m.args[0] is True for m in item.iter_markers("skipif"))

    @pytest.hookimpl(trylast=True)  # after -k and -m have deselected what they deselect
    def pytest_collection_modifyitems(self, config, items):
        covered = {
            Path(m.args[0]).resolve()
            for item in items
            if not self._skipped(item)
            for m in item.iter_markers("runs_notebook")
        }
        twice = [i for i in items if i.path.suffix == ".ipynb" and i.path.resolve() in covered]
        if twice:
            config.hook.pytest_deselected(items=twice)
            left = {id(i) for i in twice}
            items[:] = [i for i in items if id(i) not in left]
