"""Common mistakes as data: a small vocabulary of transforms that turn the reference's answer
into a known wrong one, so that a failed check can say which mistake the learner made.

An exercise's data file (notebooks/exercises/NN.toml, read by `dit_mini.course.hints`) lists its
mistakes, each a text and one or more transforms:

    [[exercise.mistake]]
    says = "your shift and scale are swapped"
    swap = [1, 2]

Transforms on the reference's call (they need a reference function and positional inputs) run
first, in the order written; then transforms on its output:

- inputs (`i` may be a list of arguments where a transform takes no parameter):
  `swap = [i, j]` exchanges arguments i and j; `negate_arg = i`; `arg_plus = [i, k]`
  adds k (an off-by-one step: k = -1); `arg_times = [i, k]`; `arg_sqrt = i`; `arg_square = i`;
  `arg_flip = [i, axis]` reverses argument i along an axis; `arg_reverse = i` reverses a list;
  `arg_set = [i, value]` replaces argument i; `arg_one_minus = i` (1 - x for x);
  `arg_times_sqrt_width = i` (argument i times the square root of its last dimension: a
  division by sqrt(d) forgotten before a softmax).
- output: `negate = true`; `times = k`; `plus = k`; `square = true` (a square root dropped:
  the reference takes it); `sqrt = true` (one taken too many); `reciprocal = true`;
  `flip = axis`; `transpose = [a, b]`; `roll = [shift, axis]` (off by one along an axis);
  `swap_halves = axis` (the two halves in the wrong order, sines and cosines);
  `reverse_halves = axis` (each half reversed: frequencies running the wrong way);
  `swap_quarters = axis` (inside each half, its two halves swapped);
  `interleave_halves = axis` (halves interleaved instead of concatenated);
  `cumsum_for_cumprod = axis` (a running sum of the factors instead of their product);
  `update_times = [i, k]` (the update out - input i scaled by k: k = -1 is a step the wrong way
  in time); `minus_arg = i` (the output minus input i: a residual or a "1 +" forgotten);
  `sum_over = axis` / `mean_over = axis` (a reduction the reference does not make,
  for a mean taken as a sum use `times`); `scale_keys = {key = k}` (dict entries scaled);
  `halve_items = k` (every number of a nested list or tuple divided by 2**k, rounded down).

`variant(reference, inputs, mistake)` computes the wrong answer; `mistake_made` says which
mistake explains a learner's answer; `TRANSFORMS` lists the names. Used by
`dit_mini.course.exercises.check`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .answers import compare

__all__ = ["INPUT_TRANSFORMS", "OUTPUT_TRANSFORMS", "TRANSFORMS", "mistake_made", "variant"]


def _swap(args: list, ij) -> list:
    i, j = ij
    args[i], args[j] = args[j], args[i]
    return args


def _at(fn: Callable, with_parameter: bool = False) -> Callable:
    """An input transform of argument i: the spec is [i, parameter] when `with_parameter`, else
    i or a list of the arguments to change."""

    def apply(args: list, spec) -> list:
        if with_parameter:
            i, parameter = spec
            args[i] = fn(args[i], parameter)
            return args
        for i in spec if isinstance(spec, list) else [spec]:
            args[i] = fn(args[i])
        return args

    return apply


def _times(x, k):
    value = x * k
    if isinstance(x, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _sqrt(x):
    return x.sqrt() if isinstance(x, torch.Tensor) else math.sqrt(x)


INPUT_TRANSFORMS: dict[str, Callable] = {
    "swap": _swap,
    "negate_arg": _at(lambda x: -x),
    "arg_plus": _at(lambda x, k: x + k, True),
    "arg_times": _at(_times, True),
    "arg_sqrt": _at(_sqrt),
    "arg_square": _at(lambda x: x * x),
    "arg_flip": _at(lambda x, axis: x.flip(axis), True),
    "arg_reverse": _at(lambda x: type(x)(reversed(x))),
    "arg_set": _at(lambda x, value: value, True),
    "arg_one_minus": _at(lambda x: 1 - x),
    "arg_times_sqrt_width": _at(lambda x: x * x.shape[-1] ** 0.5),
}


def _halves(out: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
    return out.chunk(2, dim=axis)


def _interleave(out: torch.Tensor, axis: int) -> torch.Tensor:
    a, b = _halves(out, axis)
    return torch.stack([a, b], dim=axis if axis < 0 else axis + 1).flatten(
        axis - 1 if axis < 0 else axis, axis if axis < 0 else axis + 1
    )


def _cumsum_for_cumprod(out: torch.Tensor, axis: int) -> torch.Tensor:
    first = out.narrow(axis, 0, 1)
    factors = torch.cat([first, out.narrow(axis, 1, out.shape[axis] - 1) / out.narrow(
        axis, 0, out.shape[axis] - 1)], dim=axis)  # fmt: skip
    return factors.cumsum(axis)


def _numbers(value, fn: Callable):
    """`fn` applied to every number of a nested list, tuple or dict."""
    if isinstance(value, (list, tuple)):
        return type(value)(_numbers(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _numbers(v, fn) for k, v in value.items()}
    return fn(value)


OUTPUT_TRANSFORMS: dict[str, Callable] = {
    "negate": lambda out, _: -out,
    "times": lambda out, k: _numbers(out, lambda v: _times(v, k)),
    "plus": lambda out, k: out + k,
    "square": lambda out, _: out * out,
    "sqrt": lambda out, _: _sqrt(out),
    "reciprocal": lambda out, _: 1 / out,
    "flip": lambda out, axis: out.flip(axis),
    "transpose": lambda out, ab: out.transpose(*ab),
    "roll": lambda out, spec: out.roll(*spec),
    "swap_halves": lambda out, axis: torch.cat(_halves(out, axis)[::-1], dim=axis),
    "reverse_halves": lambda out, axis: torch.cat(
        [h.flip(axis) for h in _halves(out, axis)], dim=axis
    ),
    "swap_quarters": lambda out, axis: torch.cat(
        [torch.cat(h.chunk(2, dim=axis)[::-1], dim=axis) for h in _halves(out, axis)], dim=axis
    ),
    "interleave_halves": _interleave,
    "cumsum_for_cumprod": _cumsum_for_cumprod,
    "sum_over": lambda out, axis: out.sum(axis),
    "mean_over": lambda out, axis: out.mean(axis),
    "scale_keys": lambda out, keys: {k: _times(v, keys.get(k, 1)) for k, v in out.items()},
    "halve_items": lambda out, k: _numbers(out, lambda v: v // 2**k),
}
_NEEDS_ARGS = {"update_times", "minus_arg"}
TRANSFORMS = set(INPUT_TRANSFORMS) | set(OUTPUT_TRANSFORMS) | _NEEDS_ARGS


def _positional(inputs) -> list:
    if isinstance(inputs, dict):
        raise TypeError("input transforms need positional inputs")
    return list(inputs) if isinstance(inputs, tuple) else [inputs]


def variant(reference, inputs, steps) -> object:
    """The wrong answer that the transforms `steps` ((name, argument) pairs, or a
    `dit_mini.course.hints.Mistake`) make of `reference` (a function called on `inputs`, or a
    value). Raises TypeError when the steps need a function or positional inputs."""
    steps = getattr(steps, "steps", steps)
    args = None if inputs is None else _positional(inputs) if callable(reference) else None
    original = list(args) if args is not None else None
    for name, spec in steps:
        if name in INPUT_TRANSFORMS:
            if args is None:
                raise TypeError(f"the transform {name!r} needs a reference function and inputs")
            args = INPUT_TRANSFORMS[name](args, spec)
    if callable(reference):
        out = reference(*args) if args is not None else reference()
    else:
        out = reference
    for name, spec in steps:
        if name in OUTPUT_TRANSFORMS:
            out = OUTPUT_TRANSFORMS[name](out, spec)
        elif name in _NEEDS_ARGS:
            if original is None:
                raise TypeError(f"{name} needs a reference function and inputs")
            if name == "minus_arg":
                out = out - original[spec]
            else:
                i, k = spec
                out = original[i] + k * (out - original[i])
    return out


def _call(fn, inputs):
    if isinstance(inputs, dict):
        return fn(**inputs)
    return fn(*inputs) if isinstance(inputs, tuple) else fn(inputs)


def mistake_made(answer, reference, cases: list, mistakes, **tolerance) -> str | None:
    """The `says` of the first of `mistakes` whose wrong answer the learner's `answer` matches
    on every input set of `cases` (None: `answer` and `reference` are values) and that differs
    from the reference's on one of them; None when no mistake explains the answer. `tolerance`
    goes to `compare` (atol, rtol, axes, integer_note)."""
    for mistake in mistakes:
        try:
            differs = False
            for case in cases:
                mine = _call(answer, case) if case is not None else answer
                right = reference
                if case is not None and callable(reference):
                    right = _call(reference, case)
                wrong = variant(reference, case, mistake)
                if compare(mine, wrong, **tolerance) is not None:
                    break
                differs = differs or compare(wrong, right, **tolerance) is not None
            else:
                if differs:
                    return mistake.says
        except Exception:  # noqa: BLE001 - a variant that does not apply to these inputs
            continue
    return None
