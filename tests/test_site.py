"""`dit-mini course site`: the course rendered by Sphinx, with figures, acts, glossary and search.

Fast tests cover the pieces (links, notebook numbers as links, widget fallbacks, exercise and
check cells prepared for a page without a kernel, the index's real numbers, the acts, the link
checker, bad input) and one end-to-end build of a tiny course folder (one notebook, one kernel,
one Sphinx run). The slow tests check that every learner's copy runs to the end (the session's
one run of each, `learner_run` in tests/conftest.py) and read the whole course site, built once
per session from those runs by the `course_site` fixture; tests/test_site_browser.py looks at
the same build in Chromium.
"""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from dit_mini.cli import main
from dit_mini.course.quiz import WIDGET_VIEW
from dit_mini.course.site import (
    NOTEBOOKS,
    WIDGET_NOTE,
    build_site,
    check_site,
    for_the_page,
    github_slug,
    link_notebook_numbers,
    rewrite_links,
    static_outputs,
)
from dit_mini.course.site_book import ACTS, BINDER, COLAB, act_of, index_page

COURSE = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
GITHUB = "https://github.com/dit-mini/dit-mini/blob/main/notebooks"


def test_links_point_at_pages_or_github():
    pages = {"01_fog.ipynb": "01_fog.ipynb", "GLOSSARY.md": "glossary.md"}
    text = (
        "see [FID](GLOSSARY.md#fid), [next](01_fog.ipynb), [the map](README.md), "
        "[solution](solutions/01_fog.ipynb), [web](https://example.org/x.md), [gone](nope.ipynb)"
    )
    out = rewrite_links(text, NOTEBOOKS, pages | {"README.md": "index.md"})
    assert "(glossary.md#fid)" in out and "(01_fog.ipynb)" in out and "(index.md)" in out
    assert f"({GITHUB}/solutions/01_fog.ipynb)" in out
    assert "(https://example.org/x.md)" in out
    assert "(nope.ipynb)" in out  # a missing file is left for the checker to report


def test_notebook_numbers_become_links_in_prose_and_in_a_notebook_column():
    targets = {"03": "03_a.ipynb", "05": "05_b.ipynb", "07": f"{GITHUB}/07_c.ipynb"}
    prose = "# Notebook 05\nNotebook 07. See notebooks 03 and 05, [notebook 03](x.ipynb), "
    prose += "`notebook 05`, $05$.\n```\nnotebook 05\n```"
    out = link_notebook_numbers(prose, targets)
    assert out.startswith(
        f"# Notebook 05\nNotebook [07]({GITHUB}/07_c.ipynb). See notebooks [03](03_a.ipynb)"
    )
    assert "and [05](05_b.ipynb)," in out
    assert "[notebook 03](x.ipynb), `notebook 05`, $05$.\n```\nnotebook 05\n```" in out  # kept
    table = "| piece | notebook |\n|---|---|\n| patches | 05, 07 |\n| loss | 03 |\n| x 05 | 99 |"
    out = link_notebook_numbers(table, targets)
    assert f"| [05](05_b.ipynb), [07]({GITHUB}/07_c.ipynb) |" in out
    assert "| [03](03_a.ipynb) |" in out and "| x 05 | 99 |" in out  # other columns left alone


def test_widget_outputs_become_their_static_fallback_or_a_note():
    view = {"version_major": 2, "version_minor": 0, "model_id": "abc"}
    slider = {"text/plain": "VBox(children=(...))", WIDGET_VIEW: view}
    quiz = {"text/plain": "Q?", "text/html": "<p>Q?</p><details>A</details>", WIDGET_VIEW: view}
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data=d) for d in (slider, quiz)]
    nb = nbformat.v4.new_notebook(cells=[cell], metadata={"widgets": {"state": {}}})
    assert static_outputs(nb) == 2
    assert cell.outputs[0].data == {"text/html": WIDGET_NOTE}
    assert cell.outputs[1].data["text/html"].endswith("<details>A</details>")
    assert all(WIDGET_VIEW not in o.data for o in cell.outputs)
    assert "widgets" not in nb.metadata  # no widget manager loaded from a CDN


