"""The course as a person sees it: every notebook run in JupyterLab in a real browser.

A JupyterLab server is started on 127.0.0.1 with a random port and token, serving a temporary copy
of notebooks/ (so nothing is written into the checkout), and Playwright drives Chromium (Debian's
/usr/bin/chromium, or the path in DIT_MINI_CHROMIUM). For every solution notebook (every figure
and every widget appears only when the exercises are solved): open it, Run All in FAST mode, and
check what the page shows:

- no error output in any cell (the kernel runs in grading mode, DIT_MINI_GRADING=1, as nbval
  runs the solutions: a failed check raises), and no error in the browser's console;
- every cell whose outputs hold a picture shows it: an <img> in the cell's output area that the
  browser decoded (naturalWidth > 0);
- every widget renders: no "Error displaying widget", and the output area of each interactive
  view holds a decoded picture;
- each slider, menu, row of toggle buttons, text box and quiz is moved once and the view
  changes (another picture, or another text).

A screenshot of each notebook (scrolled to its first figure, then to its first widget after it
moved) goes to DIT_MINI_ARTIFACTS/browser/ when that variable is set (CI keeps it). Without
Playwright or Chromium the tests skip, unless DIT_MINI_BROWSER=required (set by .ci/run).

Each test is marked `runs_notebook`: it checks all that nbval checks of that solution notebook,
so a session that selects it leaves nbval's run of the same notebook out (conftest.py at the
root), and every notebook runs once per environment; without a browser nbval runs them.

The widget version under test is the installed one: ipywidgets 8 with JupyterLab 4 in the main
environment; .ci/run's second environment runs notebooks 00 and 01 with Colab's ipywidgets 7.7.1
in JupyterLab 3.6 (jupyterlab_widgets 1.1, the front end built for ipywidgets 7; the page reads
the same). The classic Notebook 6.5 page was tried first: with ipywidgets 7.7.1 it cannot create
an Output widget ("Could not create a model", widgetsnbextension 3.6.10), which every slider view
of the course uses, and Colab does not use that page either.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "solutions"
SOLUTIONS = sorted(p.name for p in SOURCES.glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = os.environ.get("DIT_MINI_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("DIT_MINI_BROWSER") == "required"
RUN_TIMEOUT = 900  # seconds for one notebook's Run All (FAST mode: about a minute each)
CHROMIUM_ARGS = [  # the machine is offline: no background connections, no sandbox as root
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
SETTINGS = {  # the test's JupyterLab user settings: every cell in the page, no autosave, no news
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def _browser_ready() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set DIT_MINI_CHROMIUM)"
    return None


WHY_NOT = _browser_ready()
if WHY_NOT and REQUIRED:
    raise RuntimeError(f"DIT_MINI_BROWSER=required but {WHY_NOT}")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or ""),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of notebooks/: (base URL, token)."""
    home = tmp_path_factory.mktemp("lab")
    shutil.copytree(NOTEBOOKS, home / "notebooks", ignore=shutil.ignore_patterns(".ipynb_*"))
    settings = home / "settings"
    for name, values in SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings))
    # Grading mode, as nbval runs the solutions: a failed check raises (an error output)
    env.update(JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), DIT_MINI_FAST="1")
    env.update(DIT_MINI_GRADING="1")
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed at teardown
    app = ["lab", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}"]
    app += ["--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    app += [f"--ServerApp.root_dir={home / 'notebooks'}", "--LabApp.expose_app_in_browser=True"]
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", *app, "--no-browser", "--allow-root"],  # CI runs as root
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                log.close()
                why = (home / "server.log").read_text()
                raise RuntimeError(f"JupyterLab did not start:\n{why}") from None
            time.sleep(0.5)
    yield base, token
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _console_error(msg, errors: list[str]) -> None:
    """Keep a console message of type error, with where it came from. The one kind let through:
    MathJax 2 (JupyterLab 3's) probing for fonts, which it then loads in another format."""
    if msg.type != "error":
        return
    text = f"{msg.text} ({msg.location.get('url', '?')})"
    mathjax_font_probe = "/MathJax/fonts/" in text or (
        "font at 'about:blank'" in text or text.endswith("(about:blank)")
    )
    if not mathjax_font_probe:
        errors.append(f"console: {text}")


def _shut_down_kernels(base: str, token: str) -> None:
    """End every session of the server (a page closed with unsaved outputs keeps its kernel)."""
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=10) as reply:
        sessions = json.load(reply)
    for session in sessions:
        url = f"{base}/api/sessions/{session['id']}?token={token}"
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=30).close()


