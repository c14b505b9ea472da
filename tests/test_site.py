"""`dit-mini course site`: the course as HTML pages with figures, contents and a glossary.

The slow test builds the whole site from the learners' copies (every notebook executed in FAST
mode) and checks it as a reader would meet it: every page links only to pages and anchors that
exist, every notebook page shows at least one figure, widgets leave their static picture or
fallback and no raw widget repr. With DIT_MINI_ARTIFACTS set (CI), the site is kept there.
"""

import os
import re
from pathlib import Path

import nbformat
import pytest

from dit_mini.cli import main
from dit_mini.course.quiz import WIDGET_VIEW
from dit_mini.course.site import (
    NOTEBOOKS,
    WIDGET_NOTE,
    check_site,
    github_slug,
    rewrite_links,
    static_outputs,
)

COURSE = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def test_links_point_at_pages_or_github():
    pages = {"01_fog.ipynb": "01_fog.html", "GLOSSARY.md": "glossary.html"}
    text = (
        "see [FID](GLOSSARY.md#fid), [next](01_fog.ipynb), [the map](README.md), "
        "[solution](solutions/01_fog.ipynb), [web](https://example.org/x.md), [gone](nope.ipynb)"
    )
    out = rewrite_links(text, NOTEBOOKS, pages | {"README.md": "index.html"})
    assert "(glossary.html#fid)" in out and "(01_fog.html)" in out and "(index.html)" in out
    github = "https://github.com/dit-mini/dit-mini/blob/main/notebooks"
    assert f"({github}/solutions/01_fog.ipynb)" in out
    assert "(https://example.org/x.md)" in out
    assert "(nope.ipynb)" in out  # a missing file is left for the checker to report


def test_widget_outputs_become_their_static_fallback_or_a_note():
    view = {"version_major": 2, "version_minor": 0, "model_id": "abc"}
    slider = {"text/plain": "VBox(children=(...))", WIDGET_VIEW: view}
    quiz = {"text/plain": "Q?", "text/html": "<p>Q?</p><details>A</details>", WIDGET_VIEW: view}
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data=d) for d in (slider, quiz)]
    nb = nbformat.v4.new_notebook(cells=[cell])
    assert static_outputs(nb) == 2
    assert cell.outputs[0].data == {"text/html": WIDGET_NOTE}
    assert cell.outputs[1].data["text/html"].endswith("<details>A</details>")
    assert all(WIDGET_VIEW not in o.data for o in cell.outputs)


def write(path: Path, body: str) -> None:
    path.write_text(f"<!DOCTYPE html><html><body>{body}</body></html>")


def test_the_checker_finds_broken_links_missing_anchors_and_pages_without_a_picture(tmp_path):
    write(tmp_path / "index.html", '<a href="01_a.html">a</a> <a href="gone.html">x</a>')
    write(tmp_path / "glossary.html", '<h3 id="fid">FID</h3>')
    picture = '<img src="data:image/png;base64,AAAA">'
    write(tmp_path / "01_a.html", picture + '<a href="glossary.html#fid">FID</a>')
    write(tmp_path / "02_b.html", '<a href="glossary.html#kid">KID</a> <a href="#top">up</a>')
    problems = check_site(tmp_path)
    assert problems == [
        "02_b.html: no image on the page",
        "02_b.html: link to glossary.html#kid: glossary.html has no element with that id",
        "02_b.html: link to #top: 02_b.html has no element with that id",
        "index.html: link to gone.html: no such file in the site",
    ]
    (missing,) = check_site(tmp_path / "nothing")
    assert missing.endswith(f"(build the site first: dit-mini course site {tmp_path / 'nothing'})")


def test_bad_input_is_one_line(tmp_path, capsys):
    afile = tmp_path / "site.txt"
    afile.write_text("x")
    assert main(["course", "site", str(afile)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file" in err
    assert main(["course", "site", str(tmp_path / "s"), "--notebook", "99_none.ipynb"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no notebook ['99_none.ipynb']" in err
    assert main(["course", "site", str(tmp_path / "s"), "--solutions", str(tmp_path)]) == 2
    assert "no GLOSSARY.md" in capsys.readouterr().err


BUILT = {}  # the one build of the module's tests: its folder, or why it failed


@pytest.fixture
def site(tmp_path_factory):
    """The whole course, built once from the learners' copies (FAST mode); a failed build fails
    every test that needs it without building again."""
    if not BUILT:
        artifacts = os.environ.get("DIT_MINI_ARTIFACTS")
        out = Path(artifacts) / "site" if artifacts else tmp_path_factory.mktemp("site")
        try:
            status = main(["course", "site", str(out)])  # builds, then checks its links
            BUILT["out" if status == 0 else "why"] = out if status == 0 else f"exit {status}"
        except Exception as error:  # noqa: BLE001 - reported by every test below
            BUILT["why"] = f"{type(error).__name__}: {error}"
    if "why" in BUILT:
        pytest.fail(f"the site did not build: {BUILT['why']}")
    return BUILT["out"]


@pytest.mark.slow
def test_the_site_has_a_page_per_notebook_and_its_links_land(site):
    assert check_site(site) == []
    index = (site / "index.html").read_text()
    for name in COURSE:
        assert f'href="{name[:-6]}.html"' in index, f"the table of contents misses {name}"
    glossary = (site / "glossary.html").read_text()
    lines = (NOTEBOOKS / "GLOSSARY.md").read_text().splitlines()
    heads = [line[4:] for line in lines if line.startswith("### ")]
    for head in heads:
        assert f'id="{github_slug(head)}"' in glossary


@pytest.mark.slow
@pytest.mark.parametrize("name", COURSE)
def test_every_notebook_page_shows_its_figures_and_no_raw_widget(site, name):
    page = (site / f"{name[:-6]}.html").read_text()
    figures = re.findall(r'<img[^>]+src="data:image/png;base64,([^"]{200,})"', page)
    assert figures, f"{name}: no figure on its page"
    assert "VBox(children" not in page and "HBox(children" not in page, "a widget's raw repr"
    assert "Traceback" not in page
    assert 'href="index.html"' in page  # the navigation bar
