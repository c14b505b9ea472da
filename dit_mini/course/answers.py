"""Compare a learner's answer with the expected one and say, in the learner's terms, what differs.

`compare(answer, expected)` is None when they match, else a reason:

- tensors and arrays: the shape first, then the dtype (no silent casts: a float answer where
  integers or booleans are expected is wrong, whatever its values), then the values within
  atol/rtol; the reason names where the first wrong value is with the axis names given
  (`axes=("image", "channel", "row", "col")`: "first wrong value at image 1, channel 0, row 3,
  col 5"), how many values are wrong and which images (first axis) hold them;
- numbers with math.isclose (Python, numpy and torch scalars compare alike: np.int64(5) == 5),
  but a float where an int is expected is wrong, and a bool must be a bool;
- sequences and dicts item by item; anything else by ==.

Used by `dit_mini.course.exercises.check` (which adds the names of common mistakes) and by
`dit_mini.course.new_game_plus` (module tests).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["compare", "describe_position", "is_float_value"]


def is_float_value(value) -> bool:
    """A Python float, numpy floating scalar or array, or floating torch tensor."""
    if isinstance(value, torch.Tensor):
        return value.is_floating_point()
    if isinstance(value, np.ndarray):
        return np.issubdtype(value.dtype, np.floating)
    return isinstance(value, (float, np.floating))


def _is_bool(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dtype == torch.bool and value.numel() == 1
    return isinstance(value, (bool, np.bool_))


def _names(axes: Sequence[str], ndim: int) -> list[str]:
    """One name per axis: the given names fit the last axes (a missing batch axis drops the
    first), unnamed leading axes are "axis i"."""
    axes = list(axes)
    if len(axes) >= ndim:
        return axes[len(axes) - ndim :]
    return [f"axis {i}" for i in range(ndim - len(axes))] + axes


def describe_position(index: Sequence[int], axes: Sequence[str] = ()) -> str:
    """ "image 1, channel 0, row 3" for the index (1, 0, 3) and those axis names."""
    if not index:
        return "the single value"
    if not axes:
        return f"index {list(index)}"
    names = _names(axes, len(index))
    return ", ".join(
        f"{i} on {n}" if n.startswith("axis ") else f"{n} {i}" for n, i in zip(names, index)
    )


def compare(
    answer,
    expected,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    where: str = "",
    axes: Sequence[str] = (),
    integer_note: str = "",
) -> str | None:
    """None when `answer` matches `expected`, else a short reason (see the module docstring)."""
    if isinstance(expected, (torch.Tensor, np.ndarray)):
        return _compare_arrays(answer, expected, atol, rtol, where, axes, integer_note)
    if isinstance(expected, (bool, np.bool_)):
        if not _is_bool(answer):
            return f"{where}expected True or False, got {answer!r}"
        return None if bool(answer) == bool(expected) else f"{where}expected {expected}"
    if isinstance(expected, str) or expected is None:
        return None if answer == expected else f"{where}expected {expected!r}, got {answer!r}"
    if isinstance(expected, (int, float, np.number)):
        if not isinstance(answer, (int, float, np.number, torch.Tensor)) or _is_bool(answer):
            return f"{where}expected a number, got {type(answer).__name__} {answer!r}"
        if isinstance(answer, torch.Tensor) and answer.numel() != 1:
            return f"{where}expected one number, got a tensor of shape {tuple(answer.shape)}"
        if not is_float_value(expected) and is_float_value(answer):
            note = integer_note or "the answer is a whole number"
            return f"{where}your answer {float(answer)!r} is a float but {note}: return an int"
        value = float(answer)
        ok = math.isclose(value, float(expected), rel_tol=rtol, abs_tol=atol)
        return None if ok else f"{where}expected {float(expected):.6g}, got {value:.6g}"
    if isinstance(expected, (tuple, list)):
        if not isinstance(answer, (tuple, list, torch.Size)) or len(answer) != len(expected):
            return f"{where}expected {len(expected)} items like {expected!r}, got {answer!r}"
        for i, (a, e) in enumerate(zip(answer, expected)):
            if reason := compare(a, e, atol, rtol, f"{where}item {i}: ", axes, integer_note):
                return reason
        return None
    if isinstance(expected, dict):
        if not isinstance(answer, dict) or set(answer) != set(expected):
            return f"{where}expected keys {sorted(expected)}, got {answer!r}"
        for key in expected:
            at = f"{where}[{key!r}]: "
            if reason := compare(answer[key], expected[key], atol, rtol, at, axes, integer_note):
                return reason
        return None
    return None if answer == expected else f"{where}expected {expected!r}, got {answer!r}"


def _dtype_problem(a: torch.Tensor, e: torch.Tensor, integer_note: str) -> str | None:
    """Why the answer's dtype cannot hold the expected values (no casts), or None."""
    if e.dtype == torch.bool and a.dtype != torch.bool:
        return (
            f"your answer is {str(a.dtype).removeprefix('torch.')} but the expected values are "
            "True/False (bool): a comparison such as x < p gives them"
        )
    if not (e.is_floating_point() or e.dtype == torch.bool):
        if a.is_floating_point() or a.dtype == torch.bool:
            note = integer_note or f"the expected values are integers ({e.dtype})"
            return f"your answer is {str(a.dtype).removeprefix('torch.')} but {note}"
    return None


def _compare_arrays(answer, expected, atol, rtol, where, axes, integer_note) -> str | None:
    if not isinstance(answer, (torch.Tensor, np.ndarray)):
        shape = tuple(expected.shape)
        return f"{where}expected a tensor of shape {shape}, got {type(answer).__name__}"
    a, e = torch.as_tensor(answer).detach().cpu(), torch.as_tensor(expected).detach().cpu()
    if a.shape != e.shape:
        names = f" ({', '.join(_names(axes, e.dim()))})" if axes and e.dim() else ""
        return f"{where}expected shape {tuple(e.shape)}{names}, got {tuple(a.shape)}"
    if problem := _dtype_problem(a, e, integer_note):
        return where + problem
    if e.is_floating_point():
        a64, e64 = a.double(), e.double()
        wrong = ~torch.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True)
        error = (a64 - e64).abs().nan_to_num(nan=float("inf"))
    else:
        a64, e64 = a.to(torch.int64), e.to(torch.int64)  # exact for every integer dtype
        wrong, error = a64 != e64, (a64 - e64).abs().double()
    if not bool(wrong.any()):
        return None
    first = tuple(int(i) for i in wrong.nonzero()[0])
    got, want = a64[first].item(), e64[first].item()
    if wrong.numel() == 1:
        return f"{where}expected {want:.6g}, got {got:.6g}"
    n, total = int(wrong.sum()), wrong.numel()
    reason = (
        f"{where}values differ: the first wrong value is at {describe_position(first, axes)} "
        f"(expected {want:.5g}, got {got:.5g}); {n} of {total} values are wrong"
    )
    if wrong.dim() >= 2 and wrong.shape[0] > 1:
        rows = wrong.flatten(1).any(1).nonzero().flatten().tolist()
        name = _names(axes, wrong.dim())[0] if axes else "first-axis index"
        if len(rows) < wrong.shape[0]:
            shown = ", ".join(str(r) for r in rows[:8]) + (", ..." if len(rows) > 8 else "")
            reason += f", only at {name} {shown} (of 0..{wrong.shape[0] - 1})"
        else:
            reason += f", at every {name}"
    return reason + f"; largest difference {float(error.max()):.3g}"
