"""check(): pass and fail messages, hints, and that learner errors never escape."""

import numpy as np
import pytest
import torch

from dit_mini.course.exercises import FAIL_PREFIX, PASS_PREFIX, check, compare, hint


def test_values_pass_and_fail_with_a_reason(capsys):
    assert check("two", 2, 2) and check("np two", np.int64(2), 2) and check("t", torch.tensor(2), 2)
    assert check("float", np.float32(2.0), 2.0) and check("bool", np.bool_(True), True)
    assert not check("two float", 2.0, 2) and not check("one for True", 1, True)
    assert not check("pi", 3.0, 3.14159, hint="more digits")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{PASS_PREFIX}: two."
    assert "two float: your answer 2.0 is a float but the answer is a whole number" in out[5]
    assert "one for True: expected True or False, got 1" in out[6]
    assert out[7].startswith(f"{FAIL_PREFIX}: pi: expected 3.14159, got 3")
    assert out[7].endswith("Hint: more digits")


def test_tensors_compare_shape_then_values(capsys):
    x = torch.arange(6.0).reshape(2, 3)
    assert check("same", x + 1e-7, x)
    assert not check("transposed", x.T, x)
    assert not check("off", x + torch.tensor([[0, 0, 0], [0, 0.5, 0]]), x)
    assert check("numpy answer", x.numpy(), x)
    out = capsys.readouterr().out
    assert "expected shape (2, 3), got (3, 2)" in out
    assert "the first wrong value is at index [1, 1] (expected 4, got 4.5); 1 of 6" in out
    assert "only at first-axis index 1 (of 0..1); largest difference 0.5" in out
    named = compare(x + torch.tensor([[0, 0, 0], [0, 0.5, 0]]), x, axes=("image", "token"))
    assert "at image 1, token 1 (expected 4" in named and "only at image 1 (of 0..1)" in named
    assert "at token 0 (expected" in compare(x[0] + 1, x[0], axes=("image", "token"))
    assert "at 0 on axis 0, image 0, token 0" in compare(
        x[None] + 1, x[None], axes=("a", "b")[:0] or ("image", "token")
    )


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
    assert "`# YOUR CODE HERE`" in out[0] and "SOLUTION" not in out[0]
    assert out[2].startswith(f"{FAIL_PREFIX}: broken: your code raised RuntimeError")
    assert "expected a function" in out[3]


def test_predicates_and_structures(capsys):
    assert check("positive", 3, test=lambda v: v > 0)
    assert not check("even", 3, test=lambda v: v % 2 == 0 or "3 is odd")
    assert "3 is odd" in capsys.readouterr().out
    assert compare({"a": [1, 2.0]}, {"a": [1, 2.0]}) is None
    assert "item 1" in compare((1, 2), (1, 3))
    assert "keys" in compare({"a": 1}, {"b": 1})
    assert compare(np.array([1, 2]), np.array([1, 3])).startswith("values differ: the first wrong")
    assert compare(torch.Size([2, 3]), (2, 3)) is None
    with pytest.raises(ValueError, match="needs the expected value"):
        check("misused", 1)


def test_named_exercises_nudge_then_hint_step_by_step(capsys, monkeypatch):
    from dit_mini.course import exercises
    from dit_mini.course.hints import EXERCISES

    monkeypatch.setattr(exercises, "_execution", lambda: None)  # every call is an attempt
    exercises.reset_results()
    known = EXERCISES["01.alpha_bar"]
    assert len(known.hints) >= 2
    assert not check("01.alpha_bar", 1.0, 2.0)
    assert not check("01.alpha_bar", 1.0, 2.0)
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith(f"{FAIL_PREFIX}: {known.title}: expected 2")
    assert known.nudge in first and 'hint("01.alpha_bar") shows hint 2 of' in first
    assert known.hints[1] not in first and known.nudge not in second
    texts = [hint("01.alpha_bar") for _ in range(len(known.hints) + 1)]
    n = len(known.hints)
    for step, text in enumerate(texts[:-1], start=2):
        if step <= n:
            assert text.startswith(f"{known.title}, hint {step} of {n}")
            assert known.hints[step - 1] in text
    assert texts[-1].endswith(known.hints[-1]) and "(the last hint)" in texts[-1]
    exercises.reset_results()
    assert hint("01.alpha_bar").endswith(f"hint 1 of {n}: {known.nudge}")  # asked before a try
    with pytest.raises(ValueError, match="no exercise named '01.nope'; known: 01.alpha_bar"):
        hint("01.nope")


def test_exercise_data_loads_from_a_folder_and_names_its_problems(tmp_path):
    from dit_mini.course.hints import EXERCISES, exercises_dir, load_exercises

    assert exercises_dir().name == "exercises" and len(EXERCISES) >= 45
    good = '[[exercise]]\nname = "99.x"\ntitle = "x"\npoints = 1\nhints = ["a", "b"]\n'
    (tmp_path / "99.toml").write_text(good + '[[exercise.mistake]]\nsays = "s"\nswap = [0, 1]\n')
    loaded = load_exercises(tmp_path)
    assert loaded["99.x"].hints == ("a", "b") and loaded["99.x"].mistakes[0].steps == (
        ("swap", [0, 1]),
    )
    (tmp_path / "99.toml").write_text(good.replace("99.x", "98.x"))
    with pytest.raises(ValueError, match="must be named 99"):
        load_exercises(tmp_path)
    (tmp_path / "99.toml").write_text(good + '[[exercise.mistake]]\nsays = "s"\nspin = 1\n')
    with pytest.raises(ValueError, match="unknown transforms \\['spin'\\]"):
        load_exercises(tmp_path)
    with pytest.raises(FileNotFoundError, match="no exercise files"):
        load_exercises(tmp_path / "none")


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
        # the last step may give the answer when it says so ("The answer: ..."); no other may
        answer = known.hints[-1].startswith("The answer:")
        for text in (*known.hints[: -1 if answer else None], known.title):
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


