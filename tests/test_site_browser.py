"""The course site as a reader sees it: every page in Chromium, served over 127.0.0.1.

The site is the session's one build (`course_site`, tests/conftest.py: every learner notebook
executed in FAST mode, then Sphinx). A small HTTP server on a random port serves it and
Playwright drives Debian's Chromium with the launch settings of tests/test_browser.py. Checked:

- every page (index, glossary, measurements, search, every notebook) loads with no error in the
  browser's console and no failed request: the site needs nothing from the network;
- math is typeset by the site's own MathJax: no `$...$` or `\\(...\\)` left in the text of a
  page, and a page with math shows MathJax's output;
- the search page finds a term that only a late notebook uses ("tubelet", notebook 13);
- each notebook page's launch buttons (the page's own bar and the theme's launch menu) open the
  learner's copy in Colab (notebooks/NN_name.ipynb, not the solution);
- at 390 px (a phone) no page scrolls sideways;
- the dark theme is applied when the reader's system asks for it.

Screenshots (desktop and 390 px, light and dark) go to DIT_MINI_ARTIFACTS/site-browser/ when that
variable is set (CI keeps them). Without Playwright or Chromium the tests skip, unless
DIT_MINI_BROWSER=required (set by .ci/run).
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, REQUIRED, WHY_NOT, _console_error

from dit_mini.course.site import NOTEBOOKS
from dit_mini.course.site_book import COLAB

COURSE = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
PAGES = ["index.html", "glossary.html", "measurements.html", *(n[:-6] + ".html" for n in COURSE)]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
TYPESET = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  return document.querySelectorAll('mjx-container').length;
}"""
RAW_MATH = """() => {
  const article = document.querySelector('article') || document.body;
  const copy = article.cloneNode(true);
  const skip = 'pre, code, .highlight, mjx-container, script, style';
  copy.querySelectorAll(skip).forEach(e => e.remove());
  const text = copy.innerText;
  const found = text.match(/\\$[^$\\n]{1,200}\\$|\\\\\\([^)]{1,200}\\\\\\)/);
  return found ? found[0] : null;
}"""
SIDEWAYS = """() => {
  const root = document.scrollingElement || document.documentElement;
  return root.scrollWidth - root.clientWidth;
}"""

if WHY_NOT and REQUIRED:
    raise RuntimeError(f"DIT_MINI_BROWSER=required but {WHY_NOT}")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no line per request in the test's output
        pass


@pytest.fixture(scope="module")
def served(course_site):
    """The session's site served on 127.0.0.1 (a random port): its base URL."""
    handler = functools.partial(_Quiet, directory=str(course_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _artifacts() -> Path | None:
    folder = os.environ.get("DIT_MINI_ARTIFACTS")
    if not folder:
        return None
    path = Path(folder) / "site-browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _bad_reply(reply, errors: list[str]) -> None:
    if reply.status >= 400:
        errors.append(f"HTTP {reply.status}: {reply.url}")


def _open(browser, url: str, viewport: dict, scheme: str = "light"):
    """A fresh page at `url`, MathJax done; returns (page, context, errors)."""
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("console", lambda msg: _console_error(msg, errors))
    page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))
    page.on("response", lambda reply: _bad_reply(reply, errors))
    page.goto(url, wait_until="load")
    page.evaluate(TYPESET)
    return page, context, errors


@pytest.mark.parametrize("name", PAGES)
def test_every_page_loads_typesets_its_math_and_fits_a_phone(served, browser, name):
    page, context, errors = _open(browser, served + name, PHONE)
    try:
        assert page.locator("article").count() == 1, f"{name}: no article"
        raw = page.evaluate(RAW_MATH)
        assert raw is None, f"{name}: math left as source: {raw!r}"
        sideways = page.evaluate(SIDEWAYS)
        assert sideways <= 1, f"{name}: at 390 px the page scrolls sideways by {sideways} px"
        if _artifacts() and name in ("index.html", "glossary.html", "01_fog.html"):
            page.screenshot(path=str(_artifacts() / f"{name[:-5]}-390.png"))
    finally:
        context.close()
    assert not errors, f"{name}: the browser reported {errors}"


def test_math_is_typeset_by_the_sites_own_mathjax(served, browser):
    page, context, errors = _open(browser, served + "01_fog.html", DESKTOP)
    try:
        assert page.evaluate(TYPESET) > 10, "notebook 01's equations are not typeset"
        src = page.evaluate(
            "() => window.MathJax && document.querySelector('#MathJax-script, "
            'script[src*="mathjax"]\').src'
        )
        assert src.startswith(served + "_static/mathjax/"), f"MathJax came from {src}"
    finally:
        context.close()
    assert not errors, errors


def test_search_finds_a_term_of_a_late_notebook(served, browser):
    page, context, errors = _open(browser, served + "search.html?q=tubelet", DESKTOP)
    try:
        results = page.locator("#search-results li a")
        results.first.wait_for(timeout=30_000)
        hrefs = results.evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert any(h.startswith("13_mastering_the_art.html") for h in hrefs), hrefs
        if _artifacts():
            page.screenshot(path=str(_artifacts() / "search-tubelet.png"))
    finally:
        context.close()
    assert not errors, errors


@pytest.mark.parametrize("name", COURSE)
def test_the_launch_buttons_open_the_learners_copy(served, browser, name):
    page, context, errors = _open(browser, served + name[:-6] + ".html", DESKTOP)
    try:
        learner = f"{COLAB}/{name}"
        assert page.locator("a.dit-launch-colab").get_attribute("href") == learner
        assert page.locator("a.dit-launch-solution").get_attribute("href") == (
            f"{COLAB}/solutions/{name}"
        )
        menu = page.locator(".dropdown-launch-buttons a[href*='colab.research.google.com']")
        assert menu.first.get_attribute("href") == learner, "the theme's launch menu"
        binder = page.locator("a.dit-launch-binder").get_attribute("href")
        assert binder.endswith(f"urlpath=lab/tree/notebooks/{name}")
    finally:
        context.close()
    assert not errors, errors


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_light_and_dark_at_desktop_and_phone_width(served, browser, scheme, width):
    page, context, errors = _open(browser, served + "14_new_game_plus.html", width, scheme)
    try:
        mode = page.evaluate("() => document.documentElement.dataset.theme")
        assert mode == scheme, f"the {scheme} theme is not applied ({mode})"
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        channels = [int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]]
        assert (sum(channels) < 200) == (scheme == "dark"), f"{scheme}: background {background}"
        if _artifacts():
            kind = "desktop" if width is DESKTOP else "390"
            page.screenshot(path=str(_artifacts() / f"14-{kind}-{scheme}.png"))
            page.locator(".tag_dit-check").first.scroll_into_view_if_needed()
            page.screenshot(path=str(_artifacts() / f"14-{kind}-{scheme}-check.png"))
    finally:
        context.close()
    assert not errors, errors