def _graded(source: str, grader: dict, outputs=()) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = grader
    cell.outputs = list(outputs)
    return cell


def _course_notebook(died: str) -> nbformat.NotebookNode:
    stream = nbformat.v4.new_output("stream", name="stdout", text=died)
    false = nbformat.v4.new_output("execute_result", data={"text/plain": "False"})
    figure = nbformat.v4.new_output("display_data", data={"image/png": "AAAA"})
    keys = nbformat.v4.new_output(
        "execute_result", data={"text/plain": "<All keys matched successfully>"}
    )
    cells = [
        nbformat.v4.new_markdown_cell("# 01 · Fog"),
        _graded(
            "def f(b):\n    # YOUR CODE HERE\n    raise NotImplementedError", {"solution": True}
        ),
        _graded('check("01.alpha_bar", f, g)', {"grade": True}, [stream, false, figure]),
        nbformat.v4.new_code_cell("model.load_state_dict(sd)"),
    ]
    cells[-1].outputs = [keys]
    return nbformat.v4.new_notebook(cells=cells)


def test_a_page_without_a_kernel_shows_exercises_and_checks_not_deaths():
    died = 'You died: alpha_bar from betas: not solved yet. Stuck? hint("01.alpha_bar")\n'
    nb = _course_notebook(died)
    for_the_page(nb, "01_fog.ipynb")
    kinds = [c.cell_type for c in nb.cells]
    assert kinds == ["markdown", "markdown", "markdown", "code", "code", "code"]
    launch = nb.cells[1].source
    assert f'href="{COLAB}/01_fog.ipynb"' in launch and f'href="{BINDER}/01_fog.ipynb"' in launch
    assert f'href="{COLAB}/solutions/01_fog.ipynb"' in launch
    box = nb.cells[2].source
    assert box.startswith(':::{admonition} Exercise: "alpha_bar from betas"')
    assert "# YOUR CODE HERE" in box and ":class: dit-exercise" in box
    exercise, check, loads = nb.cells[3:]
    assert exercise.metadata["tags"] == ["dit-exercise"] and check.metadata["tags"] == ["dit-check"]
    note, figure = check.outputs  # the death line and the False are gone, the figure stays
    assert "Check: &quot;" not in note.data["text/html"]
    assert 'Check: "alpha_bar from betas".' in note.data["text/html"]
    assert "Bonfire lit" in note.data["text/html"] and "hint(" not in json.dumps(check.outputs)
    assert figure.data == {"image/png": "AAAA"}
    assert loads.outputs == []  # <All keys matched successfully>


def test_a_printed_load_report_goes_also_from_a_longer_stream():
    cell = nbformat.v4.new_code_cell("print(model.load_state_dict(sd)); print(gap)")
    printed = "<All keys matched successfully>\n\nlargest difference: 0.00e+00\n"
    alone = "<All keys matched successfully>\n"
    cell.outputs = [nbformat.v4.new_output("stream", text=t) for t in (printed, alone)]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 14"), cell])
    for_the_page(nb, "14_new_game_plus.ipynb")
    (kept,) = nb.cells[-1].outputs  # the kernel may send the report alone or with what follows
    assert kept.text == "\nlargest difference: 0.00e+00\n"


def test_a_follow_up_cell_that_calls_check_loses_its_death_but_gains_no_note_when_silent():
    died = nbformat.v4.new_output("stream", name="stdout", text="drawn\nYou died: MyDiT: no.\n")
    loud = nbformat.v4.new_code_cell('check("14.mydit", a, b)\nprint("drawn")')
    loud.outputs = [died]
    silent = nbformat.v4.new_code_cell('check("14.mydit", a, b, quiet=True)')
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 14"), loud, silent])
    for_the_page(nb, "14_new_game_plus.ipynb")
    note, kept = nb.cells[2].outputs
    assert "dit-check-note" in note.data["text/html"] and kept.text == "drawn\n"
    assert nb.cells[3].outputs == [] and "tags" not in nb.cells[3].metadata


def test_a_passed_check_keeps_its_line_and_a_solution_says_so():
    nb = _course_notebook("Bonfire lit: alpha_bar from betas.\n")
    for_the_page(nb, "01_fog.ipynb", solved=True)
    assert "The solution is shown here" in nb.cells[2].source
    lit, figure = nb.cells[4].outputs
    assert lit.text == "Bonfire lit: alpha_bar from betas.\n" and "image/png" in figure.data


