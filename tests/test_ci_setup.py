"""The test session's own set-up (conftest.py at the root): pytest-xdist's work units, and each
notebook run once per session (nbval's run left out where a `runs_notebook` test runs it)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
root_conftest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(root_conftest)
BROWSER = "tests/test_browser.py::test_the_notebook_runs_in_the_browser_and_shows_what_it_should"


def test_work_units_keep_a_notebook_a_module_and_the_site_together():
    unit = root_conftest.work_unit
    assert unit("notebooks/01_fog.ipynb::Cell 0") == unit("notebooks/01_fog.ipynb::Cell 7")
    assert unit("notebooks/01_fog.ipynb::Cell 0") != unit("notebooks/solutions/01_fog.ipynb::C")
    assert unit("tests/test_dit.py::test_a") == unit("tests/test_dit.py::test_b[x]")
    assert unit("tests/test_dit.py::test_a") != unit("tests/test_vae.py::test_a")
    assert unit(f"{BROWSER}[00_bonfire.ipynb]") != unit(f"{BROWSER}[01_fog.ipynb]")
    assert unit("tests/test_site.py::test_x[01_fog.ipynb]") == unit("tests/test_site_browser.py::t")
    grading = {unit(f"tests/{p.name}::t") for p in (ROOT / "tests").glob("test_grading*.py")}
    assert len(grading) == 1 and unit("tests/test_grading.py::t") != unit("tests/test_dit.py::t")


class _Mark:
    def __init__(self, *args):
        self.args = args


class _Item:
    def __init__(self, path, runs=None, skipped=False):
        self.path = Path(path)
        self.marks = {"runs_notebook": [_Mark(runs)] if runs else []}
        self.marks["skipif"] = [_Mark(skipped, "why")]

    def iter_markers(self, name):
        return iter(self.marks.get(name, []))


class _Config:
    def __init__(self):
        self.deselected = []
        self.hook = self

    def pytest_deselected(self, items):
        self.deselected += items


@pytest.mark.parametrize("skipped", [False, True])
def test_nbval_leaves_a_notebook_to_the_test_that_runs_it(tmp_path, skipped):
    solution, other = tmp_path / "solutions" / "01_fog.ipynb", tmp_path / "solutions" / "02.ipynb"
    cells = [_Item(solution), _Item(solution), _Item(other)]
    browser = _Item(tmp_path / "tests" / "test_browser.py", runs=solution, skipped=skipped)
    items, config = [*cells, browser, _Item(tmp_path / "tests" / "test_dit.py")], _Config()
    root_conftest.OneRunPerNotebook().pytest_collection_modifyitems(config, items)
    if skipped:  # no browser here: nbval runs every cell
        assert config.deselected == [] and len(items) == 5
    else:
        assert config.deselected == cells[:2]
        assert [i.path.name for i in items] == ["02.ipynb", "test_browser.py", "test_dit.py"]
