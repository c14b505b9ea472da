"""Instant feedback for notebook exercises: `check` runs a named exercise's test, `hint` helps.

An exercise cell holds the learner's code between `### BEGIN SOLUTION` and `### END SOLUTION`
(nbgrader's markers); the next cell calls `check` with the exercise's stable name:

    check("01.alpha_bar", alpha_bar_from_betas, reference, cases=[(betas,)])
    check("01.q_sample", q_sample, expected, inputs=(x0, eps, t, ab), part="cosine schedule")
    check("05.patchify", tokens.shape, test=lambda s: s[-1] == 48)

It prints one line, "Bonfire lit: ..." or "You died: ...", and returns a `Verdict`: true or
false for code that uses it, shown as nothing under a notebook cell. A death says what killed
the learner: a wrong value is located in the learner's terms (the exercise's axis names: "image
2, channel 0, row 3"), a float answer where integers are expected is named as such (no dtype is
cast), and an answer that matches one of the exercise's common mistakes (computed from the
reference on the same inputs with `dit_mini.course.mistakes`) is called by its name ("your
shift and scale are swapped"). The texts that help live in notebooks/exercises/NN.toml (read by
`dit_mini.course.hints`), not in the visible cell: the first failed attempt at an exercise adds
its nudge, and each `hint("01.alpha_bar")` shows the next step of its hints, up to the full
answer. `progress("01")`, in the last code cell of each notebook, says how many of its
exercises are solved and which to revisit. An
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
import os
from collections.abc import Callable

from .answers import compare
from .hints import EXERCISES, Exercise, exercise
from .mistakes import mistake_made
from .progress import Progress, summary

__all__ = [
    "PASS_PREFIX",
    "FAIL_PREFIX",
    "GRADING_ENV",
    "compare",
    "check",
    "hint",
    "progress",
    "Verdict",
    "Progress",
    "grading_mode",
    "results",
    "reset_results",
]

PASS_PREFIX = "Bonfire lit"
FAIL_PREFIX = "You died"
GRADING_ENV = "DIT_MINI_GRADING"
NOT_SOLVED = "not solved yet: write your code where the cell says `# YOUR CODE HERE`"
_MISSING = object()
_RESULTS: dict[str, dict] = {}  # exercise name -> {"passed": bool, "parts": [...]}
_ATTEMPTS: dict[str, set] = {}  # exercise name -> cell executions in which it failed
_HINTS_SHOWN: dict[str, int] = {}  # exercise name -> how many of its hints were shown


def _run(fn: Callable, inputs):
    if isinstance(inputs, dict):
        return fn(**inputs)
    return fn(*inputs) if isinstance(inputs, tuple) else fn(inputs)


def _test_reason(result) -> str | None:
    """A predicate's verdict: True (or anything true but a string) passes; a string or a false
    value fails, the string being the reason."""
    if isinstance(result, str):
        return result or "the test failed"
    return None if result is None or bool(result) else "the test failed"


def _verdict(answer, expected, inputs, test, options: dict) -> str | None:
    """The reason `answer` fails on `inputs`, or None; may raise (check turns errors into
    reasons)."""
    if inputs is not None:
        if not callable(answer):
            return f"expected a function to call on the inputs, got {type(answer).__name__}"
        answer = _run(answer, inputs)
        if callable(expected):
            expected = _run(expected, inputs)
    if answer is Ellipsis or (answer is None and expected is not None):
        raise NotImplementedError  # the student stub `name = None` left unchanged
    if test is not None:
        return _test_reason(test(answer))
    return compare(answer, expected, **_tolerance(options))


def _tolerance(options: dict) -> dict:
    return {k: options[k] for k in ("atol", "rtol", "axes", "integer_note")}


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
    """Add one call's result to exercise `name`. A part checked again from another cell run
    replaces its earlier results (re-running a check cell after a fix counts the fix); the
    parts checked by other cells (a follow-up check) are kept."""
    run = _execution()
    entry = _RESULTS.setdefault(name, {"passed": True, "parts": [], "run": run})
    entry["parts"] = [
        p for p in entry["parts"] if p["part"] != part or p.get("run") == run or run is None
    ]
    entry["parts"].append({"part": part, "passed": passed, "reason": reason, "run": run})
    entry["passed"] = all(p["passed"] for p in entry["parts"])
    entry["run"] = run


class Verdict(int):
    """What `check` returns: true when the bonfire is lit. Usable as a bool (`if ok:`,
    `ok &= check(...)`), but a notebook shows nothing for it under a check cell."""

    def __new__(cls, passed: bool, reason: str | None = None):
        verdict = super().__new__(cls, bool(passed))
        verdict.reason = reason
        return verdict

    def __repr__(self) -> str:
        return PASS_PREFIX if self else f"{FAIL_PREFIX}: {self.reason}"

    def _ipython_display_(self) -> None:  # the check printed its line already
        pass


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
    axes: tuple[str, ...] | None = None,
    quiet: bool = False,
) -> Verdict:
    """Check exercise `name`, print "Bonfire lit: ..." or "You died: ...", return a `Verdict`
    (true when it passed).

    - Value exercise: `check(name, value, expected)`.
    - Function exercise: `check(name, fn, reference_fn_or_value, inputs=(args...))`; `inputs`
      is a tuple of positional arguments, a dict of keywords, or a single argument. `cases`
      gives several such inputs, all of which must pass.
    - Property exercise: `check(name, value, test=predicate)`; the predicate returns True, or
      False or a message saying what is wrong.
    `part` names one of several checks of the same exercise (the exercise passes when all do).
    Comparisons use `dit_mini.course.answers.compare` (tensors to atol/rtol, no dtype casts);
    a wrong value is located with the axis names `axes` (default: the exercise's data), and a
    wrong answer matching one of the exercise's common mistakes is named. `name` is a
    registered exercise of `dit_mini.course.hints` (its nudge is shown on the first failed
    attempt); an unregistered name is printed as it is, with `hint` on failure. Never raises
    on the learner's behalf (except in grading mode, see the module docstring): a stub that
    raises NotImplementedError or a value left at None reads "not solved yet", and any other
    exception becomes the reason. (Calling it without `expected` or `test` is the author's
    mistake and raises ValueError.)
    """
    if expected is _MISSING and test is None:
        raise ValueError(f"check({name!r}) needs the expected value or a test= predicate")
    known = EXERCISES.get(name)
    options = {
        "atol": atol,
        "rtol": rtol,
        "axes": axes if axes is not None else known.axes_for(part) if known else (),
        "integer_note": known.integer_note if known else "",
        "mistakes": known.mistakes_for(part) if known else (),
    }
    reason, unsolved = None, False
    todo = cases if cases is not None else [inputs]
    try:
        for i, case in enumerate(todo):
            reason = _verdict(answer, expected, case, test, options)
            if reason:
                if test is None and options["mistakes"]:
                    says = mistake_made(answer, expected, todo, options["mistakes"],
                                        **_tolerance(options))  # fmt: skip
                    if says:
                        reason = f"{says} ({reason})"
                if len(todo) > 1:
                    reason = f"on input set {i + 1} of {len(todo)}: {reason}"
                break
    except NotImplementedError:
        reason, unsolved = NOT_SOLVED, True
    except Exception as error:  # the learner's code may fail in any way; report, never crash
        reason = f"your code raised {type(error).__name__}: {error}"
    passed = reason is None
    _record(name, part, passed, reason)
    title = (known.title if known else name) + (f" ({part})" if part else "")
    message = f"{PASS_PREFIX}: {title}." if passed else f"{FAIL_PREFIX}: {title}: {reason}."
    if not passed and known is not None:
        message += _help(known, unsolved)
    elif not passed and hint:
        message += f" Hint: {hint}"
    if not quiet:
        print(message)
    if not passed and grading_mode():
        raise AssertionError(message)
    return Verdict(passed, reason)


def _help(known: Exercise, unsolved: bool) -> str:
    """The nudge on the first failed attempt, then where the next hint is."""
    name, text = known.name, ""
    attempts = _ATTEMPTS.setdefault(name, set())
    if not unsolved:
        attempts.add(_execution() if _execution() is not None else len(attempts))
    if len(attempts) == 1 and _HINTS_SHOWN.get(name, 0) == 0:
        _HINTS_SHOWN[name] = 1
        text += f" Nudge: {known.hints[0]}"
    step = min(_HINTS_SHOWN.get(name, 0), len(known.hints) - 1) + 1
    return text + f' Stuck? hint("{name}") shows hint {step} of {len(known.hints)}.'


class _Quiet(str):
    """A string that a notebook does not echo when it ends a cell (it was printed already)."""

    def _ipython_display_(self) -> None:
        pass


def hint(name: str) -> str:
    """Print and return the next hint of exercise `name` (e.g. hint("03.eps_loss")): the first
    call the nudge (unless a failed check showed it), each later call one step more, up to the
    full answer; after the last step it repeats it."""
    known = exercise(name)
    shown = _HINTS_SHOWN.get(name, 0)
    step = min(shown, len(known.hints) - 1)
    _HINTS_SHOWN[name] = step + 1
    last = " (the last hint)" if step == len(known.hints) - 1 else ""
    text = f"{known.title}, hint {step + 1} of {len(known.hints)}{last}: {known.hints[step]}"
    print(text)
    return _Quiet(text)


def progress(number: str) -> Progress:
    """Print and return "N of M exercises solved" for notebook `number` ("07"), with the
    exercises to revisit (their last check failed) and those not tried yet. It reads what the
    checks of this kernel recorded, so it is right after cells are run again in any order."""
    out = summary(number, _RESULTS)
    print(out)
    return out


def results() -> dict[str, dict]:
    """What the checks of this kernel recorded: exercise name -> {"passed", "parts"}."""
    return json.loads(json.dumps(_RESULTS))


def reset_results() -> None:
    """Forget every recorded result and attempt (the grader starts from an empty record)."""
    _RESULTS.clear()
    _ATTEMPTS.clear()
    _HINTS_SHOWN.clear()