def test_exercise_data_ships_in_the_wheel(monkeypatch):
    """pyproject maps notebooks/exercises to the package dit_mini.course.exercise_data, which is
    where the loader looks when there is no checkout (a pip install, Colab)."""
    import tomllib
    from pathlib import Path

    from dit_mini.course import hints

    root = Path(__file__).resolve().parents[1]
    setup = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "dit_mini.course.exercise_data" in setup["packages"]
    assert setup["package-dir"]["dit_mini.course.exercise_data"] == "notebooks/exercises"
    assert "*.toml" in setup["package-data"]["dit_mini.course.exercise_data"]
    monkeypatch.setattr(Path, "is_dir", lambda self: False)  # as if installed from a wheel
    assert hints.exercises_dir() == Path(hints.__file__).resolve().parent / "exercise_data"


@pytest.mark.parametrize(
    "answer, expected, says",
    [
        (torch.tensor([2.7, 0.4]), torch.tensor([2, 0]), "your answer is float32 but the expected"),
        (torch.tensor([0.3, 0.0]), torch.tensor([True, False]), "but the expected values are True"),
        (torch.tensor([300.0]), torch.tensor([44], dtype=torch.uint8), "float32 but the expected"),
        (torch.tensor([2.0, 0.0]), torch.tensor([2, 0]), "float32 but the expected values are int"),
        (torch.tensor([300]), torch.tensor([44], dtype=torch.uint8), "expected 44, got 300"),
        (torch.tensor([1, 0]), torch.tensor([True, False]), "int64 but the expected values are"),
        (3.0, 3, "is a float but the answer is a whole number"),
    ],
)
def test_no_silent_dtype_casts(answer, expected, says):
    assert says in compare(answer, expected)


def test_integer_note_names_why_integers(capsys):
    from dit_mini.course.hints import EXERCISES

    note = EXERCISES["13.tokenize"].integer_note
    assert "nn.Embedding" in note
    assert not check("13.tokenize", torch.tensor([[3.0, 1.0]]), torch.tensor([[3, 1]]))
    assert f"your answer is float32 but {note}" in capsys.readouterr().out


def test_check_returns_a_verdict_that_a_notebook_does_not_echo():
    from dit_mini.course.exercises import Verdict

    ok, bad = check("v", 1, 1, quiet=True), check("w", 1, 2, quiet=True)
    assert isinstance(ok, Verdict) and ok and not bad and (ok & bad) == 0
    assert hasattr(ok, "_ipython_display_") and ok._ipython_display_() is None
    assert repr(ok) == "Bonfire lit" and repr(bad) == "You died: expected 2, got 1"
    assert check("p", 0, test=lambda v: ok) and not check("q", 0, test=lambda v: bad, quiet=True)


def test_progress_counts_the_notebooks_exercises_and_follows_reruns(capsys, monkeypatch):
    from dit_mini.course import exercises
    from dit_mini.course.hints import notebook_exercises

    runs = iter(range(1, 100))
    monkeypatch.setattr(exercises, "_execution", lambda: next(runs))  # every call a new cell run
    exercises.reset_results()
    names = [e.name for e in notebook_exercises("07")]
    out = exercises.progress("07")
    assert out.startswith(f"Notebook 07: 0 of {len(names)} exercises solved.")
    assert out.untried == tuple(names) and out._ipython_display_() is None
    check(names[0], 1, 2, quiet=True, part="a")
    check(names[0], 1, 1, quiet=True, part="b")
    check(names[1], 1, 1, quiet=True)
    out = exercises.progress(7)
    assert out.solved == 1 and out.revisit == (names[0],) and "expected 2, got 1" in out
    check(names[0], 2, 2, quiet=True, part="a")  # the learner fixed it and ran the cell again
    assert exercises.progress("07").solved == 2
    for e in names[2:]:
        check(e, 1, 1, quiet=True)
    assert exercises.progress("07").endswith("Every bonfire of this notebook is lit.")
    with pytest.raises(ValueError, match="no registered exercises"):
        exercises.progress("99")


def test_every_notebook_imports_hint_and_ends_with_its_progress():
    """hint is importable wherever it is offered, and the last code cell reports progress."""
    from pathlib import Path

    nbformat = pytest.importorskip("nbformat")
    root = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"
    paths = sorted(root.glob("*.ipynb"))
    assert len(paths) == 15
    for path in paths:
        code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        imports = [s for s in code if "from dit_mini.course.exercises import" in s]
        assert imports and all("hint" in s and "progress" in s for s in imports), path.name
        assert code[-1].startswith(f'progress("{path.name[:2]}")'), path.name
