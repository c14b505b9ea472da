"""The course as a static website: every notebook executed in FAST mode, rendered by Sphinx.

The notebooks are stored without outputs, so a notebook read on GitHub shows no picture.
`build_site` runs each notebook top to bottom in a fresh kernel (FAST mode, the notebook's own
folder as the working directory) and prepares its outputs for a page that has no kernel
(`static_outputs`, `for_the_page`): each widget output becomes its static fallback (the quiz's
question with the answer folded away) or a short note, beside the static copy of the picture
that every widget cell also draws; an exercise cell is set apart under a box that says what to
write; a check cell says what it checks and that it answers when the notebook runs, instead of
"You died: not solved yet" and a stray `False`. Then Sphinx (myst-nb, sphinx-book-theme; see
`site_book`) renders the executed notebooks without running them again, with the table of
contents (`index.html`), the glossary (`glossary.html`) and the measurement log
(`measurements.html`). Links between notebooks, to the glossary and to the measurement log point
at the pages, notebook numbers in the glossary and in tables with a "notebook" column become
links, and links to other files of the repository point at GitHub.

`check_site` (from `site_links`) is the link checker: every relative link and image of every page
must land on a file of the site (and on an element with that id when it names an anchor), and
every notebook page must show at least one image. External links are not fetched.

By default the pages are the learners' copies (`notebooks/`, blank exercises); `solutions=True`
renders the solution notebooks instead. Used by `dit-mini course site OUT [--solutions]`.
`run_notebook` is the one execution step on its own, so that notebooks already run and checked
(the test suite's run of each learner's copy) are rendered without running them twice.
"""

from __future__ import annotations

import copy
import html
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..runtime import FAST_ENV, MODE_ENV
from .exercises import FAIL_PREFIX, GRADING_ENV
from .hints import EXERCISES
from .quiz import WIDGET_VIEW
from .site_book import GITHUB, index_page, launch_links, run_sphinx, write_project
from .site_links import NOTEBOOKS, check_site, github_slug, link_notebook_numbers, rewrite_links

__all__ = [
    "NOTEBOOKS",
    "WIDGET_NOTE",
    "github_slug",
    "rewrite_links",
    "link_notebook_numbers",
    "static_outputs",
    "for_the_page",
    "run_notebook",
    "build_site",
    "check_site",
]

WIDGET_NOTE = (
    '<p class="dit-widget-note"><em>An interactive control sits here when the notebook runs in '
    "JupyterLab, Colab or Binder; the picture below it is its starting view.</em></p>"
)
PAGES = {
    "README.md": "index.md",
    "GLOSSARY.md": "glossary.md",
    "MEASUREMENTS.md": "measurements.md",
}
CHECK_NAME = re.compile(r"""check\(\s*["']([^"']+)["']""")
LOADED = "<All keys matched successfully>"  # what load_state_dict returns (or prints)
NOISE = {"True", "False", LOADED}  # results a static page drops


def _execute(nb, folder: Path, timeout: int, fast: bool) -> None:
    """Run `nb` in a fresh kernel with `folder` as working directory; raise on a cell's error."""
    from nbclient import NotebookClient  # deferred: the `test` extra (and nbconvert's)

    saved = {k: os.environ.get(k) for k in (FAST_ENV, MODE_ENV, GRADING_ENV)}
    os.environ[FAST_ENV] = "1" if fast else "0"  # inherited by the kernel
    os.environ[MODE_ENV] = "fast" if fast else "full"
    os.environ.pop(GRADING_ENV, None)
    try:
        resources = {"metadata": {"path": str(folder)}}
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources=resources).execute()
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.update({key: value})


def static_outputs(nb) -> int:
    """Replace widget outputs by their static fallback (or a note); returns how many. The
    notebook's saved widget state goes too (a static page has no widget manager to load)."""
    replaced = 0
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            del data[WIDGET_VIEW]
            replaced += 1
            if "text/html" not in data and "image/png" not in data:
                data.clear()
                data["text/html"] = WIDGET_NOTE
    return replaced


def _titles(source: str) -> str:
    names = dict.fromkeys(CHECK_NAME.findall(source))
    return ", ".join(f'"{EXERCISES[n].title}"' if n in EXERCISES else n for n in names)


def _tag(cell, tag: str) -> None:
    cell.metadata["tags"] = [*cell.metadata.get("tags", []), tag]


