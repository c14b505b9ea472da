"""The course's exercises, read from data files beside the notebooks: notebooks/exercises/NN.toml.

Each notebook NN has one file listing its exercises in order (the schema is in
notebooks/exercises/README.md). An exercise has a stable name ("NN.slug"), a title, points, and
hints: a list of steps from a nudge to the full answer. A check cell names its exercise
(`check("03.eps_loss", ...)`); a learner sees the hints only when asking: the first failed attempt
prints the nudge, each `hint("03.eps_loss")` the next step. No step but the last, labelled as the
answer, may contain a line of the solution (tests/test_exercises.py checks it).

An exercise may also name the axes of its outputs (`axes = ["image", "channel", "row", "col"]`,
or one list per check part) so that a failed check says where the first wrong value is in the
learner's terms, and list its common mistakes (`[[exercise.mistake]]`: what the mistake is called
and how to compute it from the reference, with the transforms of `dit_mini.course.mistakes`), so
that a wrong answer matching one is named.

Points are the exercise's weight in `dit-mini course grade` and in the nbgrader metadata of its
check cell (kept equal by a test).

The files ship inside the wheel as the package data `dit_mini.course.exercise_data` (pyproject's
package-dir maps it to notebooks/exercises), so a `pip install` (Colab) reads the same data as a
checkout; $DIT_MINI_EXERCISES points at another folder.

Used by `dit_mini.course.exercises` (check, hint, progress) and `dit_mini.course.notebooks`
(metadata), and by the grader.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Exercise",
    "Mistake",
    "EXERCISES",
    "EXERCISES_ENV",
    "exercise",
    "exercises_dir",
    "load_exercises",
    "notebook_exercises",
]

EXERCISES_ENV = "DIT_MINI_EXERCISES"
_EXERCISE_KEYS = {"name", "title", "points", "hints", "axes", "mistake", "integer_note"}


@dataclass(frozen=True)
class Mistake:
    """A common wrong answer: `says` names it; `steps` are (transform, argument) pairs of
    `dit_mini.course.mistakes` that compute it from the reference; `part` limits it to the
    check parts whose name contains that text ("" for every part)."""

    says: str
    steps: tuple[tuple[str, object], ...]
    part: str = ""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a course notebook: what the checks call it and how they help.

    `hints` go from a nudge (`nudge`, the first) to the full answer (the last); `axes` names the
    axes of the checked outputs (a tuple, or a dict part text -> tuple); `mistakes` are the
    common wrong answers a failed check compares against; `integer_note` says why the answer
    must hold integers (shown when a float answer comes back)."""

    name: str
    title: str
    points: int
    hints: tuple[str, ...]
    axes: tuple[str, ...] | dict[str, tuple[str, ...]] = ()
    mistakes: tuple[Mistake, ...] = ()
    integer_note: str = ""
    source: str = field(default="", compare=False)

    @property
    def nudge(self) -> str:
        """The first step of the hints: the idea, not the steps."""
        return self.hints[0]

    @property
    def hint(self) -> str:
        """The second step of the hints (the nudge when there is only one)."""
        return self.hints[1] if len(self.hints) > 1 else self.hints[0]

    def axes_for(self, part: str = "") -> tuple[str, ...]:
        """The axis names for the check part `part` (the first dict key contained in it)."""
        if isinstance(self.axes, dict):
            for key, names in self.axes.items():
                if key and key in part:
                    return names
            return self.axes.get("", ())
        return self.axes

    def mistakes_for(self, part: str = "") -> tuple[Mistake, ...]:
        """The mistakes that apply to the check part `part`."""
        return tuple(m for m in self.mistakes if not m.part or m.part in part)


