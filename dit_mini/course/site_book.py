"""The course site's shell: a Sphinx project (myst-nb, sphinx-book-theme) around executed notebooks.

`site.py` executes the notebooks and prepares their outputs for a static page; this module
writes them, with the table of contents, the glossary and the measurement log, into a Sphinx
project and builds it. Sphinx renders the notebooks as they are (`nb_execution_mode = "off"`:
nothing runs again) and brings what a reader of a course site expects: a sidebar with the
course's five acts, offline search (`searchindex.js`), previous/next links, a light and a dark
theme, a phone layout, and launch buttons (Colab, Binder) that open the learner's copy of each
notebook on GitHub. Math is typeset by MathJax 3 served from the site itself (`_static/mathjax`,
copied from the `sphinx-mathjax-offline` package), so pages read the same offline.

Used by `site.build_site`; the page names are the notebooks' (`01_fog.html`), `index.html`,
`glossary.html` and `measurements.html`.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from .. import __version__
from .notebooks import REPOSITORY

__all__ = [
    "ACTS",
    "COLAB",
    "BINDER",
    "act_of",
    "launch_links",
    "index_page",
    "write_project",
    "run_sphinx",
    "mathjax_folder",
]

ACTS = (  # the sidebar's five acts, as notebook 00's map names them: title and notebook numbers
    ("Act I: the fog", ("00", "01", "02", "03")),
    ("Act II: the gear", ("04", "05", "06", "07")),
    ("Act III: the fights", ("08", "09")),
    ("Act IV: the dream realm", ("10", "11", "12", "13")),
    ("Act V: New Game+", ("14",)),
)
GITHUB = f"https://github.com/{REPOSITORY}"
COLAB = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks"
BINDER = f"https://mybinder.org/v2/gh/{REPOSITORY}/main?urlpath=lab/tree/notebooks"
MATHJAX_PARTS = ("tex-chtml.js", "input", "output", "ui", "a11y", "adaptors")
ROW = re.compile(r"^\| (\d\d) \| \[([^\]]+)\]\((\d\d_[^)]+\.ipynb)\) \| (.*?) \|", re.M)
STATIC = Path(__file__).with_name("site_static")


def act_of(name: str) -> str:
    """The act of notebook `name` (its file name, e.g. 07_legendary_gear.ipynb)."""
    for title, numbers in ACTS:
        if name[:2] in numbers:
            return title
    return "More notebooks"


def launch_links(name: str) -> str:
    """The bar under a notebook page's title: the learner's copy in Colab and Binder, then its
    solution, then GitHub (raw HTML, for a Markdown cell)."""
    links = [
        ("dit-launch-colab", f"{COLAB}/{name}", "Open your copy in Colab"),
        ("dit-launch-binder", f"{BINDER}/{name}", "Binder"),
        ("dit-launch-solution", f"{COLAB}/solutions/{name}", "the solution, in Colab"),
        ("dit-launch-github", f"{GITHUB}/blob/main/notebooks/{name}", "on GitHub"),
    ]
    anchors = "\n".join(f'<a class="{c}" href="{url}">{text}</a>' for c, url, text in links)
    return (
        f'<div class="dit-launch">\n{anchors}\n</div>\n\n'
        '<p class="dit-launch-note">Sliders, quizzes and exercise checks need a running '
        "notebook: the buttons open this notebook's learner copy (blank exercises) in Colab or "
        "Binder; the solution is one click further.</p>\n"
    )


def index_page(names: list[str], titles: dict[str, str], readme: str, solutions: bool) -> str:
    """index.md: the notebooks by act with their real numbers, and the toctrees of the sidebar.

    `readme` is notebooks/README.md: its table's "what you do there" column describes each
    notebook (a notebook missing from it gets its title)."""
    what = {m.group(3): (m.group(2), m.group(4)) for m in ROW.finditer(readme)}
    kind = "solution notebooks" if solutions else "learners' copies, exercises left blank"
    parts = [
        "# dit-mini: the course\n",
        "Diffusion Transformers taught through a hard action game. Each page is a course "
        f"notebook run top to bottom in FAST mode (the {kind}), with its figures. Sliders, menus, "
        "quizzes and exercise checks need a running notebook: every page has buttons that open "
        "its learner copy in Colab or Binder. The source, the package and the notebooks live in "
        f"the repository [{REPOSITORY}]({GITHUB}).\n",
    ]
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(act_of(name), []).append(name)
    for act, members in groups.items():
        rows = []
        for name in members:
            label, text = what.get(name, (titles[name], ""))
            rows.append(f"| {name[:2]} | [{label}]({name}) | {text} |")
        parts.append(f"## {act}\n\n| # | notebook | what you do there |\n|---|---|---|")
        parts.append("\n".join(rows) + "\n")
    parts.append(
        "Terms: the [glossary](glossary.md). Where every number was measured: the "
        "[measurement log](measurements.md).\n\n"
        f"*Built on {date.today().isoformat()} with dit-mini {__version__}.*\n"
    )
    for act, members in groups.items():
        entries = "\n".join(name[:-6] for name in members)
        parts.append(f"```{{toctree}}\n:hidden:\n:caption: {act}\n\n{entries}\n```\n")
    parts.append("```{toctree}\n:hidden:\n:caption: Reference\n\nglossary\nmeasurements\n```\n")
    return "\n".join(parts)


CONF = '''\
"""Sphinx configuration of the dit-mini course site (written by dit_mini.course.site_book)."""

project = "dit-mini course"
author = "dit-mini developers"
copyright = "dit-mini developers"
release = {version!r}
extensions = ["myst_nb"]
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]
nb_execution_mode = "off"  # the notebooks were executed (FAST mode) before the build
nb_mime_priority_overrides = [("html", "image/gif", 45)]  # notebook 13's clips
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 4
suppress_warnings = ["myst.header"]  # the glossary goes from its title to H3 entries
myst_dmath_double_inline = True
html_theme = "sphinx_book_theme"
html_title = "dit-mini: the course"
html_static_path = ["_static"]
html_css_files = ["dit.css"]
html_favicon = "_static/favicon.svg"
html_context = {{"default_mode": "auto"}}  # light or dark as the reader's system says
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
mathjax_path = "mathjax/tex-chtml.js"  # served from the site: copied in after the build
html_theme_options = {{
    "repository_url": "{github}",
    "repository_branch": "main",
    "path_to_docs": "notebooks",
    "use_repository_button": True,
    "use_download_button": False,
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "launch_buttons": {{
        "colab_url": "https://colab.research.google.com",
        "binderhub_url": "https://mybinder.org",
        "notebook_interface": "jupyterlab",
    }},
}}
'''


def write_project(src: Path, pages: dict[str, str]) -> None:
    """Write conf.py, the stylesheet and `pages` (file name -> text, Markdown or notebook JSON)
    into the Sphinx source folder `src`."""
    src.mkdir(parents=True, exist_ok=True)
    (src / "conf.py").write_text(CONF.format(version=__version__, github=GITHUB))
    (src / "_static").mkdir(exist_ok=True)
    for name in ("dit.css", "favicon.svg"):
        shutil.copy(STATIC / name, src / "_static" / name)
    for name, text in pages.items():
        (src / name).write_text(text)


def mathjax_folder() -> Path:
    """MathJax 3's files, as the `sphinx-mathjax-offline` package ships them."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the course site serves MathJax itself and needs the sphinx-mathjax-offline package: "
            'pip install -e ".[site]"'
        )
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"


def run_sphinx(src: Path, out: Path, work: Path) -> list[str]:
    """Build the HTML site from `src` into `out` (doctrees under `work`), copy MathJax into
    `out/_static/mathjax`; returns Sphinx's warnings, one line each."""
    mathjax = mathjax_folder()
    warnings = work / "warnings.txt"
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", "-d", str(work / "dt")]
    command += ["-w", str(warnings), str(src), str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise RuntimeError(f"Sphinx could not build the site: {last}")
    target = out / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (mathjax / part).is_dir():
            shutil.copytree(mathjax / part, target / part, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(mathjax / part, target / part)
    text = warnings.read_text() if warnings.exists() else ""
    return [line for line in text.splitlines() if "WARNING" in line or "ERROR" in line]
