"""The report: a row per student and exercise, totals, the class summary, CSV and JSON.

`grades.csv` has a row per student, notebook and exercise (points, max, status, detail, flags);
`grades.json` has a record per submission (its exercises, note, whether it ran sandboxed and the
key that lets a re-run skip it when nothing changed); `summary.csv` totals per student and
notebook and, per exercise, how many students solved it. Executed notebooks are saved under
`notebooks/<student>/`. The files are rewritten after every graded submission, so an
interrupted run leaves a report of what it finished, and the same command resumes.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["ExerciseGrade", "NotebookGrade", "write_reports", "read_previous"]


@dataclass
class ExerciseGrade:
    """One exercise of one submission."""

    name: str
    points: int
    max_points: int
    status: str
    detail: str = ""
    flags: str = ""


@dataclass
class NotebookGrade:
    """One notebook of one student."""

    student: str
    notebook: str
    exercises: list[ExerciseGrade] = field(default_factory=list)
    note: str = ""
    file: str = ""
    key: str = ""
    sandboxed: bool = True
    seconds: float = 0.0
    cells_seconds: float = 0.0
    timed_out_cells: list[int] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step (bench)

    @property
    def points(self) -> int:
        return sum(e.points for e in self.exercises)

    @property
    def max_points(self) -> int:
        return sum(e.max_points for e in self.exercises)

    def summary(self) -> str:
        head = f"{self.student or '-'}  {self.notebook}  {self.points}/{self.max_points} points"
        lines = [head + (f"  ({self.note})" if self.note else "")]
        for e in self.exercises:
            detail = f": {e.detail}" if e.detail and e.status != "passed" else ""
            flags = f" [{e.flags}]" if e.flags else ""
            lines.append(f"  {e.name:<28} {e.points}/{e.max_points}  {e.status}{detail}{flags}")
        return "\n".join(lines)

    @classmethod
    def from_record(cls, record: dict) -> NotebookGrade:
        fields = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        fields["exercises"] = [ExerciseGrade(**e) for e in record.get("exercises", [])]
        return cls(**fields)


def read_previous(out: Path) -> dict[str, NotebookGrade]:
    """key -> grade of the submissions a previous run of the same command finished."""
    path = Path(out) / "grades.json"
    if not path.is_file():
        return {}
    try:
        records = json.loads(path.read_text())["submissions"]
        return {r["key"]: NotebookGrade.from_record(r) for r in records if r.get("key")}
    except (ValueError, KeyError, TypeError):
        return {}  # an unreadable old report: grade everything again


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _cell(value):
    """A spreadsheet cannot run a student's text as a formula: "=..." becomes "'=..."."""
    return f"'{value}" if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") else value


def _csv(rows: list[list]) -> str:
    # deferred: imported where needed, not at the grader's start
    import io

    buffer = io.StringIO()
    csv.writer(buffer).writerows([[_cell(v) for v in row] for row in rows])
    return buffer.getvalue()


def write_reports(grades: list[NotebookGrade], out: str | Path, header: dict | None = None):
    """grades.csv, summary.csv and grades.json in folder `out`; returns their paths."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; pass a folder for the report")
    out.mkdir(parents=True, exist_ok=True)
    grades = sorted(grades, key=lambda g: (g.student, g.notebook))
    rows = [
        ["student", "notebook", "exercise", "points", "max_points", "status", "detail", "flags"]
    ]
    for g in grades:
        for e in g.exercises:
            rows.append(
                [g.student, g.notebook, e.name, e.points, e.max_points, e.status, e.detail, e.flags]
            )
    summary = [["student", "notebook", "points", "max_points", "note"]]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    solved: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for g in grades:
        summary.append([g.student, g.notebook, g.points, g.max_points, g.note])
        totals[g.student][0] += g.points
        totals[g.student][1] += g.max_points
        for e in g.exercises:
            solved[e.name][0] += e.status == "passed" and e.points == e.max_points
            solved[e.name][1] += 1
    summary += [[s, "(all)", p, m, ""] for s, (p, m) in sorted(totals.items())]
    for name, (n, of) in sorted(solved.items()):
        summary.append(["(class)", name, n, of, "students who solved it"])
    paths = out / "grades.csv", out / "summary.csv", out / "grades.json"
    _write(paths[0], _csv(rows))
    _write(paths[1], _csv(summary))
    records = [{**asdict(g), "points": g.points, "max_points": g.max_points} for g in grades]
    _write(paths[2], json.dumps({"header": header or {}, "submissions": records}, indent=1) + "\n")
    return paths
