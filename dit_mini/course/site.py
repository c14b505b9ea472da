"""The course as a static website: every notebook executed in FAST mode and rendered to HTML.

The notebooks are stored without outputs, so a notebook read on GitHub shows no picture.
`build_site` runs each notebook top to bottom in a fresh kernel (FAST mode, the notebook's own
folder as the working directory), turns it into an HTML page with its figures embedded, and
writes beside the pages a table of contents (`index.html`), the glossary (`glossary.html`) and
the measurement log (`measurements.html`). Widgets need a live kernel: on a page each widget
output becomes its static fallback (the quiz's question with the answer folded away) or a short
note, and the static copy of the picture that every widget cell also draws is what the reader
sees. Links between notebooks, to the glossary and to the measurement log point at the pages;
links to other files of the repository point at GitHub.

`check_site` is the link checker: every relative link and image of every page must land on a
file of the site (and on an element with that id when it names an anchor), and every notebook
page must show at least one image. External links are not fetched (the build may be offline).

By default the pages are the learners' copies (`notebooks/`, blank exercises); `solutions=True`
renders the solution notebooks instead. Used by `dit-mini course site OUT [--solutions]`.
"""

from __future__ import annotations

import copy
import html
import os
import re
import time
from collections.abc import Callable
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

from .. import __version__
from ..runtime import FAST_ENV, MODE_ENV
from .exercises import GRADING_ENV
from .notebooks import REPOSITORY
from .quiz import WIDGET_VIEW

