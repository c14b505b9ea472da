"""The probe cell's code, run inside the sandboxed kernel after the submission's own cells.

`run(globals(), inputs, outputs, indices)` reads each probe's inputs (written by the grader
only after the submission's cells finished), calls the learner's objects through the probe's
harness and writes what came back, as data, into `outputs`. It decides nothing: a forged or
patched output is just a wrong output to the grader, which compares it with its own reference.

Runtime flags: whether a learner's object IS a package object (alias), a subclass of one, or
shares its code object (a copied function). The grader's own static check of the cell sources
(`dit_mini.course.grading.compare.package_answers`) does not depend on these.
"""

from __future__ import annotations

import importlib

from . import codec
from .harness import HARNESSES

__all__ = ["run", "runtime_flags"]


def _resolve(path: str):
    module, _, attr = path.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def runtime_flags(answers: list, package: list[str]) -> list[str]:
    """Which answers are, subclass or copy a package object named in `package`."""
    flags = []
    for path in package:
        try:
            ref = _resolve(path)
        except Exception:  # noqa: BLE001 - a patched package only hides the flag
            continue
        for answer in answers:
            if answer is ref:
                flags.append(f"is the package's {path}")
            elif isinstance(answer, type) and isinstance(ref, type) and issubclass(answer, ref):
                flags.append(f"subclasses the package's {path}")
            elif getattr(answer, "__code__", 0) is getattr(ref, "__code__", 1):
                flags.append(f"shares the code of the package's {path}")
    return flags


def _one(namespace: dict, inputs: str, outputs: str, index: int) -> None:
    spec = codec.load(f"{inputs}/in-{index}")
    missing = [n for n in spec["names"] if n not in namespace]
    result: dict = {"ok": False, "flags": []}
    if missing:
        result["error"] = f"no {', '.join(missing)} defined"
    else:
        answers = [namespace[n] for n in spec["names"]]
        result["flags"] = runtime_flags(answers, spec["package"])
        try:
            result["out"] = HARNESSES[spec["harness"]](*answers, *spec["args"])
            result["ok"] = True
        except BaseException as error:  # noqa: BLE001 - the learner's code may raise anything
            result["error"] = f"{type(error).__name__}: {error}"[:300]
    codec.dump(result, f"{outputs}/out-{index}")


def run(namespace: dict, inputs: str, outputs: str, indices: int | list[int]) -> None:
    """Call probes `indices` (in-i in folder `inputs`: one exercise's calls) on the learner's
    names in `namespace`; write out-i in folder `outputs` after each."""
    for index in [indices] if isinstance(indices, int) else indices:
        _one(namespace, inputs, outputs, index)
