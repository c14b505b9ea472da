"""One grading run's probe calls: each notebook's inputs drawn once per run, encoded once, and
the package's references computed once.

`RunCalls` draws, for each notebook the first time a submission of it finishes its cells, a
secret seed and from it every probe's inputs (`probes.PROBES`). Every submission of that
notebook in the run gets the same inputs, written into its sandbox only after its own cells
finished: no submission knows them while its cells run, none can reach another's sandbox, and
the next run draws new ones. The grader computes a reference the first time a submission needs
it, in its own process from a clean import of the package, and keeps it for the rest of the
run: one reference per probe call and run, not one per submission.

Used by `dit_mini.course.grading.runner`.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from .codec import decode, encode, write_new
from .harness import HARNESSES
from .probes import Probe, probes_of

__all__ = ["Call", "NotebookCalls", "RunCalls"]


@dataclass(frozen=True)
class Call:
    """One probe call: its exercise, probe, inputs (as drawn) and encoded spec for the kernel."""

    exercise: str
    probe: Probe
    args: tuple
    spec_json: bytes
    spec_tensors: bytes

    def built_args(self) -> tuple:
        """The inputs exactly as the kernel decodes them (fresh generators, shipped models)."""
        from safetensors.torch import load  # deferred: the grader only

        return tuple(decode(json.loads(self.spec_json), load(self.spec_tensors))["args"])


def _call(exercise: str, probe: Probe, args: tuple) -> Call:
    from safetensors.torch import save  # deferred: the grader only

    spec = {
        "harness": probe.harness,
        "names": list(probe.names),
        "args": args,
        "package": list(probe.package),
    }
    tensors: dict = {}
    data = json.dumps(encode(spec, tensors)).encode()
    return Call(exercise, probe, args, data, save(tensors))


class NotebookCalls:
    """Every probe call of one notebook's `exercises` [(name, points)], inputs drawn from `seed`.

    `groups` lists the call indices of each probed exercise (one probe cell each, so that time
    limits apply per exercise); `reference(i)` is call i's expected output, computed once."""

    def __init__(self, exercises: list[tuple[str, int]], seed: int):
        g = torch.Generator().manual_seed(seed)
        self.calls: list[Call] = []
        self.groups: list[list[int]] = []
        for name, _ in exercises:
            group = []
            for probe in probes_of(name):
                for args in probe.make(g):
                    group.append(len(self.calls))
                    self.calls.append(_call(name, probe, args))
            if group:
                self.groups.append(group)
        self._references: dict[int, object] = {}
        self._lock = threading.Lock()

    def write(self, folder: Path) -> None:
        """in-i.json / in-i.safetensors for every call and cells.json (the groups) in `folder`."""
        for i, call in enumerate(self.calls):
            write_new(folder / f"in-{i}.safetensors", call.spec_tensors)
            write_new(folder / f"in-{i}.json", call.spec_json)
        write_new(folder / "cells.json", json.dumps(self.groups).encode())

    def reference(self, i: int):
        """The package's output for call i (its probe's harness on the kernel's exact inputs)."""
        with self._lock:
            if i not in self._references:
                call = self.calls[i]
                reference = call.probe.reference()
                self._references[i] = HARNESSES[call.probe.harness](reference, *call.built_args())
            return self._references[i]


class RunCalls:
    """The calls of every notebook graded in one run, each drawn the first time it is asked for
    from a secret seed of its own."""

    def __init__(self):
        self._notebooks: dict[str, NotebookCalls] = {}
        self._lock = threading.Lock()

    def of(self, notebook: str, exercises: list[tuple[str, int]]) -> NotebookCalls:
        with self._lock:
            if notebook not in self._notebooks:
                self._notebooks[notebook] = NotebookCalls(exercises, secrets.randbits(62))
            return self._notebooks[notebook]