def _artifacts() -> Path | None:
    folder = os.environ.get("DIT_MINI_ARTIFACTS")
    if not folder:
        return None
    path = Path(folder) / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Frontend:
    """How the test reads and drives the page: JavaScript and CSS selectors."""

    url: str  # the notebook's address, {name} and {token} filled in
    ready: str  # JS: true once the notebook is open and its kernel is idle
    run_all: str  # JS: Run All
    state: str  # JS: {kernel, cells: [{index, count, outputs, source}]} of the code cells
    idle: str  # JS: true while the kernel is idle
    cells: str  # CSS: every cell, in order (the indices of `state`)
    outputs: str  # CSS, inside a cell: its output area


LAB = Frontend(  # `window.jupyterapp`: exposed by --LabApp.expose_app_in_browser
    url="/lab/tree/solutions/{name}?reset&token={token}",
    ready="""() => {
      const p = window.jupyterapp && window.jupyterapp.shell.currentWidget;
      const k = p && p.sessionContext && p.sessionContext.session
        && p.sessionContext.session.kernel;
      return !!k && k.status === 'idle';
    }""",
    run_all="() => window.jupyterapp.commands.execute('notebook:run-all-cells')",
    state="""() => {
      const panel = window.jupyterapp.shell.currentWidget;
      const kernel = panel.sessionContext.session.kernel;
      const cells = panel.content.widgets.map((cell, index) => {
        const m = cell.model;
        if (m.type !== 'code') return null;
        const outputs = [];
        for (let i = 0; i < m.outputs.length; i++) outputs.push(m.outputs.get(i).toJSON());
        return {index, count: m.executionCount, outputs, source: m.sharedModel.getSource()};
      }).filter(c => c !== null);
      return {kernel: kernel ? kernel.status : 'none', cells};
    }""",
    idle="""() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status
      === 'idle'""",
    cells=".jp-Notebook .jp-Cell",
    outputs=".jp-Cell-outputArea",
)


def _wait_for_run(page, deadline: float) -> dict:
    """Poll until every code cell ran and the kernel is idle; fail fast on an error output."""
    while True:
        state = page.evaluate(LAB.state)
        if state is not None:
            for cell in state["cells"]:
                errors = [o for o in cell["outputs"] if o.get("output_type") == "error"]
                if errors:
                    e = errors[0]
                    pytest.fail(f"cell {cell['index']} raised {e['ename']}: {e['evalue']}")
            done = all(c["count"] is not None for c in state["cells"])
            if done and state["kernel"] == "idle":
                return state
        if time.monotonic() > deadline:
            waiting = [c["index"] for c in (state or {}).get("cells", []) if c["count"] is None]
            pytest.fail(f"Run All did not finish in {RUN_TIMEOUT} s; cells not run: {waiting[:5]}")
        time.sleep(1)


def _decoded_images(cell) -> list[int]:
    """naturalWidth of every <img> in the output area of a cell (a Playwright locator)."""
    return cell.locator(f"{LAB.outputs} img").evaluate_all(
        "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"
    )


def _signature(view) -> str:
    """What a person sees of a widget view: its pictures' sources and its text."""
    return view.evaluate(
        "v => Array.from(v.querySelectorAll('img')).map(i => i.src.length + ':' + i.src.slice(-64))"
        ".join('|') + '#' + v.innerText"
    )


def _changes(page, view, act, what: str) -> None:
    """Do `act` and wait until the view shows something else."""
    before = _signature(view)
    act()
    deadline = time.monotonic() + 120
    while _signature(view) == before:
        if time.monotonic() > deadline:
            pytest.fail(f"moving the {what} did not change the view")
        page.wait_for_timeout(250)
    page.wait_for_function(LAB.idle, timeout=120_000)


