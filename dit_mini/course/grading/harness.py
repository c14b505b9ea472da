"""How a probe calls an answer: the same few lines run on the learner's object in the sandbox
and on the package's reference in the grader, so that the two outputs can be compared.

Each harness takes the answer (a function, a class or a value) and the probe's fresh inputs and
returns plain data (tensors, numbers, tuples, dicts). Nothing here decides a verdict: the grader
compares what comes back (`dit_mini.course.grading.compare`).

Used by `dit_mini.course.grading.kernel` (sandbox side) and `.runner` (grader side).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["HARNESSES"]


def call(fn, *args):
    """fn(*args)."""
    return fn(*args)


@torch.no_grad()
def call_no_grad(fn, *args):
    """fn(*args) without autograd (model calls)."""
    return fn(*args)


def grads(fn, mu: float, sigma: float, eps: torch.Tensor):
    """d fn(mu, sigma, eps).sum() / d(mu, sigma): do gradients reach both parameters?"""
    mu_t = torch.tensor(mu, requires_grad=True)
    sigma_t = torch.tensor(sigma, requires_grad=True)
    out = fn(mu_t, sigma_t, eps)
    return tuple(float(g) for g in torch.autograd.grad(out.sum(), (mu_t, sigma_t)))


@torch.no_grad()
def module(cls, ctor: tuple, state: dict, inputs: tuple):
    """cls(*ctor) with `state` loaded strictly, in eval mode, called on `inputs`."""
    made = cls(*ctor)
    if not isinstance(made, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(made).__name__}")
    made.load_state_dict(state, strict=True)
    made.eval()
    return made(*inputs)


@torch.no_grad()
def fresh(cls, ctor: tuple, inputs: tuple, seed: int):
    """The output of a freshly built, seeded cls(*ctor) on `inputs` (zero-init checks)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(*ctor)(*inputs)


def ema(update, decay: float):
    """The EMA's state dict after update(ema, model, decay) on two different small DiTs."""
    # deferred: the course layer
    from ..new_game_plus import ema_result

    return ema_result(update, decay)


def train_steps(step, seed: int):
    """Losses, weights and EMA after two steps of `step` on a small seeded DiT."""
    from ..new_game_plus import step_result  # deferred: the course layer

    return step_result(step, steps=2, seed=seed)


def loop_trace(loop, seed: int, steps: int, batch: int, lr: float, warmup: int):
    """What a training loop did with a recording step: learning rates, batches, losses, calls."""
    images = torch.arange(20.0).reshape(20, 1, 1, 1).expand(20, 3, 2, 2).clone()
    labels = torch.arange(20) % 10
    seen, called = [], []

    def step(model, shadow, optimizer, x0, y, generator):
        good = x0.shape == (batch, 3, 2, 2) and torch.equal(labels[x0[:, 0, 0, 0].long()], y)
        seen.append((optimizer.param_groups[0]["lr"], x0[:, 0, 0, 0].tolist(), bool(good)))
        return 10.0 - len(seen)

    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    g = torch.Generator().manual_seed(seed)
    history = loop(
        step,
        None,
        None,
        optimizer,
        images,
        labels,
        steps,
        batch_size=batch,
        lr=lr,
        warmup=warmup,
        generator=g,
        on_step=lambda s, v: called.append((s, v)),
    )
    trace = {"lrs": [s[0] for s in seen], "batches": [s[1] for s in seen]}
    trace.update(good=all(s[2] for s in seen), history=[float(v) for v in history])
    trace["called"] = [[int(s), float(v)] for s, v in called]
    seen.clear()
    loop(
        step, None, None, optimizer, images, labels, 50, batch_size=batch, seconds=0.0, generator=g
    )
    trace["zero_budget_steps"] = len(seen)
    return trace


def value(answer):
    """The answer itself (a number, a tuple, a tensor, a string)."""
    return answer


def names(answer):
    """A set (or list, tuple) of names as a sorted list; anything else as it is."""
    if isinstance(answer, (set, frozenset, list, tuple)) and all(
        isinstance(n, str) for n in answer
    ):
        return sorted(answer)
    return answer


HARNESSES = {
    "call": call,
    "call_no_grad": call_no_grad,
    "grads": grads,
    "module": module,
    "fresh": fresh,
    "ema": ema,
    "train_steps": train_steps,
    "loop_trace": loop_trace,
    "value": value,
    "names": names,
}
