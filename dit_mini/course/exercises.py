"""Instant feedback for notebook exercises: `check` compares a learner's answer with a reference.

An exercise cell holds the learner's code between `### BEGIN SOLUTION` and `### END SOLUTION`
(nbgrader's markers); the next cell calls `check`. It prints one line, "Bonfire lit: ..." when the
answer is right or "You died: ..." with a hint when it is not, and returns True or False. It never
raises: an unsolved stub (`raise NotImplementedError`, or a value left at None) and any error in
the learner's code become hints, so a notebook always runs top to bottom.
`dit_mini.course.notebooks`
counts these lines to grade a notebook.

    check("alpha_bar at t=10", my_alpha_bar, schedule.alpha_bar[10])
    check("add_noise", add_noise, reference_add_noise, inputs=(x0, eps, t))
    check("shape of the tokens", tokens.shape, test=lambda s: s[-1] == 192, hint="use D = 192")

Introduced in notebook 00 (bonfire); used by every notebook's exercises.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["PASS_PREFIX", "FAIL_PREFIX", "compare", "check"]

PASS_PREFIX = "Bonfire lit"
FAIL_PREFIX = "You died"
_MISSING = object()


def compare(
    answer, expected, atol: float = 1e-5, rtol: float = 1e-4, where: str = ""
) -> str | None:
    """None when `answer` matches `expected`, else a short reason; tensors and arrays within
    tolerance, numbers with math.isclose, sequences and dicts item by item, anything else by ==."""
    if isinstance(expected, (torch.Tensor, np.ndarray)):
        return _compare_arrays(answer, expected, atol, rtol, where)
    if isinstance(expected, (bool, str)) or expected is None:
        return None if answer == expected else f"{where}expected {expected!r}, got {answer!r}"
    if isinstance(expected, (int, float)):
        if not isinstance(answer, (int, float, np.number, torch.Tensor)):
            return f"{where}expected a number, got {type(answer).__name__}"
        value = float(answer)
        ok = math.isclose(value, expected, rel_tol=rtol, abs_tol=atol)
        return None if ok else f"{where}expected {expected:.6g}, got {value:.6g}"
    if isinstance(expected, (tuple, list)):
        if not isinstance(answer, (tuple, list, torch.Size)) or len(answer) != len(expected):
            return f"{where}expected {len(expected)} items like {expected!r}, got {answer!r}"
        for i, (a, e) in enumerate(zip(answer, expected)):
            if reason := compare(a, e, atol, rtol, f"{where}item {i}: "):
                return reason
        return None
    if isinstance(expected, dict):
        if not isinstance(answer, dict) or set(answer) != set(expected):
            return f"{where}expected keys {sorted(expected)}, got {answer!r}"
        for key in expected:
            if reason := compare(answer[key], expected[key], atol, rtol, f"{where}[{key!r}]: "):
                return reason
        return None
    return None if answer == expected else f"{where}expected {expected!r}, got {answer!r}"


def _compare_arrays(answer, expected, atol: float, rtol: float, where: str) -> str | None:
    if not isinstance(answer, (torch.Tensor, np.ndarray)):
        shape = tuple(expected.shape)
        return f"{where}expected a tensor of shape {shape}, got {type(answer).__name__}"
    a, e = torch.as_tensor(answer).detach().cpu(), torch.as_tensor(expected).detach().cpu()
    if a.shape != e.shape:
        return f"{where}expected shape {tuple(e.shape)}, got {tuple(a.shape)}"
    if e.dtype == torch.bool or not e.is_floating_point():
        return None if torch.equal(a.to(e.dtype), e) else f"{where}the values differ"
    a, e = a.double(), e.double()
    if torch.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
        return None
    error = (a - e).abs().nan_to_num(nan=float("inf"))
    i = int(error.argmax())
    return (
        f"{where}values differ (largest difference {float(error.flatten()[i]):.3g} at flat index "
        f"{i}: expected {float(e.flatten()[i]):.5g}, got {float(a.flatten()[i]):.5g})"
    )


def _run(fn: Callable, inputs):
    if isinstance(inputs, dict):
        return fn(**inputs)
    return fn(*inputs) if isinstance(inputs, tuple) else fn(inputs)


def _verdict(answer, expected, inputs, test, atol, rtol) -> str | None:
    """The reason `answer` fails, or None; may raise (check turns errors into hints)."""
    if inputs is not None:
        if not callable(answer):
            return f"expected a function to call on the inputs, got {type(answer).__name__}"
        answer = _run(answer, inputs)
        if callable(expected):
            expected = _run(expected, inputs)
    if answer is Ellipsis or (answer is None and expected is not None):
        raise NotImplementedError  # the student stub `name = None` left unchanged
    if test is not None:
        result = test(answer)
        return None if result is True or result is None else (result or "the test failed")
    return compare(answer, expected, atol, rtol)


def check(
    label: str,
    answer,
    expected=_MISSING,
    *,
    inputs=None,
    cases: list | None = None,
    test: Callable | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    hint: str | None = None,
    quiet: bool = False,
) -> bool:
    """Check an exercise, print "Bonfire lit: ..." or "You died: ...", return whether it passed.

    - Value exercise: `check(label, value, expected)`.
    - Function exercise: `check(label, fn, reference_fn_or_value, inputs=(args...))`; `inputs`
      is a tuple of positional arguments, a dict of keywords, or a single argument. `cases`
      gives several such inputs, all of which must pass.
    - Property exercise: `check(label, value, test=predicate)`; the predicate returns True, or
      False or a message saying what is wrong.
    Comparisons use `compare` (tensors to atol/rtol). `hint` is added to any failure message.
    Never raises on the learner's behalf: a stub that raises NotImplementedError or a value
    left at None reads "not solved yet", and any other exception becomes the hint. (Calling it
    without `expected` or `test` is the notebook author's mistake and raises ValueError.)
    """
    if expected is _MISSING and test is None:
        raise ValueError(f"check({label!r}) needs the expected value or a test= predicate")
    reason = None
    try:
        for case in cases if cases is not None else [inputs]:
            reason = _verdict(answer, expected, case, test, atol, rtol)
            if reason:
                break
    except NotImplementedError:
        reason = "not solved yet: replace the stub between the SOLUTION markers with your code"
    except Exception as error:  # the learner's code may fail in any way; report, never crash
        reason = f"your code raised {type(error).__name__}: {error}"
    passed = reason is None
    message = f"{PASS_PREFIX}: {label}." if passed else f"{FAIL_PREFIX}: {label}: {reason}."
    if not passed and hint:
        message += f" Hint: {hint}"
    if not quiet:
        print(message)
    return passed
