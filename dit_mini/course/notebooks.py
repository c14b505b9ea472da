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

The student copy of a notebook of notebooks/solutions/ also gets a "Stuck?" line under its title
that links to the solution notebook.

`nbgrader_metadata` tags the cells for nbgrader (schema 3): a solution cell is
`{"solution": true, "grade": false, "locked": false}` and the check cell after it
`{"grade": true, "solution": false, "locked": true, "points": N}` with the exercise's name (the
first argument of its `check` calls, dots made underscores: nbgrader's grade_id allows
[A-Za-z0-9_-]) as grade_id, its points from `dit_mini.course.hints`, and the name itself in
`{"dit_mini": {"exercise": name}}`; a
Markdown answer is a manually graded answer worth 0 points. `dit-mini course tag` writes them
into the solution notebooks; grading (`dit_mini.course.grading`) reads the exercises from them.

Used by `dit-mini course student SRC DST` and `dit-mini course tag SRC`.
"""

from __future__ import annotations

import ast
import os
import re
import textwrap
from pathlib import Path

from .hints import exercise

__all__ = [
    "BEGIN",
    "END",
    "stub_solutions",
    "make_student_notebook",
    "student_notebook",
    "make_student_notebooks",
    "REPOSITORY",
    "check_names",
    "nbgrader_metadata",
    "tag_notebooks",
]

REPOSITORY = "dit-mini/dit-mini"  # GitHub owner/name: pyproject's [project.urls] Repository

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
    nb = student_notebook(src, dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return dst


def student_notebook(src: str | Path, dst: str | Path):
    """The student version (a NotebookNode, in memory) of `src`, as it would be written to
    `dst` (the "Stuck?" link is relative to `dst`)."""
    import nbformat  # deferred: the optional `test`/`notebooks` extras

    src, dst = Path(src), Path(dst)
    nb = nbformat.read(src, as_version=4)
    for i, cell in enumerate(nb.cells):
        if BEGIN in cell.source or END in cell.source:
            markdown = cell.cell_type == "markdown"
            cell.source = stub_solutions(cell.source, markdown, where=f"{src} cell {i}")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    _add_stuck_line(nb, src, dst)
    nbformat.validate(nb)
    return nb


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


def _add_stuck_line(nb, src: Path, dst: Path) -> None:
    """Under the title of a copy of notebooks/solutions/X: where the solution notebook is."""
    if src.parent.name != "solutions" or not nb.cells or nb.cells[0].cell_type != "markdown":
        return
    relative = Path(os.path.relpath(src.resolve(), dst.resolve().parent)).as_posix()
    colab = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks"
    line = (
        f"> Stuck? The solution notebook is [{relative}]({relative}) "
        f"([open it in Colab]({colab}/solutions/{src.name}))."
    )
    title, _, rest = nb.cells[0].source.partition("\n")
    nb.cells[0].source = f"{title}\n\n{line}\n{rest}" if rest else f"{title}\n\n{line}"


def check_names(source: str) -> list[str]:
    """The exercise names that the `check(...)` calls of a cell's source pass first, in order."""
    try:
        # deferred: IPython is there only inside a kernel
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except ImportError:
        pass
    names = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "check"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value not in names
        ):
            names.append(node.args[0].value)
    return names


def _nbgrader(grade_id: str, solution: bool, grade: bool, points: int | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution}
    meta.update(schema_version=3, solution=solution, task=False)
    if points is not None:
        meta["points"] = points
    return meta


def nbgrader_metadata(
    nb, where: str = "notebook", points: dict[str, int] | None = None
) -> list[tuple[str, int]]:
    """Tag the solution and check cells of `nb` for nbgrader (in place); the (name, points) of
    its exercises. Each solution cell must be followed by a code cell whose checks all name one
    exercise (ValueError otherwise), registered in `dit_mini.course.hints` unless `points` maps
    names to points."""
    found, answers = [], 0
    cells = nb.cells
    for cell in cells:
        cell.metadata.pop("nbgrader", None)
        cell.metadata.pop("dit_mini", None)
    for i, cell in enumerate(cells):
        if BEGIN not in cell.source:
            continue
        if cell.cell_type == "markdown":
            answers += 1
            cell.metadata["nbgrader"] = _nbgrader(f"answer-{answers}", True, True, 0)
            continue
        after = next((c for c in cells[i + 1 :] if c.cell_type == "code"), None)
        names = check_names(after.source) if after is not None else []
        if len(names) != 1:
            raise ValueError(
                f"{where} cell {i}: the code cell after an exercise must check exactly one "
                f'exercise, check("NN.name", ...); it checks {names or "none"}'
            )
        name = names[0]
        worth = points[name] if points is not None else exercise(name).points
        grade_id = re.sub(r"[^A-Za-z0-9_-]", "_", name)  # nbgrader allows no dots
        cell.metadata["nbgrader"] = _nbgrader(f"{grade_id}-solution", True, False)
        after.metadata["nbgrader"] = _nbgrader(grade_id, False, True, worth)
        after.metadata["dit_mini"] = {"exercise": name}
        found.append((name, worth))
    _tag_follow_up_checks(cells, {name for name, _ in found}, where)
    return found


def _tag_follow_up_checks(cells, tagged: set[str], where: str) -> None:
    """A later check cell of an exercise already tagged (notebook 14's proof that the learner's
    DiT draws the boss's relics) is locked and names its exercise, but carries no points."""
    for i, cell in enumerate(cells):
        if cell.cell_type != "code" or "dit_mini" in cell.metadata or "check(" not in cell.source:
            continue
        names = check_names(cell.source)
        if not names:
            continue
        if len(names) != 1 or names[0] not in tagged:
            raise ValueError(
                f"{where} cell {i}: a check cell that follows no exercise must check one exercise "
                f"checked earlier in the notebook; it checks {names}"
            )
        cell.metadata["nbgrader"] = {"locked": True, "grade": False, "solution": False,
                                     "grade_id": f"followup-{i}", "schema_version": 3,
                                     "task": False}  # fmt: skip
        cell.metadata["dit_mini"] = {"exercise": names[0], "follow_up": True}


def tag_notebooks(src: str | Path) -> list[Path]:
    """Write nbgrader metadata into one solution notebook or every one under a folder."""
    import nbformat  # deferred: the optional `test`/`notebooks` extras

    src = Path(src)
    paths = [src] if src.is_file() else sorted(src.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no notebook or folder of notebooks at {src}")
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbgrader_metadata(nb, where=str(path))
        nbformat.write(nb, path)
    return paths
