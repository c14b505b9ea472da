"""Every course notebook ends with a recap, three self-checking quiz questions and the next link."""

import ast
import re
from pathlib import Path

import nbformat
import pytest

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"
NOTEBOOKS = sorted(SOLUTIONS.glob("[01][0-9]_*.ipynb"))
NOTEBOOKS = [p for p in NOTEBOOKS if int(p.name[:2]) <= 13]  # 14 is the finale: no next one


def quiz_calls(source: str) -> list[ast.Call]:
    tree = ast.parse(source)
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "quiz"
    ]


def test_every_course_notebook_is_checked():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(14)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_ends_with_recap_quiz_and_next_link(path):
    cells = nbformat.read(path, as_version=4).cells
    recaps = [
        i for i, c in enumerate(cells) if c.source.startswith("## Recap: what you can now do")
    ]
    assert len(recaps) == 1, f"{path.name} needs one recap cell"
    bullets = re.findall(r"^- ", cells[recaps[0]].source, flags=re.M)
    assert 3 <= len(bullets) <= 5, f"{path.name}: the recap has {len(bullets)} bullets"
    calls = [
        call for c in cells[recaps[0] :] if c.cell_type == "code" for call in quiz_calls(c.source)
    ]
    assert len(calls) == 3, f"{path.name} has {len(calls)} quiz questions after the recap"
    for call in calls:
        question, options = (ast.literal_eval(arg) for arg in call.args[:2])
        answer = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "answer"))
        why = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "why"))
        assert question.endswith(("?", ":")) and why, f"{path.name}: {question!r}"
        assert 0 <= answer < len(options) and len(set(options)) == len(options) >= 3
    last = cells[-1]
    link = re.fullmatch(r"\*\*Next:\*\* \[[^\]]+\]\(([^)]+\.ipynb)\)", last.source.strip())
    assert last.cell_type == "markdown" and link, f"{path.name} must end with the next link"
    number = int(path.name[:2]) + 1
    assert link.group(1).startswith(f"{number:02d}_")
    if number <= 13:
        assert (SOLUTIONS / link.group(1)).exists(), f"{path.name} links a missing {link.group(1)}"


def test_a_notebook_without_quiz_is_caught():
    assert quiz_calls("print('no quiz here')") == []
    assert len(quiz_calls("quiz('a?', ['x', 'y'], answer=0, why='w')")) == 1