def for_the_page(nb, name: str, solved: bool = False) -> None:
    """Prepare an executed notebook for a page without a kernel (in place).

    Under the title: the launch bar (`site_book.launch_links`). Before each exercise cell
    (nbgrader `solution: true`): a box naming the exercise and what to write (`solved`: that the
    solution is shown); the cell is tagged
    `dit-exercise` (set apart by the stylesheet). Each check cell (nbgrader `grade: true`) is
    tagged `dit-check`; in it, and in any other cell that calls check(), a failed check's line
    ("You died: ... not solved yet ... hint(...)") and a bare True/False result give way to one
    note saying what the cell checks and that it answers when the notebook runs (a check cell
    left with no output gets the note too); a passed check's line stays. Anywhere, a result that
    only says "<All keys matched successfully>" is dropped.
    """
    import nbformat  # deferred: the `notebooks` and `test` extras

    cells = []
    for i, cell in enumerate(nb.cells):
        grader = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and grader.get("solution"):
            following = (
                c for c in nb.cells[i + 1 :] if c.metadata.get("nbgrader", {}).get("grade")
            )
            checked = _titles(next(following, {"source": ""})["source"])
            text = (
                "The solution is shown here; in the learner's copy this cell is blank. "
                if solved
                else "Write your code in the cell below where it says `# YOUR CODE HERE`, in "
                "your copy of the notebook: the buttons at the top of the page open it. "
            ) + "The check after it tells whether the code works."
            title = f"Exercise: {checked}" if checked else "Exercise"
            text = f":::{{admonition}} {title}\n:class: dit-exercise\n{text}\n:::"
            cells.append(nbformat.v4.new_markdown_cell(text))
            _tag(cell, "dit-exercise")
        if cell.cell_type == "code" and grader.get("grade"):
            _tag(cell, "dit-check")
        if cell.cell_type == "code" and (grader.get("grade") or CHECK_NAME.search(cell.source)):
            _check_outputs(cell, grader.get("grade", False))  # a follow-up may call check()
        if cell.cell_type == "code":
            for output in cell.outputs:  # a printed load report, also inside a longer stream
                if output.get("output_type") == "stream":
                    lines = output.get("text", "").splitlines(keepends=True)
                    output["text"] = "".join(x for x in lines if x.strip() != LOADED)
            cell.outputs = [o for o in cell.outputs if _text(o).strip() not in NOISE | {""}]
        cells.append(cell)
        if i == 0:
            cells.append(nbformat.v4.new_markdown_cell(launch_links(name)))
    nb.cells = cells


def _text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    data = output.get("data", {})
    return data.get("text/plain", "") if set(data) == {"text/plain"} else "<rich>"


def _check_outputs(cell, graded: bool) -> None:
    kept, failed = [], False
    for output in cell.outputs:
        text = _text(output)
        if output.get("output_type") == "stream":
            lines = text.splitlines(keepends=True)
            failed |= any(line.startswith(FAIL_PREFIX) for line in lines)
            text = "".join(line for line in lines if not line.startswith(FAIL_PREFIX))
            if text.strip():
                output["text"] = text
                kept.append(output)
        elif text.strip() not in NOISE:
            kept.append(output)
    if failed or (graded and not kept):
        import nbformat  # deferred: the `notebooks` and `test` extras

        what = _titles(cell.source) or "the exercise above"
        note = (
            f'<p class="dit-check-note"><strong>Check: {html.escape(what, quote=False)}.</strong> '
            "When the notebook runs (open it with the buttons at the top of the page), this cell "
            "tests your code and answers <em>Bonfire lit</em>, or says what is wrong and how to "
            "fix it.</p>"
        )
        plain = f"Check: {what}. Run the notebook to test your code."
        data = {"text/html": note, "text/plain": plain}
        kept.insert(0, nbformat.v4.new_output("display_data", data=data))
    cell.outputs = kept


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "notebook"


def _run(path: Path, nb, timeout: int, fast: bool, progress: Callable[[str], None]):
    """`nb` executed (a copy); a kernel that died (not a cell that raised) gets one more run."""
    import nbformat  # deferred: the `notebooks` and `test` extras

    for attempt in (1, 2):
        executed = nbformat.from_dict(copy.deepcopy(nb))
        try:
            _execute(executed, path.parent.resolve(), timeout, fast)
            return executed
        except Exception as error:  # noqa: BLE001 - any failure names the notebook
            if type(error).__name__ == "DeadKernelError" and attempt == 1:
                progress(f"{path.name}: the kernel died; running the notebook once more")
                continue
            raise RuntimeError(f"{path.name} failed while the site was built: {error}") from error


