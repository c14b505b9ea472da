"""One grading run's probe calls (`dit_mini.course.grading.calls`) and the run's options: inputs
drawn once per run and notebook (fresh in the next run), references computed once per run and
shared by every submission, one probe cell per exercise; no sandbox needed."""

import json

import pytest
import torch

from dit_mini.course.grading import calls as calls_module
from dit_mini.course.grading import codec
from dit_mini.course.grading.calls import NotebookCalls, RunCalls
from dit_mini.course.grading.compare import compare
from dit_mini.course.grading.probes import probes_of
from dit_mini.course.grading.runner import GradingOptions, _verdict
from dit_mini.course.grading.sandbox import Limits

FOG = [("01.alpha_bar", 1), ("01.q_sample", 1), ("01.snr", 1), ("01.not_an_exercise", 1)]


def inputs(calls: NotebookCalls) -> list:
    return [c.args for c in calls.calls]


def same(a, b) -> bool:
    return compare(a, b, 0.0, 0.0) is None


def test_calls_are_drawn_from_the_seed_and_grouped_per_exercise():
    a, b, c = NotebookCalls(FOG, 7), NotebookCalls(FOG, 7), NotebookCalls(FOG, 8)
    assert same(inputs(a), inputs(b)) and not same(inputs(a), inputs(c))
    expected = sum(len(p.make(torch.Generator().manual_seed(0))) for n, _ in FOG
                   for p in probes_of(n))  # fmt: skip
    assert len(a.calls) == expected > 0
    # one group (one probe cell) per probed exercise, covering every call once, in order
    probed = [n for n, _ in FOG if probes_of(n)]
    assert len(a.groups) == len(probed) == 3
    assert [i for g in a.groups for i in g] == list(range(len(a.calls)))
    assert [{a.calls[i].exercise for i in g} for g in a.groups] == [{n} for n in probed]


def test_a_run_draws_each_notebook_once_and_the_next_run_draws_afresh():
    run = RunCalls()
    first = run.of("01_fog.ipynb", FOG)
    assert run.of("01_fog.ipynb", FOG) is first
    assert not same(inputs(first), inputs(RunCalls().of("01_fog.ipynb", FOG)))


def test_references_are_computed_once_and_match_the_package(monkeypatch):
    notebook = NotebookCalls(FOG, 3)
    calls_made = []
    harness = dict(calls_module.HARNESSES)
    real = harness["call"]
    harness["call"] = lambda *a: calls_made.append(1) or real(*a)
    monkeypatch.setattr(calls_module, "HARNESSES", harness)
    referenced = [i for i, call in enumerate(notebook.calls) if call.probe.reference]
    first = {i: notebook.reference(i) for i in referenced}
    again = {i: notebook.reference(i) for i in referenced}
    assert len(calls_made) == len(referenced) > 0
    assert all(first[i] is again[i] for i in referenced)
    for i in referenced:  # the reference passes its own probe, a wrong answer does not
        call, expected = notebook.calls[i], lambda i=i: notebook.reference(i)
        assert _verdict(call.probe, call.args, {"ok": True, "out": first[i]}, expected) is None
        wrong = {"ok": True, "out": first[i] + 1.0}
        assert _verdict(call.probe, call.args, wrong, expected)


def test_written_inputs_are_what_the_kernel_decodes_and_never_overwrite(tmp_path):
    notebook = NotebookCalls(FOG, 11)
    notebook.write(tmp_path)
    assert json.loads((tmp_path / "cells.json").read_text()) == notebook.groups
    for i, call in enumerate(notebook.calls):
        spec = codec.load(tmp_path / f"in-{i}")
        assert spec["harness"] == call.probe.harness and same(tuple(spec["args"]), call.args)
    with pytest.raises(FileExistsError):  # a planted file is never written through
        notebook.write(tmp_path)


def test_grading_options_are_frozen_and_checked():
    options = GradingOptions(Limits(timeout=5), None)
    with pytest.raises(AttributeError):
        options.fast = False
    with pytest.raises(ValueError, match="threads"):
        GradingOptions(threads=0)


def test_a_grader_error_costs_its_row_not_the_class(tmp_path, monkeypatch):
    import shutil

    import dit_mini.course.grading as grading

    fog = grading.DEFAULT_SOLUTIONS / "01_fog.ipynb"
    for student in ("ann", "bob"):
        (tmp_path / "class" / student).mkdir(parents=True)
        shutil.copy(fog, tmp_path / "class" / student)

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(grading, "grade_submission", boom)
    grades = grading.grade_paths([tmp_path / "class"], fog, out=tmp_path / "report",
                                 unsafe_no_sandbox=True)  # fmt: skip
    assert [g.student for g in grades] == ["ann", "bob"]
    for grade in grades:
        assert grade.exercises and grade.key == "" and grade.points == 0
        assert {(e.status, e.detail) for e in grade.exercises} == {
            ("not graded", "the grader failed: RuntimeError: boom")
        }
    assert (tmp_path / "report" / "grades.csv").read_text().count("the grader failed") == len(
        grades[0].exercises
    ) * 2
