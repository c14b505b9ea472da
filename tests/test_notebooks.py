"""Static checks of the course notebooks (nothing is executed here; nbval runs them in CI).

The sources with solutions live in notebooks/solutions/; the learners open notebooks/NN_*.ipynb,
built from them by `dit-mini course student notebooks/solutions notebooks`.

Every notebook in notebooks/ must: be stored without outputs; start with a Colab install cell
whose URL is pyproject's [project.urls] Repository; hold at least two exercises, each followed by
a check( call; wire at least one ipywidgets control and draw a static copy of it; have a "What you
should see" box and a "Where the analogy breaks" box; define no nn.Module outside an exercise
cell (building one may be the exercise, as in notebook 14). Every Colab badge in
the READMEs must point at an existing notebook of that repository. Student versions keep every
check cell and contain no solution code.
"""

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))  # the sources
STUDENT = sorted((ROOT / "notebooks").glob("*.ipynb"))  # the learners' copies, built from them
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
WIDGETS = ("IntSlider", "FloatSlider", "Dropdown", "ToggleButtons", "Checkbox", "Text(")
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^\s)\"'\]]+")


def repository_url() -> str:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"]


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def release_tag() -> str:
    """The tag the Colab cells pin: v + pyproject's version (the README's tag convention)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(ROOT / "pyproject.toml", "rb") as f:
        return "v" + tomllib.load(f)["project"]["version"]


def problems(nb, repo: str, tag: str | None = None) -> list[str]:
    """Every way the notebook `nb` breaks the course's notebook rules (empty when it is fine)."""
    found = []
    pin = f"{repo}@{tag or release_tag()}"
    cells = code_cells(nb)
    if any(c.outputs or c.execution_count is not None for c in cells):
        found.append("stored with outputs or execution counts")
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        found.append("kernel is not python3")
    install = cells[0].source if cells else ""
    pip_lines = [line for line in install.splitlines() if "pip install" in line]
    if 'if "google.colab" in sys.modules' not in install or not pip_lines:
        found.append("first code cell is not the Colab install cell")
    for line in pip_lines:
        if not line.startswith((" ", "\t")):
            found.append(f"pip runs outside the Colab test: {line.strip()!r}")
        if f"git+{repo}" not in line or (line.split("git+")[-1].rstrip("\"' ") != pin):
            found.append(f"install URL is not the repository {pin}: {line.strip()!r}")
        if "[" in line.split("git+")[0]:
            found.append(f"the Colab cell installs an extra (Colab has its own Jupyter): {line!r}")
    exercises = [i for i, c in enumerate(cells) if BEGIN in c.source and END in c.source]
    if len(exercises) < 2:
        found.append(f"{len(exercises)} exercise cell(s); need at least 2")
    for i in exercises:
        if i + 1 >= len(cells) or "check(" not in cells[i + 1].source:
            found.append(f"exercise in code cell {i} is not followed by a check( call")
    widget_cells = [c.source for c in cells if any(f"ipw.{w}" in c.source for w in WIDGETS)]
    if not widget_cells:
        found.append("no ipywidgets control (import ipywidgets as ipw; ipw.IntSlider(...))")
    for source in widget_cells:
        if "show(" not in source:
            found.append("a widget cell draws no static copy with show(...)")
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown").lower()
    for box in ("what you should see", "where the analogy breaks"):
        if box not in text:
            found.append(f"no {box!r} box")
    # A solution cell may define an nn.Module when building it is the exercise (notebook 14).
    if any(re.search(r"nn\.Module\b", c.source) for c in cells if BEGIN not in c.source):
        found.append("defines or names an nn.Module outside an exercise cell")
    return found


