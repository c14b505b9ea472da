"""What one probe is, and the small machinery the probe tables are written with.

A `Probe` is one graded call of an exercise's answer (an exercise may have several; it passes
when all do): the learner's `names` are handed, in the sandbox, to a `harness` (how to call
them, `dit_mini.course.grading.harness`) with the inputs that `make(g)` draws from the grader's
generator `g`, seeded from a secret drawn for each grading run, so no submission can know them
while its own cells run. In the grader, the same harness is applied to `reference()` (a clean
import of the package) and the two outputs are compared within `atol`/`rtol`; `test(output,
args)` replaces that comparison for answers that are random by nature (a statistic instead of a
value). `package` names the package objects a learner must not hand in as their own answer
(alias, subclass, thin wrapper).

The tables (`probes_noise`, `probes_denoise`, `probes_transformer`, `probes_scale`,
`probes_dit`: one entry per graded call) are written with `entry`, which takes the reference as
a "module:attr" path of the package (imported lazily, in the grader, when needed) or as a
function, and the input draws below. `dit_mini.course.grading.probes` assembles them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = [
    "Probe",
    "entry",
    "ref",
    "randn",
    "integer",
    "state",
    "module_case",
    "tokens",
    "cond",
    "no_inputs",
    "M",
    "E",
    "A",
    "B",
    "NGP",
]

# Paths of the package's modules, as the tables name their references ("module:attr").
M, E = "dit_mini.models.", "dit_mini.models.embeddings:"
A, B = "dit_mini.models.attention:", "dit_mini.models.dit_block:"
NGP = "dit_mini.course.new_game_plus:"


@dataclass(frozen=True)
class Probe:
    """One graded call of an exercise's answer (see the module docstring)."""

    exercise: str
    part: str
    names: tuple[str, ...]
    harness: str
    make: Callable[[torch.Generator], list[tuple]]
    reference: Callable[[], object] | None = None
    test: Callable[[object, tuple], str | None] | None = None
    package: tuple[str, ...] = field(default=())
    atol: float = 1e-5
    rtol: float = 1e-4


def ref(path: str) -> Callable[[], object]:
    """A lazy reference: "module:attr" of the package, imported in the grader when needed."""

    def load():
        module, _, attr = path.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    return load


def _constant(value) -> Callable[[], object]:
    return lambda: value


def no_inputs(g: torch.Generator) -> list[tuple]:
    """One call with no arguments (value answers, or names read as they are)."""
    return [()]


def entry(
    exercise: str,
    names: str | tuple[str, ...],
    make: Callable[[torch.Generator], list[tuple]] = no_inputs,
    reference: str | Callable | None = None,
    *,
    part: str = "",
    harness: str = "call",
    expected: Callable[[], object] | None = None,
    test: Callable[[object, tuple], str | None] | None = None,
    own: bool = False,
    package: tuple[str, ...] = (),
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> Probe:
    """One table entry as a `Probe`.

    `names`: the learner's name (or names) the harness is given. `make(g)`: the list of input
    tuples, one per call. `reference`: "module:attr" of the package, or a function (the same
    harness is applied to it); `expected`: for a value answer, a function that computes the
    expected value lazily (instead of `reference`); `test`: a check of the output instead of a
    reference. `own=True`: the reference path is also the package object the learner must not
    hand in (added to `package`).
    """
    if sum(x is not None for x in (reference, expected, test)) != 1:
        raise ValueError(f"{exercise}: give exactly one of reference, expected and test")
    if own and not isinstance(reference, str):
        raise ValueError(f"{exercise}: own=True needs the reference as a 'module:attr' path")
    if isinstance(reference, str):
        lazy = ref(reference)
    elif reference is not None:
        lazy = _constant(reference)
    else:
        lazy = expected
    return Probe(
        exercise,
        part,
        (names,) if isinstance(names, str) else tuple(names),
        harness,
        make,
        lazy,
        test,
        (reference,) * own + tuple(package),
        atol,
        rtol,
    )


# Input draws: every random number comes from the grader's generator `g`.


def randn(g: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    """scale * N(0, 1) of `shape`."""
    return scale * torch.randn(*shape, generator=g)


def integer(g: torch.Generator, low: int, high: int) -> int:
    """A random int in [low, high)."""
    return int(torch.randint(low, high, (1,), generator=g))


def tokens(g: torch.Generator) -> torch.Tensor:
    """(B, L, D) tokens of the tiny DiT: (3, 64, 192)."""
    return randn(g, 3, 64, 192)


def cond(g: torch.Generator) -> torch.Tensor:
    """(B, D) conditioning vectors of the tiny DiT: (3, 192)."""
    return randn(g, 3, 192)


def state(make_module: Callable[[], torch.nn.Module], g: torch.Generator) -> dict:
    """A fresh random state dict for the reference module (no zero gates: every weight shows)."""
    module = make_module()
    return {
        k: 0.05 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone()
        for k, v in module.state_dict().items()
    }


def module_case(cls_path: str, ctor: tuple, inputs: Callable) -> Callable:
    """Inputs of the "module" harness: cls(*ctor) with a random state of the package's class
    at `cls_path`, called on inputs(g)."""

    def make(g):
        cls = ref(cls_path)()
        return [(ctor, state(lambda: cls(*ctor), g), inputs(g))]

    return make
