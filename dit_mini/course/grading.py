"""Grade submitted notebooks by re-running the solution's checks in the learner's kernel.

For each submission (a notebook, or a class folder with one subfolder per student), the grader
reads the list of exercises (name, points, check cell) from the SOLUTION notebook of the same file
name (its nbgrader metadata, see `dit_mini.course.notebooks.nbgrader_metadata`), runs the
submission top to bottom in a fresh kernel (FAST mode, DIT_MINI_GRADING=1, errors do not stop
it, a per-cell timeout interrupts a cell and moves on), then appends cells that reload
`dit_mini.course.exercises`, re-run every solution check cell on the learner's names and print
the recorded results tagged with a per-run secret. Points count only those results: deleted or
edited check cells, a redefined `check`, printed "Bonfire lit" lines or a notebook without checks
earn nothing for an exercise that is not solved. The threat model is in the docstring of
`dit_mini.course.exercises`.

Statuses per exercise: "passed", "failed" (with the first reason), "timed out", "missing" (no
such notebook in the student's folder), "not a notebook" (a file that does not parse as one) and
"not graded" (the kernel died or never reported).

Used by `dit-mini course grade PATH... [--solutions DIR] [--out DIR] [--timeout S]`.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .exercises import GRADING_ENV, REPORT_TAG

__all__ = [
    "DEFAULT_SOLUTIONS",
    "ExerciseGrade",
    "NotebookGrade",
    "solution_exercises",
    "find_submissions",
    "grade_submission",
    "grade_paths",
    "write_reports",
]

DEFAULT_SOLUTIONS = Path(__file__).resolve().parents[2] / "notebooks" / "solutions"


@dataclass
class ExerciseGrade:
    """One exercise of one submission."""

    name: str
    points: int
    max_points: int
    status: str
    detail: str = ""


@dataclass
class NotebookGrade:
    """One notebook of one student: its exercises, and cells that timed out or raised."""

    student: str
    notebook: str
    exercises: list[ExerciseGrade] = field(default_factory=list)
    timed_out_cells: list[int] = field(default_factory=list)
    error_cells: int = 0
    note: str = ""

    @property
    def points(self) -> int:
        return sum(e.points for e in self.exercises)

    @property
    def max_points(self) -> int:
        return sum(e.max_points for e in self.exercises)

    def summary(self) -> str:
        head = f"{self.student or '-'}  {self.notebook}  {self.points}/{self.max_points} points"
        extra = [self.note] if self.note else []
        if self.timed_out_cells:
            extra.append(f"cells {self.timed_out_cells} timed out")
        lines = [head + (f"  ({'; '.join(extra)})" if extra else "")]
        for e in self.exercises:
            detail = f": {e.detail}" if e.detail and e.status != "passed" else ""
            lines.append(f"  {e.name:<28} {e.points}/{e.max_points}  {e.status}{detail}")
        return "\n".join(lines)


def solution_exercises(solution: str | Path) -> list[tuple[str, int, str]]:
    """(name, points, check cell source) of every graded cell of a solution notebook."""
    import nbformat  # deferred: the optional `test` extra

    nb = nbformat.read(solution, as_version=4)
    found = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            name = cell.metadata.get("dit_mini", {}).get("exercise", meta["grade_id"])
            found.append((name, int(meta.get("points", 0)), cell.source))
    if not found:
        raise ValueError(
            f"{solution} has no graded check cells (nbgrader metadata); run "
            f"`dit-mini course tag {solution}`"
        )
    return found


def _notebooks_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb") if p.is_file())


def find_submissions(paths: list[str | Path]) -> dict[str, dict[str, Path | None]]:
    """student -> {notebook file name -> path, or None when that student has no such notebook}.

    A PATH is a notebook (student: its folder's name), a folder of notebooks (one student), or a
    class folder with one subfolder per student. Raises ValueError or FileNotFoundError, one
    line each, for a path that is not a notebook or holds none.
    """
    found: dict[str, dict[str, Path | None]] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            if path.suffix != ".ipynb":
                raise ValueError(
                    f"{path} is not a notebook (.ipynb); pass notebooks or a class folder"
                )
            found.setdefault(path.resolve().parent.name, {})[path.name] = path
        elif path.is_dir():
            own = _notebooks_in(path)
            if own:
                found.setdefault(path.resolve().name, {}).update({p.name: p for p in own})
            students = sorted(p for p in path.iterdir() if p.is_dir() and p.name[0] not in "._")
            for folder in students:
                found.setdefault(folder.name, {}).update({p.name: p for p in _notebooks_in(folder)})
            if not own and not any(_notebooks_in(f) for f in students):
                raise ValueError(
                    f"no notebooks in {path}: expected {path}/NN_name.ipynb or "
                    f"{path}/<student>/NN_name.ipynb"
                )
        else:
            raise FileNotFoundError(f"no file or folder at {path}")
    names = sorted({n for books in found.values() for n in books})
    return {s: {n: books.get(n) for n in names} for s, books in sorted(found.items())}


def _solution_for(name: str, solutions: Path) -> Path:
    path = solutions if solutions.is_file() else solutions / name
    if not path.is_file():
        raise FileNotFoundError(
            f"no solution notebook {path} for the submissions named {name}; pass "
            "--solutions FOLDER (the folder of solution notebooks)"
        )
    return path


def _grader_cells(exercises: list[tuple[str, int, str]], secret: str) -> list[str]:
    setup = (
        "import importlib as _dm_importlib\n"
        "import dit_mini.course.exercises as _dm_ex\n"
        "_dm_ex = _dm_importlib.reload(_dm_ex)\n"
        "_dm_ex.reset_results()"
    )
    runs = [f"_dm_ex.run_check_cell({n!r}, {s!r}, globals())" for n, _, s in exercises]
    return [setup, *runs, f"_dm_ex.report({secret!r})"]


def _read_report(cell, secret: str) -> dict | None:
    prefix = f"{REPORT_TAG} {secret} "
    for output in cell.get("outputs", []):
        for line in output.get("text", "").splitlines():
            if line.startswith(prefix):
                return json.loads(line[len(prefix) :])
    return None


def grade_submission(
    path: str | Path | None,
    solution: str | Path,
    student: str = "",
    timeout: int = 600,
    fast: bool = True,
) -> NotebookGrade:
    """Run one submission with the solution's checks appended and score its exercises."""
    import nbformat  # deferred: the optional `test` extra
    from nbclient import NotebookClient  # deferred: the `test` extra
    from nbclient.exceptions import DeadKernelError  # deferred: the `test` extra

    solution = Path(solution)
    exercises = solution_exercises(solution)
    grade = NotebookGrade(student, solution.name)

    def everything(status: str, detail: str = "") -> NotebookGrade:
        grade.exercises = [ExerciseGrade(n, 0, p, status, detail) for n, p, _ in exercises]
        return grade

    if path is None:
        return everything("missing", f"no {solution.name} in the student's folder")
    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001 - any unreadable file is "not a notebook"
        return everything("not a notebook", f"{path.name}: {type(error).__name__}")
    secret = secrets.token_hex(16)
    first_grader_cell = len(nb.cells)
    nb.cells += [nbformat.v4.new_code_cell(s) for s in _grader_cells(exercises, secret)]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    saved = {k: os.environ.get(k) for k in ("DIT_MINI_FAST", GRADING_ENV)}
    os.environ.update(DIT_MINI_FAST="1" if fast else "0", **{GRADING_ENV: "1"})  # the kernel's
    client = NotebookClient(
        nb,
        timeout=timeout,
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={"ename": "CellTimeout", "evalue": f"over {timeout} s", "traceback": []},
        kernel_name="python3",
        resources={"metadata": {"path": str(path.resolve().parent)}},
    )
    try:
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                start = time.monotonic()
                client.execute_cell(cell, index)
                if time.monotonic() - start >= timeout and index < first_grader_cell:
                    grade.timed_out_cells.append(index)
    except DeadKernelError:
        grade.note = "the kernel died"
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.update({key: value})
    grade.error_cells = sum(
        any(o.output_type == "error" for o in c.get("outputs", []))
        for c in nb.cells[:first_grader_cell]
        if c.cell_type == "code"
    )
    report = _read_report(nb.cells[-1], secret)
    if report is None:
        return everything("not graded", grade.note or "the grader's cells did not report")
    for name, points, _ in exercises:
        result = report.get(name)
        if result is None:
            grade.exercises.append(ExerciseGrade(name, 0, points, "failed", "no check ran"))
            continue
        failing = [p for p in result["parts"] if not p["passed"]]
        if not failing:
            grade.exercises.append(ExerciseGrade(name, points, points, "passed"))
            continue
        timed_out = any(p["reason"] == "timed out" for p in failing)
        where = f"{failing[0]['part']}: " if failing[0]["part"] else ""
        detail = (where + str(failing[0]["reason"]))[:200]
        status = "timed out" if timed_out else "failed"
        grade.exercises.append(ExerciseGrade(name, 0, points, status, detail))
    return grade


def grade_paths(
    paths: list[str | Path],
    solutions: str | Path | None = None,
    timeout: int = 600,
    fast: bool = True,
    progress=None,
) -> list[NotebookGrade]:
    """Grade every submission under `paths` (see `find_submissions`) against `solutions`.

    Checks the input before running anything: a bad path or a notebook name without a solution
    notebook raises a one-line ValueError or FileNotFoundError. `progress` (e.g. print) gets a
    line per graded notebook.
    """
    solutions = Path(solutions) if solutions is not None else DEFAULT_SOLUTIONS
    submissions = find_submissions(paths)
    names = sorted({n for books in submissions.values() for n in books})
    solution_of = {n: _solution_for(n, solutions) for n in names}
    grades = []
    for student, books in submissions.items():
        for name, path in books.items():
            grade = grade_submission(path, solution_of[name], student, timeout, fast)
            grades.append(grade)
            if progress is not None:
                progress(grade.summary())
    return grades


def write_reports(grades: list[NotebookGrade], out: str | Path) -> tuple[Path, Path]:
    """grades.csv (a row per exercise) and grades.json (a record per notebook) in folder `out`."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; pass a folder for grades.csv/.json")
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "grades.csv", out / "grades.json"
    columns = ["student", "notebook", "exercise", "points", "max_points", "status", "detail"]
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for g in grades:
            for e in g.exercises:
                writer.writerow([g.student, g.notebook, e.name, e.points, e.max_points, e.status,
                                 e.detail])  # fmt: skip
    records = [
        {**asdict(g), "points": g.points, "max_points": g.max_points} for g in grades
    ]  # fmt: skip
    json_path.write_text(json.dumps(records, indent=2) + "\n")
    return csv_path, json_path
