"""Benchmark of `dit-mini course grade`: a class of learner-solved copies of one notebook.

    python -m dit_mini.course.grading.bench --copies 30 --jobs 2 [--notebook 14_new_game_plus.ipynb]

Copies the solution notebook (a learner who solved everything) into N student folders, grades
them in FAST mode with `--jobs`, and prints the wall time in all, per submission, and the
grader's own overhead per submission: its seconds minus the seconds the launcher spent starting
the kernel and running the notebook's cells (sandbox start, probes, comparison, cleanup),
then the median and max of each step's seconds (`NotebookGrade.phases`: `sandbox.*` measured
by the launcher inside the sandbox, the rest by the grader). Printed figures, not a timed
test; record them with the machine's load in the measurement log.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from . import DEFAULT_SOLUTIONS, grade_paths

__all__ = ["main"]


def _phase_names(grades) -> list[str]:
    names: list[str] = []
    for grade in grades:
        names += [n for n in grade.phases if n not in names]
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--notebook", default="14_new_game_plus.ipynb")
    parser.add_argument("--solutions", type=Path, default=DEFAULT_SOLUTIONS)
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="dit-mini-grade-bench-"))
    try:
        for i in range(args.copies):
            (base / "class" / f"student{i:02d}").mkdir(parents=True)
            shutil.copy(args.solutions / args.notebook, base / "class" / f"student{i:02d}")
        load = os.getloadavg()[0]
        start = time.perf_counter()
        grades = grade_paths([base / "class"], args.solutions, out=base / "report", jobs=args.jobs)
        total = time.perf_counter() - start
    finally:
        shutil.rmtree(base, ignore_errors=True)
    full = sum(g.points == g.max_points for g in grades)
    seconds = [g.seconds for g in grades]
    overhead = [g.seconds - g.cells_seconds for g in grades]
    print(f"{args.copies} copies of {args.notebook}, --jobs {args.jobs}, load {load:.2f} at start")
    print(f"total {total:.0f} s ({total / 60:.1f} min); full points: {full}/{len(grades)}")
    print(f"per submission: median {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s")
    print(
        f"kernel start and cells: median {statistics.median(g.cells_seconds for g in grades):.1f} s"
    )
    print(f"grader overhead per submission: median {statistics.median(overhead):.1f} s, "
          f"max {max(overhead):.1f} s (sandbox, probes, comparison, cleanup)")  # fmt: skip
    print("per phase, median s (sandbox.*: inside the sandbox, the rest in the grader):")
    for name in _phase_names(grades):
        values = [g.phases.get(name, 0.0) for g in grades]
        print(f"  {name:<26} {statistics.median(values):7.2f}   max {max(values):7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