__all__ = [
    "NOTEBOOKS",
    "github_slug",
    "rewrite_links",
    "static_outputs",
    "build_site",
    "check_site",
]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WIDGET_NOTE = (
    '<p class="dit-widget-note"><em>An interactive control sits here when the notebook runs in '
    "JupyterLab or Colab; the picture below it is its starting view.</em></p>"
)
PAGES = {  # the course folder's Markdown files, and their pages
    "README.md": "index.html",
    "GLOSSARY.md": "glossary.html",
    "MEASUREMENTS.md": "measurements.html",
}
LINK = re.compile(r"(\]\()([^)\s]+)(\))")
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 0 auto; padding: 1rem; }
nav.dit-nav { display: flex; gap: 1.2rem; padding: .6rem 0; border-bottom: 1px solid #ddd; }
nav.dit-nav.bottom { border-top: 1px solid #ddd; border-bottom: none; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: .3rem .6rem; }
code, pre { background: #f6f8fa; }
"""


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _github_url(path: Path) -> str:
    root = NOTEBOOKS.parent.resolve()
    return (
        f"https://github.com/{REPOSITORY}/blob/main/{path.resolve().relative_to(root).as_posix()}"
    )


def rewrite_links(markdown: str, folder: Path, pages: dict[str, str]) -> str:
    """Point the relative links of `markdown` (written in `folder`) at the site's pages.

    `pages` maps a file name of `folder` (a notebook, README.md, GLOSSARY.md, MEASUREMENTS.md) to
    its page; a link to any other file of the repository becomes its GitHub address; a link to a
    file that does not exist is left alone, for `check_site` to report.
    """

    def one(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#", target):  # http:, mailto:, data:, #anchor
            return match.group(0)
        file, _, anchor = target.partition("#")
        anchor = f"#{anchor}" if anchor else ""
        path = (folder / file).resolve()
        if path.parent == folder.resolve() and path.name in pages:
            return f"{match.group(1)}{pages[path.name]}{anchor}{match.group(3)}"
        if path.exists() and NOTEBOOKS.parent.resolve() in path.parents:
            return f"{match.group(1)}{_github_url(path)}{anchor}{match.group(3)}"
        return match.group(0)

    return LINK.sub(one, markdown)


def _markdown_page(title: str, markdown: str, nav: str) -> str:
    """A standalone HTML page of a Markdown text, headings carrying GitHub's anchors."""
    import mistune  # deferred: comes with nbconvert (the `notebooks` extra)

    body = mistune.create_markdown(plugins=["table", "strikethrough"])(markdown)

    def with_id(match: re.Match) -> str:
        level, text = match.group(1), match.group(2)
        anchor = github_slug(html.unescape(re.sub(r"<[^>]+>", "", text)))
        return f'<h{level} id="{anchor}">{text}</h{level}>'

    body = re.sub(r"<h([1-6])>(.*?)</h\1>", with_id, body)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{nav}\n{body}\n{nav.replace('dit-nav', 'dit-nav bottom')}</body></html>\n"
    )


def _nav(pages: list[tuple[str, str]], index: int | None) -> str:
    """Contents, previous and next page, glossary: the bar on top of every page."""
    links = ['<a href="index.html">contents</a>']
    for word, j in (("previous", -1), ("next", 1)):
        if index is not None and 0 <= index + j < len(pages):
            page, title = pages[index + j]
            links.append(f'<a href="{page}">{word}: {html.escape(title)}</a>')
    links.append('<a href="glossary.html">glossary</a>')
    links.append('<a href="measurements.html">measurements</a>')
    return f'<nav class="dit-nav">{" ".join(links)}</nav>'


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "notebook"


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
    """Replace widget outputs by their static fallback (or a note); returns how many."""
    replaced = 0
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


def build_site(
    out: str | Path,
    source: str | Path | None = None,
    names: list[str] | None = None,
    timeout: int = 900,
    fast: bool = True,
    progress: Callable[[str], None] = print,
) -> list[Path]:
    """Execute the course notebooks and write the static site to `out`; returns the pages.

    `source` is the folder of notebooks to render: the checkout's notebooks/ (the learners'
    copies) by default, or notebooks/solutions/. The GLOSSARY.md and MEASUREMENTS.md of the course
    folder (`source`, or its parent for solutions/) become the glossary and measurements pages,
    and the notebooks' links are read relative to it. `names` limits the build to some notebooks
    (file names), for a quick look. A cell that raises stops the build, naming the notebook.
    """
    import nbformat  # deferred: the `notebooks` and `test` extras
    from nbconvert import HTMLExporter  # deferred: comes with JupyterLab (the `notebooks` extra)

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

    page_of = {p.name: p.with_suffix(".html").name for p in paths} | PAGES
    notebooks_read = [nbformat.read(p, as_version=4) for p in paths]
    order = [(page_of[p.name], _title(nb)) for p, nb in zip(paths, notebooks_read, strict=True)]
    exporter = HTMLExporter(template_name="lab")
    written = []
    for i, (path, nb) in enumerate(zip(paths, notebooks_read, strict=True)):
        start = time.perf_counter()
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = rewrite_links(cell.source, root, page_of)
        executed = None
        for attempt in (1, 2):  # a kernel that died (not a cell that raised) gets one more run
            executed = nbformat.from_dict(copy.deepcopy(nb))
            try:
                _execute(executed, path.parent.resolve(), timeout, fast)
                break
            except Exception as error:  # noqa: BLE001 - any failure names the notebook
                if type(error).__name__ == "DeadKernelError" and attempt == 1:
                    progress(f"{path.name}: the kernel died; running the notebook once more")
                    continue
                raise RuntimeError(
                    f"{path.name} failed while the site was built: {error}"
                ) from error
        nb = executed
        static_outputs(nb)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": order[i][1]}})
        nav = _nav(order, i)
        body = re.sub(r"(<body[^>]*>)", lambda m, nav=nav: f"{m.group(1)}\n{nav}", body, count=1)
        body = body.replace("</body>", f"{nav.replace('dit-nav', 'dit-nav bottom')}\n</body>", 1)
        page = out / order[i][0]
        page.write_text(body.replace("</head>", f"<style>{STYLE}</style></head>", 1))
        written.append(page)
        progress(f"wrote {page} ({time.perf_counter() - start:.0f} s)")

    written += _text_pages(out, root, order, page_of, solutions)
    progress(f"wrote {out / 'index.html'}: {len(paths)} notebooks, glossary, measurements")
    return written


def _text_pages(out: Path, root: Path, order, page_of, solutions: bool) -> list[Path]:
    """index.html (the table of contents), glossary.html and measurements.html."""
    nav = _nav(order, None)
    rows = "\n".join(f"| {i:02d} | [{title}]({page}) |" for i, (page, title) in enumerate(order))
    kind = "solution notebooks" if solutions else "learners' copies (exercises left blank)"
    index = (
        "# dit-mini: the course, rendered\n\n"
        "Diffusion Transformers taught through a hard action game. Each page is a course "
        f"notebook run top to bottom in FAST mode (the {kind}), with its figures. Sliders, menus "
        "and quizzes need a live kernel: open the notebooks in JupyterLab or Colab to move them "
        f"(https://github.com/{REPOSITORY}).\n\n"
        "| # | notebook |\n|---|---|\n"
        f"{rows}\n\n"
        "Terms: [glossary](glossary.html). Where every number was measured: "
        "[measurements](measurements.html).\n\n"
        f"*Built on {date.today().isoformat()} with dit-mini {__version__}.*\n"
    )
    pages = [(out / "index.html", "dit-mini course", index)]
    for name in ("GLOSSARY.md", "MEASUREMENTS.md"):
        text = rewrite_links((root / name).read_text(), root, page_of)
        pages.append((out / page_of[name], name[:-3].capitalize(), text))
    for page, title, text in pages:
        page.write_text(_markdown_page(title, text, nav))
    return [p for p, _, _ in pages]


class _Links(HTMLParser):
    """The ids, links and images of one HTML page."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.images = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.images += 1
            self.links.append(attrs["src"])


def check_site(out: str | Path) -> list[str]:
    """Every problem of the site in `out`, one line each (empty: the site is sound)."""
    out = Path(out)
    pages = {p.name: p for p in out.glob("*.html")}
    if "index.html" not in pages:
        return [f"{out}: no index.html (build the site first: dit-mini course site {out})"]
    parsed = {}
    for name, page in pages.items():
        parser = _Links()
        parser.feed(page.read_text())
        parsed[name] = parser
    problems = []
    for name, parser in sorted(parsed.items()):
        if re.match(r"\d\d_", name) and parser.images == 0:
            problems.append(f"{name}: no image on the page")
        for link in parser.links:
            if re.match(r"^[a-z][a-z0-9+.-]*:", link):  # http(s):, data:, mailto: not fetched
                continue
            file, _, anchor = link.partition("#")
            target = file or name
            if target not in parsed:
                exists = (out / target).exists()
                if not exists:
                    problems.append(f"{name}: link to {link}: no such file in the site")
                continue
            if anchor and anchor not in parsed[target].ids:
                problems.append(f"{name}: link to {link}: {target} has no element with that id")
    return problems