def exercises_dir() -> Path:
    """$DIT_MINI_EXERCISES, else the checkout's notebooks/exercises, else the wheel's copy."""
    if os.environ.get(EXERCISES_ENV):
        return Path(os.environ[EXERCISES_ENV])
    checkout = Path(__file__).resolve().parents[2] / "notebooks" / "exercises"
    if checkout.is_dir():
        return checkout
    return Path(__file__).resolve().parent / "exercise_data"  # the wheel's copy


def _problem(path: Path, what: str) -> ValueError:
    return ValueError(f"{path}: {what}; see the schema in {path.parent / 'README.md'}")


def _mistake(path: Path, name: str, raw: dict) -> Mistake:
    from .mistakes import TRANSFORMS  # deferred: mistakes imports torch only when applied

    if not isinstance(raw.get("says"), str) or not raw["says"]:
        raise _problem(path, f"a mistake of {name} has no `says` text")
    steps = tuple((k, v) for k, v in raw.items() if k not in ("says", "part"))
    unknown = [k for k, _ in steps if k not in TRANSFORMS]
    if unknown or not steps:
        raise _problem(
            path,
            f"mistake {raw['says']!r} of {name}: unknown transforms {unknown or 'none given'}; "
            f"known: {', '.join(sorted(TRANSFORMS))}",
        )
    return Mistake(raw["says"], steps, str(raw.get("part", "")))


def _exercise(path: Path, raw: dict) -> Exercise:
    name = raw.get("name", "?")
    missing = [k for k in ("name", "title", "points", "hints") if k not in raw]
    if missing:
        raise _problem(path, f"exercise {name} lacks {missing}")
    unknown = set(raw) - _EXERCISE_KEYS
    if unknown:
        raise _problem(path, f"exercise {name} has unknown keys {sorted(unknown)}")
    if not name.startswith(path.stem + "."):
        raise _problem(path, f"exercise {name} must be named {path.stem}.<slug> in this file")
    hints = raw["hints"]
    if not isinstance(hints, list) or not hints or not all(isinstance(h, str) for h in hints):
        raise _problem(path, f"exercise {name}: hints must be a non-empty list of strings")
    axes = raw.get("axes", ())
    axes = {k: tuple(v) for k, v in axes.items()} if isinstance(axes, dict) else tuple(axes)
    mistakes = tuple(_mistake(path, name, m) for m in raw.get("mistake", []))
    return Exercise(
        name,
        raw["title"],
        int(raw["points"]),
        tuple(hints),
        axes,
        mistakes,
        raw.get("integer_note", ""),
        str(path),
    )


def load_exercises(folder: str | Path | None = None) -> dict[str, Exercise]:
    """Every exercise of every NN.toml in `folder` (default `exercises_dir()`), by name."""
    folder = Path(folder) if folder is not None else exercises_dir()
    files = sorted(folder.glob("[0-9][0-9].toml"))
    if not files:
        raise FileNotFoundError(
            f"no exercise files (NN.toml) in {folder}; in a checkout, restore notebooks/exercises, "
            "else reinstall the package"
        )
    found: dict[str, Exercise] = {}
    for path in files:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise _problem(path, f"not valid TOML ({error})") from None
        for raw in data.get("exercise", []):
            known = _exercise(path, raw)
            if known.name in found:
                raise _problem(path, f"exercise {known.name} is defined twice")
            found[known.name] = known
    return found


EXERCISES: dict[str, Exercise] = load_exercises()


def exercise(name: str) -> Exercise:
    """The registered exercise `name`, or a ValueError listing the notebook's exercises."""
    if name in EXERCISES:
        return EXERCISES[name]
    same = [n for n in EXERCISES if n.split(".")[0] == name.split(".")[0]]
    known = ", ".join(same or list(EXERCISES)[:5] + ["..."])
    raise ValueError(f"no exercise named {name!r}; known: {known}")


def notebook_exercises(number: str) -> list[Exercise]:
    """The registered exercises of notebook `number` ("03"), in order."""
    return [e for n, e in EXERCISES.items() if n.split(".")[0] == number]