def _move_controls(page, view, label: str) -> list[str]:
    """Move every slider, menu, toggle-button row, text box and quiz of one widget view once;
    returns what moved."""
    moved = []
    for i in range(view.locator(".widget-slider").count()):
        slider = view.locator(".widget-slider").nth(i)

        def slide(slider=slider):  # to one end of the range, the other if it sits there already
            handle = slider.locator(".noUi-handle, .ui-slider-handle").first
            readout = slider.locator(".widget-readout").first
            before = readout.inner_text()
            handle.focus()
            handle.press("End")
            page.wait_for_timeout(500)
            if readout.inner_text() == before:
                handle.press("Home")

        _changes(page, view, slide, f"slider {i} of {label}")
        moved.append("slider")
    for i in range(view.locator("select").count()):
        menu = view.locator("select").nth(i)
        options = menu.locator("option").evaluate_all("os => os.map(o => o.value)")
        current = menu.input_value()
        other = next(v for v in reversed(options) if v != current)
        _changes(page, view, lambda m=menu, o=other: m.select_option(o), f"menu {i} of {label}")
        moved.append("menu")
    for i in range(view.locator(".widget-toggle-buttons").count()):
        choice = view.locator(".widget-toggle-buttons").nth(i).locator("button:not(.mod-active)")
        _changes(page, view, choice.first.click, f"toggle buttons {i} of {label}")
        moved.append("toggle buttons")
    for i in range(view.locator("input[type=text]").count()):
        box = view.locator("input[type=text]").nth(i)

        def type_caption(box=box):
            box.fill("a gold ring growing")  # notebook 13: a caption it can film
            box.press("Enter")

        _changes(page, view, type_caption, f"text box {i} of {label}")
        moved.append("text box")
    if view.locator("input[type=radio]").count():

        def answer(view=view):
            view.locator("input[type=radio]").first.check()
            view.locator("button").first.click()

        _changes(page, view, answer, f"quiz of {label}")
        moved.append("quiz")
    return moved


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.runs_notebook(SOURCES / n)) for n in SOLUTIONS]
)
def test_the_notebook_runs_in_the_browser_and_shows_what_it_should(lab, chromium, name):
    base, token = lab
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    console_errors = []
    page.on("pageerror", lambda error: console_errors.append(f"page error: {error}"))
    page.on("console", lambda msg: _console_error(msg, console_errors))
    try:
        page.goto(base + LAB.url.format(name=name, token=token))
        page.wait_for_function(LAB.ready, timeout=120_000)
        page.evaluate(LAB.run_all)
        state = _wait_for_run(page, time.monotonic() + RUN_TIMEOUT)
        page.wait_for_timeout(1000)  # the last outputs reach the DOM
        _check_figures_and_widgets(page, state, name)
    except BaseException:
        if _artifacts():  # what the page showed when the check failed
            page.screenshot(path=str(_artifacts() / f"{name[:-6]}-failed.png"), full_page=True)
        raise
    finally:
        page.close()
        _shut_down_kernels(base, token)
    assert not console_errors, f"{name}: the browser's console reported errors: {console_errors}"


def _check_figures_and_widgets(page, state, name) -> None:
    cells = page.locator(LAB.cells)
    artifacts = _artifacts()
    first_figure = None
    views = []
    for cell_state in state["cells"]:
        cell = cells.nth(cell_state["index"])
        pictures = sum(
            "image/png" in o.get("data", {}) or "image/gif" in o.get("data", {})
            for o in cell_state["outputs"]
        )
        widgets = sum(
            "application/vnd.jupyter.widget-view+json" in o.get("data", {})
            for o in cell_state["outputs"]
        )
        decoded = _decoded_images(cell)
        where = f"{name} cell {cell_state['index']}"
        if pictures:
            assert sum(w > 0 for w in decoded) >= pictures, f"{where}: a figure is not shown"
            first_figure = first_figure or cell
        if widgets:
            assert "Error displaying widget" not in cell.inner_text(), f"{where}: widget error"
            rendered = cell.locator(".jupyter-widgets.widget-container, .widget-container")
            cell.locator(".jupyter-widgets").filter(visible=True).first.wait_for(timeout=60_000)
            assert rendered.count() >= widgets, f"{where}: a widget did not render"
            for area in range(cell.locator(".widget-output").count()):
                output = cell.locator(".widget-output").nth(area)
                shown = output.locator("img").evaluate_all("i => i.map(x => x.naturalWidth)")
                source = cell_state["source"]
                if "interactive_view" in source or "interactive_output" in source:
                    assert any(w > 0 for w in shown), f"{where}: the widget's picture is missing"
            views.append((cell, where))
    assert first_figure is not None, f"{name}: no figure at all"
    if artifacts:
        first_figure.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / f"{name[:-6]}.png"))
    moved = []
    for cell, where in views:
        view = cell.locator(LAB.outputs).first
        view.scroll_into_view_if_needed()
        moved += _move_controls(page, view, where)
    if views and artifacts:
        views[0][0].scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / f"{name[:-6]}-widget.png"))
    if views:
        assert moved, f"{name}: widgets were shown but none could be moved"
