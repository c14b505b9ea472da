"""What a training run is: its config, its data order and its label dropout.

`TrainConfig` holds the optimizer, EMA, checkpoint and seed settings of `dit_mini.train.trainer.fit`
(the network's architecture and the diffusion recipe live in their own configs). A run is a pure
function of its seed: `derive_seed` turns (seed, purpose, ...) into independent seeds, and
`batch_indices` gives the examples of any step without any state to save.
"""

from __future__ import annotations

import functools
import hashlib
import math
import numbers
import operator
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from ..models.config_checks import check_positive, check_probability
from .step import LR_DECAYS, ema_decay_at, lr_at

__all__ = ["LR_DECAYS", "TrainConfig", "derive_seed", "batch_indices", "resolve_dropout"]


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained (its architecture and the diffusion recipe live elsewhere).

    `batch_size` is the global batch: with several processes each one takes an equal share.
    `checkpoint_every` 0 writes a checkpoint only at the end; `grad_clip` 0 turns clipping off.
    """

    # `help` is the text of the matching `dit-mini train` option (dit_mini.cli.options).
    steps: int = field(default=1000, metadata={"help": "optimizer steps in total"})
    batch_size: int = field(
        default=64,
        metadata={"help": "GLOBAL batch size, split equally among the processes under torchrun"},
    )
    lr: float = field(default=1e-4, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    adam_beta2: float = field(
        default=0.999,
        metadata={
            "help": "AdamW's second-moment decay (0.999 as in PyTorch and DiT; 0.95 learns "
            "faster in short runs at a high learning rate, as the quickstart's)"
        },
    )
    warmup_steps: int = field(
        default=0, metadata={"help": "steps of linear learning-rate warm-up (0: none)"}
    )
    lr_decay: str = field(
        default="none",
        metadata={
            "help": "after the warm-up, 'none' keeps the learning rate; 'linear' or 'cosine' "
            "lower it to 0 at the last step (--steps)"
        },
    )
    ema_decay: float = field(
        default=0.9999,
        metadata={"help": "decay of the moving average of the weights (the EMA is sampled)"},
    )
    ema_warmup: bool = True  # EMA decay min(decay, (1 + n) / (10 + n)) early on; not an option
    grad_clip: float = field(
        default=1.0, metadata={"help": "clip the gradient norm to this value (0: no clipping)"}
    )
    class_dropout_prob: float | None = field(
        default=None,
        metadata={
            "help": "probability of replacing a label by the null class, so the model learns "
            "classifier-free guidance (0: never); the model's class_dropout_prob, which it "
            "must equal (None: the model's)"
        },
    )
    seed: int = field(
        default=0, metadata={"help": "seed of the initial weights, data order and noise"}
    )
    checkpoint_every: int = field(
        default=0, metadata={"help": "write a checkpoint every K steps (0: only at the end)"}
    )
    checkpoint_minutes: float = field(
        default=5.0,
        metadata={"help": "also write a checkpoint after this many minutes without one, so a "
                  "failed final save costs at most that much training (0: off)"},
    )  # fmt: skip
    log_every: int = field(
        default=10, metadata={"help": "steps between loss updates on the progress bar"}
    )

    def __post_init__(self):
        for name in (
            "steps",
            "batch_size",
            "log_every",
            "warmup_steps",
            "checkpoint_every",
            "seed",
        ):
            value = getattr(self, name)
            try:
                operator.index(value)  # numpy integers are fine, 2.5 is not
            except TypeError:
                raise TypeError(
                    f"{name} must be an integer; got {value!r} ({type(value).__name__}): pass "
                    f"{name}={int(value) if _is_number(value) and math.isfinite(value) else 'N'}"
                ) from None
        check_positive(self, ("steps", "batch_size", "log_every"))
        for name in ("warmup_steps", "checkpoint_every", "seed"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        for name in (
            "lr",
            "weight_decay",
            "adam_beta2",
            "ema_decay",
            "grad_clip",
            "checkpoint_minutes",
        ):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value):
                raise ValueError(
                    f"{name} must be a finite number; got {value!r} (check the --"
                    f"{name.replace('_', '-')} option)"
                )
        if not self.lr > 0:
            raise ValueError(f"lr must be positive; got {self.lr}")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.checkpoint_minutes < 0:
            raise ValueError(
                f"weight_decay ({self.weight_decay}), grad_clip ({self.grad_clip}) and "
                f"checkpoint_minutes ({self.checkpoint_minutes}) must be >= 0 (0 turns "
                "clipping and timed checkpoints off)"
            )
        if not 0.0 <= self.adam_beta2 < 1.0:
            raise ValueError(f"adam_beta2 must lie in [0, 1); got {self.adam_beta2}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1); got {self.ema_decay}")
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(f"lr_decay must be one of {list(LR_DECAYS)}; got {self.lr_decay!r}")
        if self.class_dropout_prob is not None:
            check_probability("class_dropout_prob", self.class_dropout_prob)

    def lr_at(self, step: int) -> float:
        """Learning rate of step `step` (0-based): linear warm-up, then constant or, with
        `lr_decay`, a linear or half-cosine decay that reaches 0 after the last step."""
        return lr_at(step, self.lr, self.warmup_steps, self.lr_decay, self.steps)

    def ema_decay_at(self, step: int) -> float:
        """EMA decay after step `step`: min(decay, (1 + s) / (10 + s)) with warm-up, so early
        EMA weights are not dominated by the random initialisation."""
        return ema_decay_at(step, self.ema_decay, self.ema_warmup)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def derive_seed(*parts) -> int:
    """A 63-bit seed from (seed, stream name, index...), stable across runs and platforms."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


@functools.lru_cache(maxsize=4)
def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of one epoch, made once per epoch instead of once per step (a step
    only reads a slice of it; callers must not write to it)."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "data", epoch))
    return torch.randperm(n, generator=gen)


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> torch.Tensor:
    """Indices of the global batch of step `step`: a slice of the concatenated shuffled epochs.

    Shapes: -> (batch_size,) int64.
    """
    start, stop = step * batch_size, (step + 1) * batch_size
    parts = []
    for epoch in range(start // n, (stop - 1) // n + 1):
        perm = _epoch_order(n, seed, epoch)
        lo, hi = max(start - epoch * n, 0), min(stop - epoch * n, n)
        parts.append(perm[lo:hi])
    return torch.cat(parts)


def resolve_dropout(config: TrainConfig, model: nn.Module) -> TrainConfig:
    """The label dropout of guidance has one source: the model's config (`class_dropout_prob`,
    the same name in every model's config), which also decides whether a null class exists.
    `class_dropout_prob=None` takes it from there; a different explicit value is an error."""
    built = getattr(getattr(model, "config", None), "class_dropout_prob", None)
    if config.class_dropout_prob is None:
        return replace(config, class_dropout_prob=built or 0.0)
    if built is not None and config.class_dropout_prob != built:
        raise ValueError(
            f"class_dropout_prob={config.class_dropout_prob} but the model was built with label "
            f"dropout {built}; the model's config is the one that counts: build the model with "
            "the dropout you want and leave the training's class_dropout_prob unset"
        )
    return config
