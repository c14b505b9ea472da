"""Grading an instructor can trust: `dit-mini course grade CLASS --out REPORT`.

The pipeline, one module per step:

- `discover`: which student handed in which course notebook (tolerant file names);
- `sandbox`: bubblewrap around one submission (private copy, no network, limits, nothing left);
- `launcher`: inside the sandbox, the limits, the cells, then the probe cells;
- `probes` / `harness` / `kernel` / `codec`: which learner answers are called on which fresh
  inputs, how, and how the outputs leave the sandbox as data; `calls`: one grading run's
  inputs (drawn once per run and notebook) and references (computed once per run);
- `compare`: verdicts in the grader's process against the package's references, and answers
  that are the package's own;
- `runner`: one submission from file to scores; `report`: CSV and JSON, written after each.

`grade_paths` grades a class (`jobs` submissions at once, resuming a previous run into the same
`out`); `write_reports` writes the report. Without bubblewrap it refuses to run unless
`unsafe_no_sandbox=True`, and the report's header then says the run was unsandboxed.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..hints import notebook_exercises
from .calls import RunCalls
from .discover import Submission, find_submissions
from .report import ExerciseGrade, NotebookGrade, read_previous, write_reports
from .runner import GradingOptions, grade_submission, submission_key
from .sandbox import Limits, bwrap_path

__all__ = [
    "DEFAULT_SOLUTIONS",
    "ExerciseGrade",
    "GradingOptions",
    "Limits",
    "NotebookGrade",
    "NoSandboxError",
    "Submission",
    "course_notebooks",
    "grade_paths",
    "write_reports",
]

DEFAULT_SOLUTIONS = Path(__file__).resolve().parents[3] / "notebooks" / "solutions"


class NoSandboxError(RuntimeError):
    """bubblewrap is not available and the instructor did not pass --unsafe-no-sandbox."""


def course_notebooks(solutions: Path) -> dict[str, list[tuple[str, int]]]:
    """Notebook file name -> its exercises [(name, points)], for the notebooks in `solutions`."""
    files = [solutions] if solutions.is_file() else sorted(solutions.glob("*.ipynb"))
    if not files:
        raise FileNotFoundError(f"no solution notebooks in {solutions}; pass --solutions FOLDER")
    return {f.name: [(e.name, e.points) for e in notebook_exercises(f.name[:2])] for f in files}


def _salt(solutions: Path) -> str:
    """What a previous grade depends on besides the file: the solutions and the grader's code."""
    digest = hashlib.sha256()
    files = [solutions] if solutions.is_file() else sorted(solutions.glob("*.ipynb"))
    for path in [*files, *sorted(Path(__file__).parent.glob("*.py"))]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _grader_error(sub: Submission, exercises, error: Exception) -> NotebookGrade:
    """The row of a submission the grader itself failed on (no key: a re-run grades it again)."""
    detail = f"the grader failed: {type(error).__name__}: {error}"[:200]
    grade = NotebookGrade(sub.student, sub.notebook, note=sub.note, file=str(sub.path or ""))
    grade.exercises = [ExerciseGrade(n, 0, p, "not graded", detail) for n, p in exercises]
    return grade


def grade_paths(
    paths: list[str | Path],
    solutions: str | Path | None = None,
    timeout: int = 300,
    fast: bool = True,
    progress=None,
    out: str | Path | None = None,
    jobs: int = 1,
    limits: Limits | None = None,
    unsafe_no_sandbox: bool = False,
    allow_package_answers: bool = False,
) -> list[NotebookGrade]:
    """Grade every submission under `paths` (see `discover`); reports into `out` after each."""
    solutions = Path(solutions) if solutions is not None else DEFAULT_SOLUTIONS
    notebooks = course_notebooks(solutions)
    submissions = find_submissions(paths, sorted(notebooks))
    bwrap = bwrap_path()
    if bwrap is None and not unsafe_no_sandbox:
        raise NoSandboxError(
            "no sandbox: bubblewrap (bwrap) is missing or cannot run here. Install it "
            "(`apt-get install bubblewrap`), grade in a Linux container, or pass "
            "--unsafe-no-sandbox to run the students' code as yourself"
        )
    limits = limits or Limits(timeout=timeout)
    salt = _salt(solutions) + str(limits) + str(allow_package_answers)
    header = {
        "sandboxed": bwrap is not None,
        "limits": limits.__dict__,
        "jobs": jobs,
        "warning": "" if bwrap else "UNSANDBOXED: the students' code ran as the grader's user",
    }
    previous = read_previous(Path(out)) if out is not None else {}
    options = GradingOptions(limits, bwrap, fast=fast, allow_package_answers=allow_package_answers)
    run_calls = RunCalls()  # the run's fresh inputs and references, shared by its submissions
    grades: list[NotebookGrade] = []
    lock, slots = threading.Lock(), list(range(max(1, jobs)))

    def one(sub: Submission) -> NotebookGrade:
        key = submission_key(sub.path, f"{salt}/{sub.student}/{sub.notebook}")
        if key in previous and previous[key].student == sub.student:
            grade = previous[key]
        else:
            with lock:
                slot = slots.pop()
            try:
                executed = (
                    None if out is None else Path(out) / "notebooks" / sub.student / sub.notebook
                )
                exercises = notebooks[sub.notebook]
                try:
                    calls = run_calls.of(sub.notebook, exercises)
                    grade = grade_submission(sub, exercises, options, calls, slot, executed, key)
                except Exception as error:  # noqa: BLE001 - one submission never stops the class
                    grade = _grader_error(sub, exercises, error)
            finally:
                with lock:
                    slots.append(slot)
        with lock:
            grades.append(grade)
            if out is not None:
                lap = time.monotonic()
                write_reports(grades, out, header)
                grade.phases["report"] = round(time.monotonic() - lap, 2)
            if progress is not None:
                progress(grade.summary())
        return grade

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, submissions))
    return sorted(grades, key=lambda g: (g.student, g.notebook))
