"""`dit-mini course grade`: points come from re-running the solution's checks, not from print.

A class folder is built from one tiny solution notebook (two exercises, 2 + 1 points) with one
student per way of submitting: solved, unsolved, half solved, check cells deleted, `check`
redefined, fake "Bonfire lit" prints, an infinite loop (the per-cell timeout), a text file and a
notebook with no checks. One real course notebook is graded too (solution: full points; learner
copy: zero).
"""

import csv
import json
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from dit_mini.cli.main import main  # noqa: E402
from dit_mini.course.notebooks import make_student_notebook, nbgrader_metadata  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMPORT = "from dit_mini.course.exercises import check"
DOUBLE = 'def double(x):\n    """Twice x."""\n    ### BEGIN SOLUTION\n    return 2 * x\n'
DOUBLE += "    ### END SOLUTION"
ANSWER = "### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION"
CHECK_DOUBLE = (
    'check("t.double", double, 6, inputs=(3,))\ncheck("t.double", double, -2, inputs=(-1,))'
)
CHECK_ANSWER = 'check("t.answer", answer, 42)'
POINTS = {"t.double": 2, "t.answer": 1}


def tiny_solution(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_markdown_cell("# T · tiny\n\nTwo exercises.")]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in (IMPORT, DOUBLE, CHECK_DOUBLE)]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in (ANSWER, CHECK_ANSWER)]
    assert nbgrader_metadata(nb, points=POINTS) == [("t.double", 2), ("t.answer", 1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def submit(folder: Path, name: str, edit) -> None:
    """Student `name` submits the student copy (or the solution) changed by `edit(cells)`."""
    source = folder.parent / "student.ipynb" if edit is not None else folder.parent / "sol.ipynb"
    nb = nbformat.read(source, as_version=4)
    if edit is not None:
        edit(nb.cells)
    (folder / name).mkdir(parents=True)
    nbformat.write(nb, folder / name / "tiny.ipynb")


def half(cells):
    cells[2].source = DOUBLE


def delete_checks(cells):
    cells[:] = [c for c in cells if "check(" not in c.source or "import" in c.source]


def redefine(cells):
    cells.insert(2, nbformat.v4.new_code_cell("def check(*args, **kw):\n    return True"))


def fake_prints(cells):
    fake = 'print("Bonfire lit: t.double.")\nprint("Bonfire lit: t.answer.")'
    cells.append(nbformat.v4.new_code_cell(fake))


def loop(cells):  # a cell that never ends, and a function that never returns
    cells[2].source = "def double(x):\n    while True:\n        pass"
    del cells[3]  # (its own check would loop too: one timeout less to wait for)
    cells[3].source = "answer = 42"
    cells.insert(3, nbformat.v4.new_code_cell("while True:\n    pass"))


def no_checks(cells):
    cells[:] = [nbformat.v4.new_code_cell("print('Bonfire lit: everything.')")]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grading")
    solutions = base / "solutions"
    tiny_solution(solutions / "tiny.ipynb")
    shutil.copy(solutions / "tiny.ipynb", base / "sol.ipynb")
    make_student_notebook(solutions / "tiny.ipynb", base / "student.ipynb")
    klass = base / "class"
    for name, edit in [("solved", None), ("unsolved", lambda cells: None), ("half", half),
                       ("deleted", delete_checks), ("redefined", redefine),
                       ("fake", fake_prints), ("loop", loop), ("nochecks", no_checks)]:  # fmt: skip
        submit(klass, name, edit)
    (klass / "text").mkdir()
    (klass / "text" / "tiny.txt").write_text("my answers: 6 and 42")
    (klass / "broken").mkdir()
    (klass / "broken" / "tiny.ipynb").write_text("this is not JSON")
    out = base / "report"
    argv = ["course", "grade", str(klass), "--solutions", str(solutions), "--out", str(out)]
    code = main([*argv, "--timeout", "15"])
    with open(out / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    return code, rows, json.loads((out / "grades.json").read_text()), base


def points(rows, student):
    mine = [r for r in rows if r["student"] == student]
    assert {r["exercise"] for r in mine} == set(POINTS)  # every exercise listed, solved or not
    assert sum(int(r["max_points"]) for r in mine) == 3
    return {r["exercise"]: (int(r["points"]), r["status"]) for r in mine}


@pytest.mark.slow
def test_points_per_student(graded):
    code, rows, records, _ = graded
    assert code == 0  # grading ran; low scores are not an error
    assert points(rows, "solved") == {"t.double": (2, "passed"), "t.answer": (1, "passed")}
    assert points(rows, "half") == {"t.double": (2, "passed"), "t.answer": (0, "failed")}
    for student in ("unsolved", "deleted", "redefined", "fake", "nochecks"):
        assert {p for p, _ in points(rows, student).values()} == {0}, student
    assert points(rows, "loop") == {"t.double": (0, "timed out"), "t.answer": (1, "passed")}
    assert {s for _, s in points(rows, "text").values()} == {"missing"}
    assert {s for _, s in points(rows, "broken").values()} == {"not a notebook"}
    loop = next(r for r in records if r["student"] == "loop")
    assert loop["timed_out_cells"] == [3] and loop["points"] == 1
    unsolved = [r for r in rows if r["student"] == "unsolved"]
    assert all("not solved yet" in r["detail"] for r in unsolved)


@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_2(graded, capsys):
    *_, base = graded
    solutions = str(base / "solutions")
    for argv, message in [
        ([str(base / "class" / "text" / "tiny.txt")], "is not a notebook"),
        ([str(base / "class" / "text")], "no notebooks in"),
        ([str(base / "nowhere")], "no file or folder"),
        ([str(base / "sol.ipynb")], "no solution notebook"),
    ]:
        assert main(["course", "grade", *argv, "--solutions", solutions]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.slow
def test_a_course_notebook_solution_full_student_zero(tmp_path):
    name = "01_fog.ipynb"
    solutions = ROOT / "notebooks" / "solutions"
    for who, source in [("teacher", solutions / name), ("learner", ROOT / "notebooks" / name)]:
        (tmp_path / "class" / who).mkdir(parents=True)
        shutil.copy(source, tmp_path / "class" / who / name)
    argv = ["course", "grade", str(tmp_path / "class"), "--out", str(tmp_path)]
    assert main(argv) == 0
    with open(tmp_path / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    total = {who: sum(int(r["points"]) for r in rows if r["student"] == who) for who in
             ("teacher", "learner")}  # fmt: skip
    maximum = sum(int(r["max_points"]) for r in rows if r["student"] == "teacher")
    assert maximum >= 3 and total == {"teacher": maximum, "learner": 0}


@pytest.mark.slow
def test_nbval_fails_a_failing_check_in_solutions_only(tmp_path):
    import subprocess
    import sys

    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    shutil.copy(ROOT / "notebooks" / "conftest.py", tmp_path / "conftest.py")
    wrong = tiny_solution(tmp_path / "solutions" / "tiny.ipynb")
    nb = nbformat.read(wrong, as_version=4)
    nb.cells[2].source = DOUBLE.replace("2 * x", "3 * x")  # a wrong solution
    nbformat.write(nb, wrong)
    shutil.copy(wrong, tmp_path / "tiny.ipynb")  # the same notebook outside solutions/
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-rA", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED")]
    assert failed and all("solutions/tiny.ipynb" in line for line in failed), run.stdout
    assert "AssertionError" in run.stdout and "PASSED tiny.ipynb" in run.stdout, run.stdout
