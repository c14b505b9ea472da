"""Links of the course site: GitHub's anchors, links rewritten to pages, notebook numbers made
links, and the checker of the built site's links and images.

`rewrite_links` and `link_notebook_numbers` prepare the Markdown of the notebooks, the glossary
and the measurement log for Sphinx (`site.build_site`); `check_site` reads the HTML it wrote: every
relative link and image of every page must land on a file of the site (and on an element with
that id when it names an anchor), and every notebook page must show at least one image. External
links are not fetched (the build may be offline).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from .notebooks import REPOSITORY

__all__ = ["NOTEBOOKS", "github_slug", "rewrite_links", "link_notebook_numbers", "check_site"]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
LINK = re.compile(r"(\]\()([^)\s]+)(\))")
KEPT = re.compile(
    r"```.*?```|\[[^\]]*\]\([^)]*\)|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]*\$|^#[^\n]*", re.S | re.M
)
NUMBERS = re.compile(r"\b([Nn]otebooks? )(\d\d(?:(?:, | and | to | or )\d\d)*)\b")
NUMBER_LIST = re.compile(r"\s*\d\d(?:\s*(?:,|and|to|or)\s*\d\d)*\s*")


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
    file that does not exist is left alone, for Sphinx and `check_site` to report.
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


def link_notebook_numbers(markdown: str, targets: dict[str, str]) -> str:
    """Make notebook numbers links: "Notebook 07", "notebooks 05 and 07" in prose, and "05, 07"
    in the column of a table headed "notebook". `targets` maps a number ("07") to the link
    target; numbers it lacks, and text inside links, code and math, are left alone."""

    def numbers(text: str) -> str:
        return re.sub(
            r"\d\d", lambda m: f"[{m[0]}]({targets[m[0]]})" if m[0] in targets else m[0], text
        )

    def prose(text: str) -> str:
        return NUMBERS.sub(lambda m: m.group(1) + numbers(m.group(2)), text)

    out, last = [], 0
    for match in KEPT.finditer(markdown):
        out += [prose(markdown[last : match.start()]), match.group(0)]
        last = match.end()
    lines = "".join(out + [prose(markdown[last:])]).split("\n")
    column = None
    for i, line in enumerate(lines):
        cells = line.strip().strip("|").split("|")
        if not line.lstrip().startswith("|"):
            column = None
        elif i + 1 < len(lines) and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", lines[i + 1]):
            heads = [c.strip().lower() for c in cells]
            column = next((j for j, h in enumerate(heads) if h in ("notebook", "notebooks")), None)
        elif column is not None and column < len(cells) and NUMBER_LIST.fullmatch(cells[column]):
            cells[column] = numbers(cells[column])
            lines[i] = "|" + "|".join(cells) + "|"
    return "\n".join(lines)


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
            file = file.split("?")[0]  # a stylesheet's ?digest=...
            target = file or name
            if target not in parsed:
                if not (out / target).exists():
                    problems.append(f"{name}: link to {link}: no such file in the site")
                continue
            if anchor and anchor not in parsed[target].ids:
                problems.append(f"{name}: link to {link}: {target} has no element with that id")
    return problems
