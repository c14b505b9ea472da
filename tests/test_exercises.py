"""check(): pass and fail messages, hints, and that learner errors never escape."""

import numpy as np
import pytest
import torch

from dit_mini.course.exercises import FAIL_PREFIX, PASS_PREFIX, check, compare


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