def run_notebook(
    path: str | Path, timeout: int = 900, fast: bool = True, progress: Callable[[str], None] = print
):
    """The notebook at `path` executed as `build_site` runs it: a fresh kernel, FAST mode by
    default, grading mode off, the notebook's folder as working directory, one more run if the
    kernel died. A cell that raises stops it: RuntimeError naming the notebook and the error.

    Its result can be handed to `build_site(executed=...)`, which then renders it without running
    it again (the test suite runs each learner's copy once, checks it, and builds the site).
    """
    import nbformat  # deferred: the `notebooks` and `test` extras

    path = Path(path)
    return _run(path, nbformat.read(path, as_version=4), timeout, fast, progress)


def build_site(
    out: str | Path,
    source: str | Path | None = None,
    names: list[str] | None = None,
    timeout: int = 900,
    fast: bool = True,
    progress: Callable[[str], None] = print,
    executed: Mapping[str, Any] | None = None,
) -> list[str]:
    """Execute the course notebooks and write the static site to `out`; returns Sphinx's warnings.

    `source` is the folder of notebooks to render: the checkout's notebooks/ (the learners'
    copies) by default, or notebooks/solutions/. The README.md, GLOSSARY.md and MEASUREMENTS.md
    of the course folder (`source`, or its parent for solutions/) give the table of contents, the
    glossary and the measurement log, and the notebooks' links are read relative to it. `names`
    limits the build to some notebooks (file names), for a quick look. A cell that raises stops
    the build, naming the notebook (RuntimeError). `executed` maps file names to notebooks of
    `source` already executed by `run_notebook` (same mode): those are rendered as they are,
    not run again.
    """
    import nbformat  # deferred: the `notebooks` and `test` extras

    source = Path(source) if source is not None else NOTEBOOKS
    if not source.is_dir():
        raise ValueError(
            f"{source} is not a folder of notebooks; the site is built from a checkout of the "
            "repository (its notebooks/ folder)"
        )
    root = source if (source / "GLOSSARY.md").exists() else source.parent
    if not (root / "GLOSSARY.md").exists():
        raise ValueError(f"no GLOSSARY.md in {source} or its parent: not a course folder")
    solutions = root != source
    paths = sorted(source.glob("[0-9][0-9]_*.ipynb"))
    if names:
        unknown = sorted(set(names) - {p.name for p in paths})
        if unknown:
            known = [p.name for p in paths]
            raise ValueError(f"no notebook {unknown} in {source}; pick from {known}")
        paths = [p for p in paths if p.name in names]
    if not paths:
        raise ValueError(f"no course notebooks (NN_name.ipynb) in {source}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; the site needs a folder: pass a folder name as OUT")
    out.mkdir(parents=True, exist_ok=True)

    page_of = {p.name: p.name for p in paths} | PAGES
    every = sorted(root.glob("[0-9][0-9]_*.ipynb"))
    numbers = {p.name[:2]: f"{GITHUB}/blob/main/notebooks/{p.name}" for p in every}
    numbers |= {p.name[:2]: p.name for p in paths}

    def markdown(text: str) -> str:
        return link_notebook_numbers(rewrite_links(text, root, page_of), numbers)

    pages, titles = {}, {}
    for path in paths:
        start = time.perf_counter()
        if executed is not None and path.name in executed:
            nb = nbformat.from_dict(copy.deepcopy(executed[path.name]))
        else:
            nb = _run(path, nbformat.read(path, as_version=4), timeout, fast, progress)
        titles[path.name] = _title(nb)
        for cell in nb.cells:  # running a notebook leaves its markdown as it was
            if cell.cell_type == "markdown":
                cell.source = markdown(cell.source)
        static_outputs(nb)
        for_the_page(nb, path.name, solved=solutions)
        pages[path.name] = nbformat.writes(nb)
        progress(f"ran {path.name} ({time.perf_counter() - start:.0f} s)")
    readme = (root / "README.md").read_text() if (root / "README.md").exists() else ""
    pages["index.md"] = index_page([p.name for p in paths], titles, readme, solutions)
    for name in ("GLOSSARY.md", "MEASUREMENTS.md"):
        pages[PAGES[name]] = markdown((root / name).read_text())
    with tempfile.TemporaryDirectory(prefix="dit-mini-site-") as work:
        write_project(Path(work) / "src", pages)
        warnings = run_sphinx(Path(work) / "src", out, Path(work))
    for warning in warnings:
        progress(f"sphinx: {warning}")
    progress(f"wrote {out / 'index.html'}: {len(paths)} notebooks, glossary, measurements")
    return warnings
