"""Resuming a run: what a checkpoint's config must match, and what may change between runs.

A run resumes only when its config matches the one saved in the checkpoint, except for the fields
in `RESUMABLE_FIELDS` (extending a run, checkpointing more often). Model-config fields added to
the package after a checkpoint was written are filled in with their defaults first, so an older
run of an unchanged model still resumes. `config_diff` lists what differs, one line per field,
for the error message.

Used by `dit_mini.train.trainer`.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields, is_dataclass

from torch import nn

from ..registry import describe, kind_of, with_current_names
from .config import TrainConfig

__all__ = ["RESUMABLE_FIELDS", "describe_for_run", "with_new_defaults", "config_diff"]

# Fields a resumed run may change: extending a run or checkpointing more often is fine.
RESUMABLE_FIELDS = (
    "train.steps",
    "train.checkpoint_every",
    "train.checkpoint_minutes",
    "train.log_every",
)


def describe_for_run(model: nn.Module) -> dict:
    """The model part of a run config: kind and config for a registered network; for a network
    of the learner's own (notebook 14), its class name: resumable, not rebuildable."""
    if kind_of(model) is not None:
        return describe(model)
    return {"kind": f"{type(model).__module__}.{type(model).__qualname__}"}


def with_new_defaults(saved: dict, model: nn.Module, described: dict) -> dict:
    """A checkpoint's run config with model-config fields added to the package since it was saved
    filled in with their defaults, so an older run resumes when its model is unchanged. Only the
    fields that the new run's model description (`described`) holds are filled, fields renamed
    since (`dit_mini.registry.RENAMED_FIELDS`, e.g. cfg_dropout) take their new names, and
    TrainConfig fields added since (lr_decay) take their defaults."""
    saved = with_current_names(saved)
    train = saved.get("train")
    if isinstance(train, dict):
        known = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
        saved = {**saved, "train": {**{k: known[k] for k in known if k not in train}, **train}}
    config = getattr(model, "config", None)
    if not (is_dataclass(config) and isinstance(saved.get("model"), dict)):
        return saved
    missing = {
        f.name: f.default
        for f in fields(config)
        if f.name in described and f.name not in saved["model"] and f.default is not MISSING
    }
    return {**saved, "model": {**saved["model"], **missing}}


def _plain(obj):
    return json.loads(json.dumps(obj))


def config_diff(
    saved: dict, new: dict, ignore: tuple[str, ...] = (), prefix: str = ""
) -> list[str]:
    """Lines 'key: saved -> new' for every leaf that differs, skipping dotted keys in `ignore`."""
    saved, new, lines = _plain(saved), _plain(new), []
    for key in sorted(set(saved) | set(new)):
        name = f"{prefix}{key}"
        if name in ignore:
            continue
        a, b = saved.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            lines += config_diff(a, b, ignore, prefix=f"{name}.")
        elif a != b:
            lines.append(f"{name}: {a!r} (checkpoint) -> {b!r} (now)")
    return lines
