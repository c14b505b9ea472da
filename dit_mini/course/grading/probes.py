"""The probe table: every graded call of every probed exercise, in notebook order.

What a probe is and how an entry is written: `dit_mini.course.grading.probe`. The entries live
by notebook: `probes_noise` (00-02), `probes_denoise` (03-04), `probes_transformer` (05-08),
`probes_scale` (09-13) and `probes_dit` (14). Exercises not in the table are "not probed"
(`NOT_PROBED`) and earn no points from the grader.

Used by `dit_mini.course.grading.runner`.
"""

from __future__ import annotations

from .probe import Probe
from .probes_denoise import PROBES as DENOISE
from .probes_dit import PROBES as DIT
from .probes_noise import PROBES as NOISE
from .probes_scale import PROBES as SCALE
from .probes_transformer import PROBES as TRANSFORMER

__all__ = ["Probe", "PROBES", "probes_of", "NOT_PROBED"]

PROBES: list[Probe] = [*NOISE, *DENOISE, *TRANSFORMER, *SCALE, *DIT]


def probes_of(exercise: str) -> list[Probe]:
    """The probes of `exercise` (empty when it is not probed)."""
    return [p for p in PROBES if p.exercise == exercise]


def _not_probed() -> list[str]:
    # deferred: imported where needed, not at the grader's start
    from ..hints import EXERCISES

    probed = {p.exercise for p in PROBES}
    return [name for name in EXERCISES if name not in probed]


NOT_PROBED = _not_probed()
