"""How far a learner got in one notebook: "N of M exercises solved", and what to revisit.

`summary(number, record)` reads a record of check results (exercise name -> {"passed",
"parts"}, as `dit_mini.course.exercises` keeps it) for the exercises that notebooks/exercises
lists for notebook `number`. The learner calls `dit_mini.course.exercises.progress("07")`, in
the last code cell of every notebook, which prints it.
"""

from __future__ import annotations

from .hints import notebook_exercises

__all__ = ["Progress", "summary"]


class Progress(str):
    """The summary's text (a notebook shows it once: `progress` prints it), with the counts as
    attributes: solved, total, revisit and untried (exercise names)."""

    solved: int
    total: int
    revisit: tuple[str, ...]
    untried: tuple[str, ...]

    def _ipython_display_(self) -> None:  # printed already
        pass


def _last_reason(entry: dict) -> str:
    failed = [p for p in entry["parts"] if not p["passed"]]
    reason = str(failed[-1]["reason"]) if failed else "failed"
    return reason if len(reason) <= 80 else reason[:77] + "..."


def summary(number, record: dict[str, dict]) -> Progress:
    """The progress of notebook `number` ("07" or 7) according to `record`."""
    number = f"{int(number):02d}" if str(number).isdigit() else str(number)
    exercises = notebook_exercises(number)
    if not exercises:
        raise ValueError(f"notebook {number!r} has no registered exercises")
    revisit = [e for e in exercises if e.name in record and not record[e.name]["passed"]]
    untried = [e for e in exercises if e.name not in record]
    solved = len(exercises) - len(revisit) - len(untried)
    text = f"Notebook {number}: {solved} of {len(exercises)} exercises solved."
    if revisit:
        again = "; ".join(
            f'{e.title} (check "{e.name}": {_last_reason(record[e.name])})' for e in revisit
        )
        text += f" Revisit: {again}."
    if untried:
        text += " Not tried yet: " + ", ".join(f'{e.title} ("{e.name}")' for e in untried) + "."
    if solved == len(exercises):
        text += " Every bonfire of this notebook is lit."
    out = Progress(text)
    out.solved, out.total = solved, len(exercises)
    out.revisit = tuple(e.name for e in revisit)
    out.untried = tuple(e.name for e in untried)
    return out