def badge_problems(readme: Path, repo: str) -> list[str]:
    """Colab badges in `readme` that do not point at notebooks/<file> of `repo` on main."""
    owner_repo = repo.removeprefix("https://github.com/").rstrip("/")
    prefix = f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/"
    found = []
    for url in BADGE.findall(readme.read_text()):
        name = url.removeprefix(prefix)
        if not url.startswith(prefix) or not (ROOT / "notebooks" / name).is_file():
            found.append(f"{readme.name}: badge {url} is not {prefix}<an existing notebook>")
    return found


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2, "expected the course notebooks in notebooks/solutions/"
    assert [p.name for p in STUDENT] == [p.name for p in NOTEBOOKS], (
        "every solution notebook needs its learner copy in notebooks/: "
        "run `dit-mini course student notebooks/solutions notebooks`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_learner_copy_is_up_to_date(path, tmp_path):
    from dit_mini.course.notebooks import student_notebook

    fresh = student_notebook(path, ROOT / "notebooks" / path.name)  # in memory
    shipped = nbformat.read(ROOT / "notebooks" / path.name, as_version=4)

    def content(nb):  # everything but cell ids, which nbformat may renumber
        return [(c.cell_type, c.source, dict(c.metadata)) for c in nb.cells], dict(nb.metadata)

    assert content(shipped) == content(fresh), (
        f"notebooks/{path.name} is out of date with notebooks/solutions/{path.name}: "
        "run `dit-mini course student notebooks/solutions notebooks`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_rules(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), "name notebooks NN_slug.ipynb"
    assert problems(nb, repository_url()) == []


def test_rule_checker_catches_a_bad_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            '!pip install "dit-mini[notebooks] @ git+https://github.com/x/y"'
        ),
        nbformat.v4.new_code_cell("x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION"),
        nbformat.v4.new_code_cell("class Net(nn.Module):\n    pass"),
    ]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hi")]
    found = "\n".join(problems(nb, "https://github.com/dit-mini/dit-mini"))
    for expected in (
        "outputs",
        "python3",
        "install cell",
        "outside the Colab",
        "install URL",
        "installs an extra",
        "1 exercise",
        "not followed by a check",
        "no ipywidgets",
        "what you should see",
        "analogy breaks",
        "nn.Module",
    ):
        assert expected in found


def test_an_exercise_may_build_an_nn_module():
    nb = nbformat.v4.new_notebook()
    building = f"class Mine(nn.Module):\n    def forward(self, x):\n        {BEGIN}\n"
    nb.cells = [nbformat.v4.new_code_cell(building + f"        return x\n        {END}")]
    assert not [p for p in problems(nb, "https://github.com/x/y") if "nn.Module" in p]
    nb.cells.append(nbformat.v4.new_code_cell("helper = nn.Module()"))
    assert [p for p in problems(nb, "https://github.com/x/y") if "nn.Module" in p]


def test_readme_badges_point_at_the_notebooks(tmp_path):
    repo = repository_url()
    for readme in (ROOT / "README.md", ROOT / "notebooks" / "README.md"):
        if readme.is_file():
            assert badge_problems(readme, repo) == []
    bad = tmp_path / "README.md"
    good = f"https://colab.research.google.com/github/dit-mini/dit-mini/blob/main/notebooks/{NOTEBOOKS[0].name}"
    wrong = "https://colab.research.google.com/github/other/repo/blob/main/notebooks/01_fog.ipynb"
    missing = good.replace(NOTEBOOKS[0].name, "99_nothing.ipynb")
    bad.write_text(f"[![a]({good})]({good}) [b]({wrong}) [c]({missing})")
    assert len(badge_problems(bad, "https://github.com/dit-mini/dit-mini")) == 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_version_keeps_checks_and_hides_solutions(path, tmp_path):
    from dit_mini.course.notebooks import make_student_notebook

    solution = nbformat.read(path, as_version=4)
    student = nbformat.read(make_student_notebook(path, tmp_path / path.name), as_version=4)
    assert len(student.cells) == len(solution.cells)
    for mine, theirs in zip(solution.cells, student.cells):
        assert BEGIN not in theirs.source and END not in theirs.source
        if "check(" in mine.source and BEGIN not in mine.source:
            assert theirs.source == mine.source, "check cells must be kept as they are"
        if BEGIN not in mine.source:
            continue
        regions = re.findall(rf"{BEGIN}\n(.*?)\n\s*{END}", mine.source, flags=re.S)
        for line in "\n".join(regions).splitlines():
            code = line.split("#")[0].strip()
            if code:
                assert code not in theirs.source, f"solution line {code!r} leaked"
        assert "NotImplementedError" in theirs.source or "= None" in theirs.source


def test_colab_cell_pins_the_release_tag():
    good = nbformat.v4.new_notebook()
    repo = "https://github.com/dit-mini/dit-mini"
    install = (
        'import sys\n\nif "google.colab" in sys.modules:\n    !pip install -q "dit-mini @ git+{}"'
    )
    good.cells = [nbformat.v4.new_code_cell(install.format(f"{repo}@v9.9.9"))]
    assert not [p for p in problems(good, repo, "v9.9.9") if "install" in p]
    good.cells[0].source = install.format(repo)  # unpinned: a later push changes the course
    assert [p for p in problems(good, repo, "v9.9.9") if "install URL" in p]
    readme = (ROOT / "README.md").read_text()
    assert f"@{release_tag()}" in readme, "the README states the tag convention"