def test_the_index_lists_notebooks_by_their_real_numbers_under_their_acts():
    names = ["01_fog.ipynb", "14_new_game_plus.ipynb"]
    titles = {n: n[3:-6] for n in names}
    readme = (NOTEBOOKS / "README.md").read_text()
    text = index_page(names, titles, readme, solutions=False)
    assert "| 01 | [fog](01_fog.ipynb) | bury relics" in text
    assert "| 14 | [New Game+](14_new_game_plus.ipynb) |" in text and "| 02 |" not in text
    assert f"## {ACTS[0][0]}" in text and f"## {ACTS[4][0]}" in text
    assert f":caption: {ACTS[4][0]}\n\n14_new_game_plus\n" in text
    assert "[dit-mini/dit-mini](https://github.com/dit-mini/dit-mini)" in text


def test_every_notebook_of_the_course_has_an_act_and_the_acts_are_five():
    assert len(ACTS) == 5
    numbers = [n for _, members in ACTS for n in members]
    assert len(numbers) == len(set(numbers))
    assert all(act_of(name) != "More notebooks" for name in COURSE)


def write(path: Path, body: str) -> None:
    path.write_text(f"<!DOCTYPE html><html><body>{body}</body></html>")


def test_the_checker_finds_broken_links_missing_anchors_and_pages_without_a_picture(tmp_path):
    write(tmp_path / "index.html", '<a href="01_a.html">a</a> <a href="gone.html">x</a>')
    write(tmp_path / "glossary.html", '<h3 id="fid">FID</h3>')
    picture = '<img src="_images/a.png"> <a href="_static/x.css?digest=1">css</a>'
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "a.png").write_bytes(b"png")
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "x.css").write_text("")
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


TINY = [  # a course folder with one notebook: math, a figure, an exercise and its check
    (
        "markdown",
        "# 01 · Tiny: fog in one cell\n\nThe signal $\\sqrt{\\bar\\alpha_t}\\,x_0$ fades. "
        "Terms: [SNR](GLOSSARY.md#snr); the zephyrquokka lives here.",
    ),
    (
        "code",
        "import matplotlib.pyplot as plt\nfrom dit_mini.course.exercises import check\n"
        "from dit_mini.course.widgets import show\n"
        "figure, axes = plt.subplots()\naxes.plot([0, 1], [1, 0])\nshow(figure)",
    ),
    (
        "solution",
        "def alpha_bar_from_betas(betas):\n    # YOUR CODE HERE\n"
        '    raise NotImplementedError("exercise: write your code here")',
    ),
    ("grade", 'check("01.alpha_bar", alpha_bar_from_betas, lambda b: b, inputs=(1.0,))'),
]


def _tiny_course(folder: Path, raises: bool = False) -> Path:
    cells = []
    for kind, source in TINY:
        cell = (nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell)(
            source
        )
        if kind in ("solution", "grade"):
            cell.metadata["nbgrader"] = {kind: True}
        cells.append(cell)
    if raises:
        cells.append(nbformat.v4.new_code_cell("1 / 0"))
    folder.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=cells), folder / "01_tiny.ipynb")
    (folder / "GLOSSARY.md").write_text("# Glossary\n\n### SNR\nSignal over noise. Notebook 01.\n")
    (folder / "MEASUREMENTS.md").write_text("# Measurements\n\nNone yet.\n")
    return folder


