"""Instant feedback for notebook exercises: `check` runs a named exercise's test, `hint` helps.

An exercise cell holds the learner's code between `### BEGIN SOLUTION` and `### END SOLUTION`
(nbgrader's markers); the next cell calls `check` with the exercise's stable name:

    check("01.alpha_bar", alpha_bar_from_betas, reference, cases=[(betas,)])
    check("01.q_sample", q_sample, expected, inputs=(x0, eps, t, ab), part="cosine schedule")
    check("05.patchify", tokens.shape, test=lambda s: s[-1] == 48)

It prints one line, "Bonfire lit: ..." or "You died: ...", and returns True or False. The texts
that help live in `dit_mini.course.hints`, not in the visible cell: the first failed attempt at
an exercise adds its nudge, a second failed attempt (or `hint("01.alpha_bar")`) its hint. An
unsolved stub (`raise NotImplementedError`, or a value left at None) reads "not solved yet", and
any error in the learner's code becomes the reason, so a notebook runs top to bottom. An
unregistered name still works (the `hint=` text is then shown on failure), for notebooks being
written.

Grading mode (env DIT_MINI_GRADING=1, set by `dit-mini course grade` and by the notebooks'
nbval run of notebooks/solutions; or NBGRADER_EXECUTION, set by nbgrader's autograde): a failed
check prints its line and then raises AssertionError, so graders that count cell errors (nbgrader,
nbval) see the failure. For learners a check never raises.

Every call records its result in this module (`results()`), for the learner. No grader trusts
that record: `dit-mini course grade` calls the learner's answers on fresh inputs from a sandbox
and compares them in its own process (`dit_mini.course.grading`).

Introduced in notebook 00 (bonfire); used by every notebook's exercises.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable

import numpy as np
import torch

from .hints import EXERCISES, exercise

__all__ = [
    "PASS_PREFIX",
    "FAIL_PREFIX",
    "GRADING_ENV",
    "compare",
    "check",
    "hint",
    "grading_mode",
    "results",
    "reset_results",
]

PASS_PREFIX = "Bonfire lit"
FAIL_PREFIX = "You died"
GRADING_ENV = "DIT_MINI_GRADING"
_MISSING = object()
_RESULTS: dict[str, dict] = {}  # exercise name -> {"passed": bool, "parts": [...]}
_ATTEMPTS: dict[str, set] = {}  # exercise name -> cell executions in which it failed


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


def grading_mode() -> bool:
    """True under a grader: DIT_MINI_GRADING=1, or inside nbgrader's autograde or validate."""
    return os.environ.get(GRADING_ENV, "") not in ("", "0") or "NBGRADER_EXECUTION" in os.environ


def _execution() -> int | None:
    """The IPython cell execution counter (one attempt per cell run), None outside IPython."""
    try:
        from IPython import get_ipython  # deferred: IPython only inside a kernel
    except ImportError:
        return None
    shell = get_ipython()
    return None if shell is None else shell.execution_count


def _record(name: str, part: str, passed: bool, reason: str | None) -> None:
    """Add one call's result to exercise `name`; running its cell again starts it afresh."""
    run = _execution()
    entry = _RESULTS.get(name)
    if entry is None or (run is not None and entry["run"] != run):
        entry = _RESULTS[name] = {"passed": True, "parts": [], "run": run}
    entry["parts"].append({"part": part, "passed": passed, "reason": reason})
    entry["passed"] = all(p["passed"] for p in entry["parts"])


def check(
    name: str,
    answer,
    expected=_MISSING,
    *,
    inputs=None,
    cases: list | None = None,
    test: Callable | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    part: str = "",
    hint: str | None = None,
    quiet: bool = False,
) -> bool:
    """Check exercise `name`, print "Bonfire lit: ..." or "You died: ...", return whether it passed.

    - Value exercise: `check(name, value, expected)`.
    - Function exercise: `check(name, fn, reference_fn_or_value, inputs=(args...))`; `inputs`
      is a tuple of positional arguments, a dict of keywords, or a single argument. `cases`
      gives several such inputs, all of which must pass.
    - Property exercise: `check(name, value, test=predicate)`; the predicate returns True, or
      False or a message saying what is wrong.
    `part` names one of several checks of the same exercise (the exercise passes when all do).
    Comparisons use `compare` (tensors to atol/rtol). `name` is a registered exercise of
    `dit_mini.course.hints` (its nudge and hint are shown on failed attempts); an unregistered
    name is printed as it is, with `hint` on failure. Never raises on the learner's behalf
    (except in grading mode, see the module docstring): a stub that raises NotImplementedError
    or a value left at None reads "not solved yet", and any other exception becomes the reason.
    (Calling it without `expected` or `test` is the author's mistake and raises ValueError.)
    """
    if expected is _MISSING and test is None:
        raise ValueError(f"check({name!r}) needs the expected value or a test= predicate")
    reason, unsolved = None, False
    try:
        for case in cases if cases is not None else [inputs]:
            reason = _verdict(answer, expected, case, test, atol, rtol)
            if reason:
                break
    except NotImplementedError:
        reason, unsolved = "not solved yet: write your code between the SOLUTION markers", True
    except Exception as error:  # the learner's code may fail in any way; report, never crash
        reason = f"your code raised {type(error).__name__}: {error}"
    passed = reason is None
    _record(name, part, passed, reason)
    known = EXERCISES.get(name)
    title = (known.title if known else name) + (f" ({part})" if part else "")
    message = f"{PASS_PREFIX}: {title}." if passed else f"{FAIL_PREFIX}: {title}: {reason}."
    if not passed and known is not None:
        if unsolved:
            message += f' Stuck? hint("{name}")'
        else:
            attempts = _ATTEMPTS.setdefault(name, set())
            attempts.add(_execution() if _execution() is not None else len(attempts))
            if len(attempts) == 1:
                message += f' Nudge: {known.nudge} More: hint("{name}")'
            else:
                message += f" Hint: {known.hint}"
    elif not passed and hint:
        message += f" Hint: {hint}"
    if not quiet:
        print(message)
    if not passed and grading_mode():
        raise AssertionError(message)
    return passed


def hint(name: str) -> str:
    """Print and return the nudge and the hint of exercise `name` (e.g. hint("03.eps_loss"))."""
    known = exercise(name)
    text = f"{known.title}: {known.nudge} Then: {known.hint}"
    print(text)
    return text


def results() -> dict[str, dict]:
    """What the checks of this kernel recorded: exercise name -> {"passed", "parts"}."""
    return json.loads(json.dumps(_RESULTS))


def reset_results() -> None:
    """Forget every recorded result and attempt (the grader starts from an empty record)."""
    _RESULTS.clear()
    _ATTEMPTS.clear()
