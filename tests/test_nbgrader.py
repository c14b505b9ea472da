"""nbgrader 0.9 can use the course notebooks: generate_assignment and autograde.

The metadata comes from `dit-mini course tag`; under nbgrader's autograde (NBGRADER_EXECUTION) a
failed check raises, so an unsolved submission scores zero and a solved one full points. Skipped
when nbgrader is not installed (it is in the `test` extra).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")
nbformat = pytest.importorskip("nbformat")

from test_grading import tiny_solution  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, "--force"],
        cwd=course, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    return run


@pytest.mark.slow
def test_generate_assignment_and_autograde(tmp_path):
    course = tmp_path / "course"
    (course / "source" / "ps1").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.root = '.'\nc.ExecutePreprocessor.timeout = 120\n"
    )
    tiny_solution(course / "source" / "ps1" / "tiny.ipynb")
    shutil.copy(ROOT / "notebooks" / "solutions" / "00_bonfire.ipynb", course / "source" / "ps1")
    nbgrader(course, "generate_assignment", "ps1")
    for name in ("tiny.ipynb", "00_bonfire.ipynb"):
        text = (course / "release" / "ps1" / name).read_text()
        assert "### BEGIN SOLUTION" not in text and "YOUR CODE HERE" in text
    assert "2 * x" not in (course / "release" / "ps1" / "tiny.ipynb").read_text()

    for student, source in [("alice", course / "source"), ("bob", course / "release")]:
        (course / "submitted" / student / "ps1").mkdir(parents=True)
        shutil.copy(source / "ps1" / "tiny.ipynb", course / "submitted" / student / "ps1")
    nbgrader(course, "autograde", "ps1")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {
            s: gradebook.find_submission_notebook("tiny", "ps1", s).score for s in ("alice", "bob")
        }
        assert gradebook.find_notebook("tiny", "ps1").max_score == 3
    assert scores == {"alice": 3, "bob": 0}
