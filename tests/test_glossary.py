"""notebooks/GLOSSARY.md: every anchor a notebook links to exists, and every notebook links it."""

import re
from pathlib import Path

import nbformat
import pytest

from dit_mini.course.site import github_slug as slug  # the site renders the same anchors

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
GLOSSARY = NOTEBOOKS / "GLOSSARY.md"
LINK = re.compile(r"\]\(GLOSSARY\.md#([^)\s]*)\)")


def anchors(text: str) -> list[str]:
    return [slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("### ")]


def test_slug_follows_github():
    assert slug(" MiB and MB") == "mib-and-mb"
    assert slug("U-Net") == "u-net"
    assert slug("KL divergence") == "kl-divergence"


def test_glossary_anchors_are_unique():
    found = anchors(GLOSSARY.read_text())
    assert len(found) >= 40
    assert len(found) == len(set(found)), "two glossary entries share an anchor"


def notebook_paths():
    return sorted(NOTEBOOKS.glob("solutions/[01]*.ipynb")) + sorted(NOTEBOOKS.glob("[01]*.ipynb"))


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_glossary_link_of_a_notebook_lands_on_an_entry(path):
    known = set(anchors(GLOSSARY.read_text()))
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    linked = LINK.findall(text)
    assert linked, f"{path.name} never links the glossary"
    missing = sorted(set(linked) - known)
    assert not missing, f"{path.name} links glossary anchors that do not exist: {missing}"


def test_a_broken_anchor_is_caught():
    assert LINK.findall("see [FID](GLOSSARY.md#fidd).") == ["fidd"]
    assert "fidd" not in set(anchors(GLOSSARY.read_text()))


MEASUREMENTS = NOTEBOOKS / "MEASUREMENTS.md"
MEASURED = re.compile(r"\]\(MEASUREMENTS\.md#([^)\s]*)\)")


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_measurement_link_lands_on_a_section(path):
    sections = {
        slug(line.lstrip("#"))
        for line in MEASUREMENTS.read_text().splitlines()
        if line.startswith("## ")
    }
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    missing = sorted(set(MEASURED.findall(text)) - sections)
    assert not missing, f"{path.name} links MEASUREMENTS.md sections that do not exist: {missing}"
