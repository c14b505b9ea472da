"""Find the submissions: which student handed in which course notebook, matched tolerantly.

A PATH is a notebook (its student: the folder's name), a student's folder, or a class folder
with one subfolder per student; a student's notebooks may sit one folder deeper
(`class/ana/homework/01_fog.ipynb`). File names are matched to the course's notebook names
without regard to letter case, a "Copy of " prefix, a " (1)" or "-1" suffix, or spaces for
underscores; a loose match is kept with a note in the row ("matched 'Copy of 01_Fog.ipynb'"),
never refused. A notebook a student lacks is listed as missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Submission", "normalize", "find_submissions"]


@dataclass(frozen=True)
class Submission:
    """Student `student`'s file for course notebook `notebook` (None when missing)."""

    student: str
    notebook: str
    path: Path | None
    note: str = ""


def normalize(name: str) -> str:
    """A file name reduced for matching: '  Copy of 01_Fog (1).ipynb' -> '01_fog'."""
    stem = re.sub(r"\.ipynb$", "", name.strip(), flags=re.I).lower()
    stem = re.sub(r"^(copy of |copy_of_)+", "", stem)
    stem = re.sub(r"([ _-]*(\(\d+\)|-\d+|_copy|copy))+$", "", stem)
    return re.sub(r"[\s\-]+", "_", stem).strip("_")


def _candidates(folder: Path) -> list[Path]:
    """Notebook files in `folder` and one level below (hidden folders skipped)."""
    found = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".ipynb"]
    for sub in sorted(folder.iterdir()):
        if sub.is_dir() and not sub.name.startswith((".", "_")):
            found += [p for p in sub.iterdir() if p.is_file() and p.suffix.lower() == ".ipynb"]
    return sorted(found)


def _match(files: list[Path], notebooks: list[str], student: str) -> list[Submission]:
    by_stem = {normalize(n): n for n in notebooks}
    by_number = {normalize(n).split("_")[0]: n for n in notebooks}
    chosen: dict[str, list[Path]] = {}
    for path in files:
        stem = normalize(path.name)
        name = by_stem.get(stem) or (
            by_number.get(stem.split("_")[0]) if stem[:2].isdigit() else None
        )
        if name is not None:
            chosen.setdefault(name, []).append(path)
    result = []
    for name in notebooks:
        paths = chosen.get(name)
        if not paths:
            result.append(Submission(student, name, None))
            continue
        exact = [p for p in paths if p.name == name and len(p.parts) == len(paths[0].parts)]
        pick = exact[0] if exact else max(paths, key=lambda p: p.stat().st_mtime)
        notes = [] if pick.name == name else [f"matched {pick.name!r}"]
        if pick.parent.name != student and student:
            notes.append(f"found in folder {pick.parent.name!r}")
        if len(paths) > 1:
            notes.append(
                f"{len(paths)} candidates, graded the {'exact' if exact else 'newest'} one"
            )
        result.append(Submission(student, name, pick, "; ".join(notes)))
    return result


def find_submissions(paths: list[str | Path], notebooks: list[str]) -> list[Submission]:
    """Every (student, course notebook) pair under `paths`; raises one-line errors for a path
    that does not exist or holds no notebook at all."""
    groups: dict[str, list[Path]] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            if path.suffix.lower() != ".ipynb":
                raise ValueError(
                    f"{path} is not a notebook (.ipynb); pass notebooks or a class folder"
                )
            groups.setdefault(path.resolve().parent.name, []).append(path)
        elif path.is_dir():
            own = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".ipynb"]
            students = sorted(
                p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
            )
            if own:
                groups.setdefault(path.resolve().name, []).extend(_candidates(path))
            else:
                for folder in students:
                    groups.setdefault(folder.name, []).extend(_candidates(folder))
            if not any(groups.get(s.name) for s in students) and not own:
                raise ValueError(
                    f"no notebooks in {path}: expected {path}/NN_name.ipynb or "
                    f"{path}/<student>/NN_name.ipynb"
                )
        else:
            raise FileNotFoundError(f"no file or folder at {path}")
    matched = {s: _match(files, notebooks, s) for s, files in groups.items()}
    used = {n for subs in matched.values() for s in subs if s.path for n in [s.notebook]}
    if not used:
        raise ValueError(
            f"no submitted notebook matches a course notebook ({', '.join(notebooks[:4])}, ...)"
        )
    return [s for student in sorted(matched) for s in matched[student] if s.notebook in used]
