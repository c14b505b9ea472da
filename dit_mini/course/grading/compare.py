"""Verdicts outside the sandbox: compare a learner's output with the reference, and spot answers
that are the package's own implementation.

`compare` treats Python, numpy and torch scalars (and 0-d tensors) as the same numbers, tensors
and arrays within atol/rtol (integer and bool tensors exactly), sequences and dicts item by item.
`package_answers` reads the submitted cells' source (never runs it) and names the learner's
answers that are bound to a package object the exercise asks them to write: an alias
(`MyDiT = DiT`), a subclass (`class MyDiT(DiT)`), or a thin wrapper whose body only returns a
call of it. Used by `dit_mini.course.grading.runner`.
"""

from __future__ import annotations

import ast
import math
import numbers

import numpy as np
import torch

__all__ = ["compare", "package_answers"]


def _number(value):
    """`value` as a float when it is a Python, numpy or torch scalar (or 0-d tensor), else None."""
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        return None
    return float(value) if isinstance(value, numbers.Real) else None


def compare(
    answer, expected, atol: float = 1e-5, rtol: float = 1e-4, where: str = ""
) -> str | None:
    """None when `answer` matches `expected`, else a short reason."""
    if isinstance(expected, (torch.Tensor, np.ndarray)) and expected.ndim > 0:
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
        error = (a - e).abs().nan_to_num(nan=float("inf")).max()
        return f"{where}values differ (largest difference {float(error):.3g})"
    if isinstance(expected, (bool, np.bool_)):
        same = isinstance(answer, (bool, np.bool_)) and bool(answer) == bool(expected)
        return None if same else f"{where}expected {expected!r}, got {answer!r}"
    if isinstance(expected, str) or expected is None:
        same = type(answer) is type(expected) and answer == expected
        return None if same else f"{where}expected {expected!r}, got {answer!r}"
    if (e := _number(expected)) is not None:
        a = _number(answer)
        if a is None:
            return f"{where}expected a number, got {type(answer).__name__}"
        ok = math.isclose(a, e, rel_tol=rtol, abs_tol=atol) or (math.isnan(a) and math.isnan(e))
        return None if ok else f"{where}expected {e:.6g}, got {a:.6g}"
    if isinstance(expected, (tuple, list)):
        if not isinstance(answer, (tuple, list)) or len(answer) != len(expected):
            return f"{where}expected {len(expected)} items, got {type(answer).__name__}"
        for i, (a, e) in enumerate(zip(answer, expected)):
            if reason := compare(a, e, atol, rtol, f"{where}item {i}: "):
                return reason
        return None
    if isinstance(expected, dict):
        if not isinstance(answer, dict) or set(answer) != set(expected):
            return f"{where}expected keys {sorted(expected)[:6]}"
        for key in expected:
            if reason := compare(answer[key], expected[key], atol, rtol, f"{where}[{key}]: "):
                return reason
        return None
    return f"{where}cannot compare a {type(expected).__name__}"


def _imported(tree: ast.Module) -> dict[str, str]:
    """Local name -> "module:attr" for every `from dit_mini... import attr [as name]`."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dit_mini"):
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}:{alias.name}"
    return names


def _refers(node, imported: dict[str, str], targets: set[str]) -> str | None:
    """The package object that expression `node` names (a name or dotted attribute), if any."""
    if isinstance(node, ast.Name):
        path = imported.get(node.id)
        return path if path and path.split(":")[1] in targets else None
    if isinstance(node, ast.Attribute) and node.attr in targets:
        root = node
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Name) and (root.id in imported or root.id == "dit_mini"):
            return node.attr
    if isinstance(node, ast.Call):
        return _refers(node.func, imported, targets)
    if isinstance(node, ast.Lambda):
        return _refers(node.body, imported, targets)
    return None


def package_answers(sources: list[str], answers: dict[str, set[str]]) -> dict[str, str]:
    """Answer name -> why it is the package's own (for `answers`: name -> package attr names)."""
    trees = []
    for source in sources:
        try:
            trees.append(ast.parse(source))
        except SyntaxError:
            continue  # (magics or broken code: that cell defines nothing the probes can call)
    imported: dict[str, str] = {}
    for tree in trees:
        imported.update(_imported(tree))
    found = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in answers:
                        if hit := _refers(node.value, imported, answers[target.id]):
                            found[target.id] = f"{target.id} is the package's {hit}"
            elif isinstance(node, ast.ClassDef) and node.name in answers:
                for base in node.bases:
                    if hit := _refers(base, imported, answers[node.name]):
                        found[node.name] = f"{node.name} subclasses the package's {hit}"
            elif (
                isinstance(node, (ast.FunctionDef, ast.Lambda))
                and getattr(node, "name", "") in answers
            ):
                body = [
                    s
                    for s in node.body
                    if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
                ]
                if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
                    if hit := _refers(body[0].value, imported, answers[node.name]):
                        found[node.name] = f"{node.name} only calls the package's {hit}"
    return found
