"""check(): pass and fail messages, hints, and that learner errors never escape."""

import numpy as np
import pytest
import torch

from dit_mini.course.exercises import FAIL_PREFIX, PASS_PREFIX, check, compare, hint


def test_values_pass_and_fail_with_a_reason(capsys):
    assert check("two", 2.0, 2)
    assert not check("pi", 3.0, 3.14159, hint="more digits")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{PASS_PREFIX}: two."
    assert out[1].startswith(f"{FAIL_PREFIX}: pi: expected 3.14159, got 3")
    assert out[1].endswith("Hint: more digits")


def test_tensors_compare_shape_then_values(capsys):
    x = torch.arange(6.0).reshape(2, 3)
    assert check("same", x + 1e-7, x)
    assert not check("transposed", x.T, x)
    assert not check("off", x + torch.tensor([[0, 0, 0], [0, 0.5, 0]]), x)
    assert check("numpy answer", x.numpy(), x)
    out = capsys.readouterr().out
    assert "expected shape (2, 3), got (3, 2)" in out
    assert "largest difference 0.5 at flat index 4" in out


def test_functions_are_run_on_inputs_against_a_reference(capsys):
    def reference(a, b):
        return a * b

    assert check(
        "mul", lambda a, b: b * a, reference, inputs=(torch.ones(3), torch.full((3,), 2.0))
    )
    assert check("kwargs", lambda a, b: a * b, 6, inputs={"a": 2, "b": 3})
    assert not check("cases", lambda a, b: a + b, reference, cases=[(2, 2), (2, 3)])
    assert "expected 6, got 5" in capsys.readouterr().out


def test_learner_errors_become_hints_never_exceptions(capsys):
    def stub(x):
        raise NotImplementedError("exercise: write your code here")

    def broken(x):
        return x @ torch.ones(5)

    assert not check("stub", stub, 1, inputs=(1,))
    assert not check("left at None", None, 3)
    assert not check("broken", broken, torch.ones(2), inputs=(torch.ones(2, 3),))
    assert not check("not callable", 3, 3, inputs=(1,))
    out = capsys.readouterr().out.splitlines()
    assert "not solved yet" in out[0] and "not solved yet" in out[1]
    assert out[2].startswith(f"{FAIL_PREFIX}: broken: your code raised RuntimeError")
    assert "expected a function" in out[3]


def test_predicates_and_structures(capsys):
    assert check("positive", 3, test=lambda v: v > 0)
    assert not check("even", 3, test=lambda v: v % 2 == 0 or "3 is odd")
    assert "3 is odd" in capsys.readouterr().out
    assert compare({"a": [1, 2.0]}, {"a": [1, 2.0]}) is None
    assert "item 1" in compare((1, 2), (1, 3))
    assert "keys" in compare({"a": 1}, {"b": 1})
    assert compare(np.array([1, 2]), np.array([1, 3])) == "the values differ"
    assert compare(torch.Size([2, 3]), (2, 3)) is None
    with pytest.raises(ValueError, match="needs the expected value"):
        check("misused", 1)


def test_named_exercises_nudge_then_hint(capsys, monkeypatch):
    from dit_mini.course import exercises
    from dit_mini.course.hints import EXERCISES

    monkeypatch.setattr(exercises, "_execution", lambda: None)  # every call is an attempt
    exercises.reset_results()
    known = EXERCISES["01.alpha_bar"]
    assert not check("01.alpha_bar", 1.0, 2.0)
    assert not check("01.alpha_bar", 1.0, 2.0)
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith(f"{FAIL_PREFIX}: {known.title}: expected 2")
    assert known.nudge in first and 'hint("01.alpha_bar")' in first and known.hint not in first
    assert known.hint in second
    assert hint("01.alpha_bar") == f"{known.title}: {known.nudge} Then: {known.hint}"
    with pytest.raises(ValueError, match="no exercise named '01.nope'; known: 01.alpha_bar"):
        hint("01.nope")


def test_results_per_exercise_and_grading_mode(capsys, monkeypatch):
    from dit_mini.course import exercises

    exercises.reset_results()
    monkeypatch.delenv("DIT_MINI_GRADING", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert check("t.x", 1, 1, part="one") and not check("t.x", 1, 2, part="two")
    assert check("t.y", 3, 3)
    record = exercises.results()
    assert (record["t.x"]["passed"], record["t.y"]["passed"]) == (False, True)
    assert [p["part"] for p in record["t.x"]["parts"]] == ["one", "two"]
    for env in ("DIT_MINI_GRADING", "NBGRADER_EXECUTION"):
        monkeypatch.setenv(env, "1" if env.startswith("DIT") else "autograde")
        assert exercises.grading_mode()
        with pytest.raises(AssertionError, match="You died: t.z"):
            check("t.z", 1, 2)
        assert check("t.z", 2, 2)  # passing checks never raise
        monkeypatch.delenv(env)
    assert not exercises.grading_mode() and not check("t.z", 1, 2)


def _solution_lines():
    """Every line of code between the SOLUTION markers of the solution notebooks."""
    from pathlib import Path

    nbformat = pytest.importorskip("nbformat")
    root = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"
    lines = set()
    for path in sorted(root.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            inside = False
            for line in cell.source.splitlines():
                if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
                    inside = "BEGIN" in line
                elif inside and cell.cell_type == "code":
                    code = line.split("#")[0].strip()
                    code = code.removeprefix("return ").strip()
                    if len(code) >= 12:  # shorter lines ("x = x0") are not an answer
                        lines.add(code)
    return lines


def test_no_hint_contains_solution_code():
    from dit_mini.course.hints import EXERCISES

    lines = _solution_lines()
    assert len(lines) > 60, "expected the solution notebooks' code"
    for known in EXERCISES.values():
        for text in (known.nudge, known.hint, known.title):
            leaks = [line for line in lines if line in text]
            assert not leaks, f"{known.name}: its texts contain solution code {leaks}"
    assert "torch.cumprod(1.0 - betas, dim=0)" in lines  # the detector sees code


def test_every_check_cell_names_a_registered_exercise_with_its_points():
    from pathlib import Path

    nbformat = pytest.importorskip("nbformat")
    from dit_mini.course.hints import EXERCISES
    from dit_mini.course.notebooks import check_names

    root = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"
    seen = []
    for path in sorted(root.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or "check(" not in cell.source:
                continue
            names = check_names(cell.source)
            assert all(n in EXERCISES and n[:2] == path.name[:2] for n in names), (path, names)
            meta = cell.metadata.get("nbgrader", {})
            if names:
                exercise = cell.metadata.get("dit_mini", {}).get("exercise")
                assert exercise == names[0], f"{path.name}: run dit-mini course tag"
                if cell.metadata["dit_mini"].get("follow_up"):
                    assert meta.get("grade") is False and meta.get("locked") is True
                    continue
                assert meta.get("points") == EXERCISES[names[0]].points
                seen.append(names[0])
    assert sorted(seen) == sorted(set(seen)), "an exercise is checked in two cells"
    unused = set(EXERCISES) - set(seen)
    assert not unused, f"registered but never checked: {sorted(unused)}"
