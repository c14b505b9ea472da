"""The pieces of one optimizer step, shared by the trainer and notebook 14's reference.

`dit_mini.train.session.TrainingSession.train_step` (the trainer) and
`dit_mini.course.new_game_plus.train_step` (what notebook 14 grades the learner's step against)
both call these, so the course cannot drift away from the trainer:

- `lr_at(step, lr, warmup_steps, decay, steps)`: the learning rate of a step, with linear
  warm-up and an optional linear or cosine decay to 0 at the last step;
- `set_lr(optimizer, lr)`: put it into every parameter group;
- `clip_and_step(model, optimizer, grad_clip, scaler)`: (unscale,) clip the model's gradient
  norm, take the optimizer step (and update the float16 loss scaler);
- `ema_decay_at(step, decay, warmup)`: the EMA decay after a step, min(decay, (1 + s) / (10 + s))
  with warm-up, so the early EMA is not dominated by the random initial weights;
- `ema_update(ema, model, decay)`: ema <- decay * ema + (1 - decay) * model; buffers copied.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["LR_DECAYS", "lr_at", "set_lr", "clip_and_step", "ema_decay_at", "ema_update"]

LR_DECAYS = ("none", "linear", "cosine")  # learning rate after the warm-up (TrainConfig.lr_decay)


def lr_at(
    step: int, lr: float, warmup_steps: int = 0, decay: str = "none", steps: int = 0
) -> float:
    """Learning rate of step `step` (0-based): linear warm-up over `warmup_steps`, then `lr`,
    or with `decay` "linear" / "cosine" a decay that reaches 0 after step `steps`."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if decay == "none":
        return lr
    left = max(0.0, (steps - step) / max(1, steps - warmup_steps))  # 1 -> 0
    if decay == "linear":
        return lr * left
    return lr * (0.5 - 0.5 * math.cos(math.pi * left))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group of `optimizer`."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def clip_and_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    grad_clip: float,
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    """After backward: clip the gradient norm of `model`'s parameters to `grad_clip` (0: no
    clipping) and take the optimizer step. With a float16 `scaler` the gradients are unscaled
    first and the scaler is updated after the step (it skips a step with inf/NaN gradients)."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    if grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()


def ema_decay_at(step: int, decay: float, warmup: bool = True) -> float:
    """EMA decay after step `step` (0-based): min(decay, (1 + step) / (10 + step)) with warm-up
    (0.1 after the first step, 0.5 after the ninth), else `decay`."""
    return min(decay, (1 + step) / (10 + step)) if warmup else decay


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter; buffers are copied.

    The model's values are cast to the EMA's device and dtype."""
    ema_params = list(ema.parameters())
    params = [p.detach().to(e) for e, p in zip(ema_params, model.parameters())]
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)  # one call, not a Python loop
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)
