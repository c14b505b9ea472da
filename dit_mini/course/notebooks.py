"""Course tools: student notebooks from solution notebooks, and grading by running the checks.

The repository holds solution notebooks. In an exercise cell the solution sits between
`### BEGIN SOLUTION` and `### END SOLUTION` lines (nbgrader's markers), and a later cell calls
`dit_mini.course.exercises.check`. `make_student_notebook` replaces each solution by a stub chosen
so that the student notebook still runs top to bottom, every check printing "not solved yet":

- markers indented inside a function body: the body becomes
  `raise NotImplementedError(...)`; `check` catches it when it calls the function.
- markers at the top level: each function defined there keeps its signature and docstring and
  gets the raising body; each assigned name becomes `name = None  # YOUR CODE HERE`, which
  `check` reads as unsolved; other statements are dropped.
- in a Markdown cell: the text becomes "YOUR ANSWER HERE".
So authors write top-level exercises as functions or assignments, and cells after a check should
not depend on the learner's answer (use the package's reference instead). Outputs are stripped;
every other cell, check cells included, is kept as it is.

`grade_notebook` executes a notebook (nbclient, FAST mode) and counts the checks that passed.

Used by `dit-mini course student SRC DST` and `dit-mini course grade NOTEBOOK`.
"""

from __future__ import annotations

import ast
import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from .exercises import FAIL_PREFIX, PASS_PREFIX

__all__ = [
    "BEGIN",
    "END",
    "stub_solutions",
    "make_student_notebook",
    "make_student_notebooks",
    "Grade",
    "grade_notebook",
]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
TODO = "# YOUR CODE HERE"
RAISE = 'raise NotImplementedError("exercise: write your code here")'


def _top_level_stub(code: str) -> list[str]:
    """Stub lines for a solution written at the top level of a cell (see the module docstring)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:  # IPython magics or a fragment: leave a comment only
        return [TODO]
    lines, source = [TODO], code.splitlines()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0]
            has_doc = isinstance(first, ast.Expr) and isinstance(
                getattr(first, "value", None), ast.Constant
            )
            keep_to = first.end_lineno if has_doc and len(node.body) > 1 else first.lineno - 1
            start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            lines += source[start - 1 : keep_to]
            indent = re.match(r"\s*", source[first.lineno - 1]).group()
            lines.append(indent + RAISE)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and f"{name.id} = None" not in lines:
                        lines.append(f"{name.id} = None")
    return lines


def stub_solutions(source: str, markdown: bool = False, where: str = "cell") -> str:
    """Replace every BEGIN/END SOLUTION region of one cell's source by its stub."""
    out, region, indent = [], None, ""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if region is not None:
                raise ValueError(
                    f"{where}: {BEGIN!r} inside another solution; close it with {END!r}"
                )
            region, indent = [], line[: len(line) - len(line.lstrip())]
        elif stripped.startswith(END):
            if region is None:
                raise ValueError(f"{where}: {END!r} without a {BEGIN!r} before it")
            if markdown:
                stub = ["YOUR ANSWER HERE"]
            elif indent:
                stub = [TODO, RAISE]
            else:
                stub = _top_level_stub(textwrap.dedent("\n".join(region)))
            out += [indent + s if s else s for s in stub]
            region = None
        elif region is not None:
            region.append(line)
        else:
            out.append(line)
    if region is not None:
        raise ValueError(f"{where}: {BEGIN!r} is never closed by {END!r}")
    return "\n".join(out)


def make_student_notebook(src: str | Path, dst: str | Path) -> Path:
    """Write the student version of the solution notebook `src` to `dst`; returns `dst`."""
    import nbformat  # deferred: the optional `test`/`notebooks` extras

    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError(
            f"student notebook {dst} would overwrite its solution; choose another path"
        )
    nb = nbformat.read(src, as_version=4)
    for i, cell in enumerate(nb.cells):
        if BEGIN in cell.source or END in cell.source:
            markdown = cell.cell_type == "markdown"
            cell.source = stub_solutions(cell.source, markdown, where=f"{src} cell {i}")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nbformat.validate(nb)
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return dst


def make_student_notebooks(src: str | Path, dst: str | Path) -> list[Path]:
    """Student versions of one notebook or of every notebook under a folder (tree mirrored)."""
    src, dst = Path(src), Path(dst)
    if src.is_file():
        target = dst if dst.suffix == ".ipynb" else dst / src.name
        return [make_student_notebook(src, target)]
    if not src.is_dir():
        raise FileNotFoundError(f"no notebook or folder at {src}; pass a .ipynb file or a folder")
    notebooks = sorted(p for p in src.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not notebooks:
        raise ValueError(f"no .ipynb notebooks under {src}")
    return [make_student_notebook(p, dst / p.relative_to(src)) for p in notebooks]


@dataclass
class Grade:
    """Checks that passed and failed, and cells that raised, when a notebook was run."""

    passed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.passed + self.failed

    def summary(self) -> str:
        lines = [f"{self.passed}/{self.total} checks passed, {len(self.errors)} cell error(s)"]
        return "\n".join(lines + [f"  {m}" for m in self.messages + self.errors])


def grade_notebook(path: str | Path, timeout: int = 600, fast: bool = True) -> Grade:
    """Run a notebook top to bottom (errors do not stop it) and count its checks."""
    import nbformat  # deferred: the optional `test`/`notebooks` extras
    from nbclient import NotebookClient  # deferred: the optional `test` extra

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    nb = nbformat.read(path, as_version=4)
    saved = os.environ.get("DIT_MINI_FAST")
    os.environ["DIT_MINI_FAST"] = "1" if fast else "0"  # the kernel inherits the environment
    try:
        client = NotebookClient(
            nb,
            timeout=timeout,
            allow_errors=True,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    finally:
        os.environ.pop("DIT_MINI_FAST") if saved is None else os.environ.update(DIT_MINI_FAST=saved)
    grade = Grade()
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                grade.errors.append(f"cell {i}: {output.ename}: {output.evalue}")
            for line in output.get("text", "").splitlines():
                if line.startswith(PASS_PREFIX):
                    grade.passed += 1
                elif line.startswith(FAIL_PREFIX):
                    grade.failed += 1
                    grade.messages.append(line)
    return grade