@pytest.mark.slow
def test_a_tiny_course_builds_offline_with_search_math_and_launch_buttons(tmp_path):
    course, out = _tiny_course(tmp_path / "course"), tmp_path / "site"
    assert build_site(out, course, progress=lambda line: None) == []  # no Sphinx warning
    assert check_site(out) == []
    page = (out / "01_tiny.html").read_text()
    assert (
        "_static/mathjax/tex-chtml.js" in page and (out / "_static/mathjax/tex-chtml.js").exists()
    )
    assert not re.search(r"<script[^>]+src=\"https?://", page), "a script from the network"
    assert f'href="{COLAB}/01_tiny.ipynb"' in page  # the launch bar
    assert (
        "https://colab.research.google.com/github/dit-mini/dit-mini/blob/main/notebooks/01_tiny.ipynb"
        in page
    )
    assert "tag_dit-exercise" in page and "tag_dit-check" in page and "dit-check-note" in page
    assert all("You died" not in t and "hint(" not in t for t in _output_texts(page))
    assert re.search(r'<img[^>]+src="_images/', page), "the figure"
    assert "zephyrquokka" in (out / "searchindex.js").read_text()
    assert 'href="01_tiny.html"' in (out / "glossary.html").read_text()  # "Notebook 01" links
    index = (out / "index.html").read_text()
    assert "Act I: the fog" in index and 'href="01_tiny.html"' in index


def test_a_notebook_that_fails_is_one_line_and_exit_1(tmp_path, capsys):
    course = _tiny_course(tmp_path / "course", raises=True)
    assert main(["course", "site", str(tmp_path / "site"), "--solutions", str(course)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "01_tiny.ipynb failed while the site was built" in err


class _Outputs(HTMLParser):
    """The text of every cell output (div.cell_output) of a page."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self.depth = 0  # open divs inside the current output, 0 outside any

    def handle_starttag(self, tag, attrs):
        if tag != "div":
            return
        if self.depth:
            self.depth += 1
        elif "cell_output" in (dict(attrs).get("class") or "").split():
            self.depth = 1
            self.texts.append("")

    def handle_endtag(self, tag):
        if tag == "div" and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.texts[-1] += data


def _output_texts(page: str) -> list[str]:
    parser = _Outputs()
    parser.feed(page)
    return parser.texts


def test_the_output_reader_finds_what_a_page_prints():
    page = '<div class="cell_output docutils container"><div><pre>False</pre></div></div><p>x</p>'
    assert _output_texts(page) == ["False"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.runs_notebook(NOTEBOOKS / n)) for n in COURSE]
)
def test_every_learner_copy_runs_to_the_end_in_fast_mode(learner_run, name):
    """nbval's check of notebooks/NN.ipynb (every cell runs, FAST mode, grading off: unsolved
    checks say "not solved yet" and the notebook goes on), made on the run the site renders."""
    result = learner_run(name)
    assert not isinstance(result, Exception), str(result)


@pytest.mark.slow
def test_the_site_has_a_page_per_notebook_and_its_links_land(course_site):
    assert check_site(course_site) == []
    index = (course_site / "index.html").read_text()
    for name in COURSE:
        assert f'href="{name[:-6]}.html"' in index, f"the table of contents misses {name}"
        assert f"<td><p>{name[:2]}</p></td>" in index, f"the index misses the number of {name}"
    for title, _ in ACTS:
        assert title in index, f"the sidebar misses {title}"
    glossary = (course_site / "glossary.html").read_text()
    lines = (NOTEBOOKS / "GLOSSARY.md").read_text().splitlines()
    heads = [line[4:] for line in lines if line.startswith("### ")]
    for head in heads:
        assert f'id="{github_slug(head)}"' in glossary
    assert 'href="07_legendary_gear.html"' in glossary  # "Notebook 07" is a link
    assert (course_site / "searchindex.js").exists() and (course_site / "search.html").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", COURSE)
def test_every_notebook_page_shows_its_figures_and_reads_without_a_kernel(course_site, name):
    page = (course_site / f"{name[:-6]}.html").read_text()
    assert re.search(r'<img[^>]+src="_images/', page), f"{name}: no figure on its page"
    assert "VBox(children" not in page and "HBox(children" not in page, "a widget's raw repr"
    assert "Traceback" not in page
    outputs = _output_texts(page)
    assert outputs, f"{name}: no cell output found on the page"
    for text in outputs:
        for words in ("You died", "hint(", "All keys matched", "SOLUTION markers"):
            assert words not in text, f"{name}: an output says {text[:200]!r}"
        assert text.strip() not in ("True", "False"), f"{name}: a stray {text.strip()}"
    assert f'href="{COLAB}/{name}"' in page and f'href="{COLAB}/solutions/{name}"' in page
    assert 'href="index.html"' in page  # the sidebar's home link
