"""Notebook 14 (New Game+): the references its checks compare against, and its training view.

In notebook 14 the learner writes a whole DiT (`MyDiT`), the flow-matching loss, the training
step and loop, and the Euler sampler with classifier-free guidance. The references are the
package's own pieces (`dit_mini.models.dit`, `dit_mini.diffusion`); what this module adds:

- `module_test`: a `check(test=...)` predicate for an exercise that builds an nn.Module. The
  learner's class is built, takes the package module's weights with `strict=True` (so its
  parameter names and shapes must be the reference's) and must give the same outputs.
- `ema_update`, `train_step`, `train_loop`: the reference training step (label dropout for
  guidance, the flow-matching loss with logit-normal times, AdamW, gradient clipping, EMA) and a
  plain loop with warm-up and a time budget; the quickstart recipe without the trainer's
  checkpoints and resume. The EMA update, the clipped optimizer step and the learning-rate
  warm-up are the trainer's own functions (`dit_mini.train.step`), so what the learner's step
  is checked against is what `dit_mini.fit` does.
- `yours_or_package`: the cell after an exercise uses the learner's piece when its check passed,
  else the package's, and says which, so a learner copy runs top to bottom.
- `TrainingView`: the live loss curve and sample grid of a training run, redrawn about once a
  minute, with every drawn grid kept as a snapshot for the slider of the notebook.
- `training_budget`, `too_little_training`: how long the learner's DiT trains in each course
  mode (`dit_mini.runtime.course_mode`: fast, medium, full), and the honest message that replaces
  the "draws relics" check when a run got fewer steps than the check needs (a slow or busy
  machine is not a mistake in the learner's code).

Used by notebook 14 (new game plus).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from matplotlib.figure import Figure
from torch import nn

from ..diffusion.guidance import drop_labels, guided
from ..diffusion.losses import DiffusionConfig, make_loss
from ..diffusion.samplers import euler_sample
from ..models.dit import DiT, dit_config
from ..runtime import MODES, course_mode
from ..threads import ThreadTuner, requested_threads
from ..train.step import clip_and_step, ema_update, lr_at, set_lr
from ..viz import image_grid, smooth
from .answers import compare

__all__ = [
    "FLOW",
    "module_test",
    "fresh_output",
    "yours_or_package",
    "ema_update",
    "ema_result",
    "train_step",
    "step_result",
    "train_loop",
    "loop_test",
    "euler_sample_cfg",
    "Snapshot",
    "TrainingView",
    "snapshot_figure",
    "TrainingBudget",
    "BUDGETS",
    "RELICS_CHECK_STEPS",
    "training_budget",
    "too_little_training",
]

# The quickstart's objective: flow matching with logit-normal training times.
FLOW = DiffusionConfig(objective="flow", schedule="linear", time_sampling="logit_normal")


def _key_problems(mine: nn.Module, reference: nn.Module) -> str | None:
    """Which parameter names or shapes differ between two modules' state dicts, or None."""
    ours, theirs = mine.state_dict(), reference.state_dict()
    missing = [k for k in theirs if k not in ours]
    unexpected = [k for k in ours if k not in theirs]
    shapes = [
        f"{k} {tuple(ours[k].shape)} (expected {tuple(v.shape)})"
        for k, v in theirs.items()
        if k in ours and ours[k].shape != v.shape
    ]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing[:4])}" + (" ..." if len(missing) > 4 else ""))
    if unexpected:
        extra = ", ".join(unexpected[:4]) + (" ..." if len(unexpected) > 4 else "")
        parts.append(f"unexpected {extra}")
    if shapes:
        parts.append(f"wrong shape {', '.join(shapes[:3])}")
    if not parts:
        return None
    return "its parameters do not match the package's names and shapes: " + "; ".join(parts)


def module_test(
    reference: nn.Module,
    args: Sequence = (),
    inputs: Sequence = (),
    atol: float = 1e-5,
    rtol: float = 1e-4,
    axes: Sequence[str] = (),
) -> Callable[[type], bool | str]:
    """A `check(..., test=...)` predicate for a learner's nn.Module class.

    The class is built with `args`, loads `reference.state_dict()` with strict=True and is run
    on `inputs` beside the reference (both without gradients). True when the outputs agree to
    atol/rtol; else a short reason (names or shapes that differ, or where the first wrong value
    is, named with `axes`, e.g. ("image", "token", "channel")).
    """

    def test(cls) -> bool | str:
        mine = cls(*args)
        if not isinstance(mine, nn.Module):
            return f"expected an nn.Module, got {type(mine).__name__}"
        with torch.no_grad():
            if problem := _key_problems(mine, reference):
                return problem
            mine.load_state_dict(reference.state_dict(), strict=True)
            mine.eval()
            return compare(mine(*inputs), reference(*inputs), atol, rtol, axes=axes) or True

    return test


@torch.no_grad()
def fresh_output(cls, args: Sequence = (), inputs: Sequence = (), seed: int = 0) -> torch.Tensor:
    """The output of a freshly built `cls(*args)` (seeded) on `inputs`: what a module computes
    before any training, e.g. exactly its input for an adaLN-Zero block."""
    with torch.random.fork_rng(devices=[]):  # seeded, the global generator left alone
        torch.manual_seed(seed)
        return cls(*args)(*inputs)


def yours_or_package(label: str, solved: bool, yours, package):
    """`yours` when its check passed, else `package`; prints which one the next cells use."""
    if solved:
        print(f"Using your {label}.")
        return yours
    print(
        f"Your {label} is not solved yet: the cells below use the package's instead, "
        "so the notebook still runs. Come back and solve it, then run the cells again."
    )
    return package


def _tiny_pair(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """A small package DiT (2 blocks of width 32 on 8 x 8 images) and a different copy of it."""
    generator = torch.Generator().manual_seed(seed)
    config = dit_config("nano", input_size=8, hidden_size=32, depth=2, num_heads=2, patch_size=2)
    model, other = DiT(config), DiT(config)
    with torch.no_grad():
        for p in list(model.parameters()) + list(other.parameters()):
            p.copy_(0.1 * torch.randn(p.shape, generator=generator))  # every update shows
    return model, other


def ema_result(update: Callable, decay: float = 0.9) -> dict:
    """The EMA's state dict after `update(ema, model, decay)` on two different small DiTs."""
    model, ema = _tiny_pair()
    update(ema, model, decay)
    return {k: v.clone() for k, v in ema.state_dict().items()}


def train_step(
    model: nn.Module,
    ema: nn.Module,
    optimizer: torch.optim.Optimizer,
    x0: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator,
    class_dropout_prob: float = 0.1,
    ema_decay: float = 0.995,
    grad_clip: float = 1.0,
    null_class: int = 10,
) -> float:
    """One optimizer step of flow matching with logit-normal times; returns the loss.

    Draws from `generator`, in this order: which labels become the null class (`drop_labels`),
    the times, the noise (`make_loss(FLOW).draw`). Then AdamW on the clipped gradient and the
    EMA update. Shapes: x0 (B, C, H, W), y (B,).
    """
    y = drop_labels(y, class_dropout_prob, null_class, generator)
    loss_fn = make_loss(FLOW)
    t, eps = loss_fn.draw(x0, generator)
    loss = loss_fn(model, x0, y, t=t, eps=eps)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    clip_and_step(model, optimizer, grad_clip)  # the trainer's own functions (train/step.py)
    ema_update(ema, model, ema_decay)
    return loss.item()


def step_result(step: Callable, steps: int = 2, seed: int = 0) -> dict:
    """Losses, weights and EMA after `steps` calls of `step(model, ema, optimizer, x0, y, g)` on
    a small DiT, seeded data and generator; for checking a learner's step against `train_step`."""
    model, _ = _tiny_pair(seed)
    ema = DiT(model.config)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(6, 3, 8, 8, generator=g)
    y = torch.arange(6) % 10
    losses = [float(step(model, ema, optimizer, x0, y, g)) for _ in range(steps)]
    return {
        "losses": losses,
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "ema": {k: v.detach().clone() for k, v in ema.state_dict().items()},
    }


def train_loop(
    step_fn: Callable,
    model: nn.Module,
    ema: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    batch_size: int = 16,
    lr: float = 3e-3,
    warmup: int = 100,
    seconds: float | None = None,
    generator: torch.Generator | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """The reference loop: random batches, linear warm-up of the learning rate, `step_fn` per
    step, stop after `steps` steps or `seconds`; returns the loss of every step."""
    generator = generator or torch.Generator().manual_seed(0)
    history, start = [], time.perf_counter()
    for step in range(steps):
        if seconds is not None and time.perf_counter() - start > seconds:
            break
        set_lr(optimizer, lr_at(step, lr, warmup))
        idx = torch.randint(0, len(images), (batch_size,), generator=generator)
        loss = step_fn(model, ema, optimizer, images[idx], labels[idx], generator)
        history.append(loss)
        if on_step is not None:
            on_step(step, loss)
    return history


# (steps, batch_size, lr, warmup): warm-up shorter than the run, of one step and longer than the
# run, so that a loop with the notebook's numbers written into it fails on the others
LOOP_TEST_CONFIGS = ((6, 3, 0.8, 4), (5, 2, 0.3, 1), (7, 4, 1.5, 10))


class _LoopMistake(ValueError):
    """Raised by `loop_test`'s recording step; the predicate returns its message."""


def loop_test(loop: Callable) -> bool | str:
    """A `check(test=...)` predicate for a learner's loop with `train_loop`'s signature: run it
    with a recording step under each of `LOOP_TEST_CONFIGS`, twice with the same seed (the
    batches must come from `generator`), and once with a zero time budget."""
    try:
        return _loop_test(loop)
    except _LoopMistake as mistake:
        return str(mistake)


def _loop_test(loop: Callable) -> bool | str:
    images = torch.arange(20.0).reshape(20, 1, 1, 1).expand(20, 3, 2, 2).clone()
    labels = torch.arange(20) % 10
    seen, called = [], []
    batch = {"size": 0, "where": ""}

    def step(model, ema, optimizer, x0, y, generator):
        size = batch["size"]
        if x0.shape != (size, 3, 2, 2) or y.shape != (size,):
            raise _LoopMistake(
                f"the step got a batch of shape {tuple(x0.shape)}, expected ({size}, 3, 2, 2) "
                f"{batch['where']}: draw batch_size images per step"
            )
        if not torch.equal(labels[x0[:, 0, 0, 0].long()], y):
            raise _LoopMistake("the step got labels that do not belong to its images")
        seen.append((optimizer.param_groups[0]["lr"], x0[:, 0, 0, 0].tolist()))
        return 10.0 - len(seen)

    weight = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    for steps, batch_size, lr, warmup in LOOP_TEST_CONFIGS:
        where = f"(steps={steps}, batch_size={batch_size}, lr={lr}, warmup={warmup})"
        batches = []
        for _ in range(2):  # the same seed twice: the same batches
            seen.clear(), called.clear()
            batch.update(size=batch_size, where=where)
            g = torch.Generator().manual_seed(steps)
            history = loop(step, None, None, optimizer, images, labels, steps,
                           batch_size=batch_size, lr=lr, warmup=warmup, generator=g,
                           on_step=lambda s, v: called.append((s, v)))  # fmt: skip
            batches.append([b for _, b in seen])
        if len(seen) != steps:
            return f"{steps} steps asked for, the step function ran {len(seen)} times {where}"
        lrs = [rate for rate, _ in seen]
        expected = [lr * min(1.0, (s + 1) / warmup) for s in range(steps)]
        if any(abs(a - b) > 1e-9 for a, b in zip(lrs, expected)):
            got, want = [round(v, 3) for v in lrs], [round(v, 3) for v in expected]
            return (
                f"learning rates {got}, expected {want} {where}: warm up linearly over "
                "`warmup` steps to `lr`, then hold it"
            )
        if list(history) != [10.0 - k for k in range(1, steps + 1)]:
            return f"return the list of the losses the step function returned, one per step {where}"
        if [s for s, _ in called] != list(range(steps)) or [v for _, v in called] != list(history):
            return f"call on_step(step, loss) after every step, steps counted from 0 {where}"
        if len({tuple(b) for b in batches[0]}) < 2:
            return "every step got the same batch: draw random indices with the generator each step"
        if batches[0] != batches[1]:
            return (
                "two runs with the same seeded generator drew different batches: draw the "
                "indices with `generator=generator`, not from torch's global random state"
            )
    seen.clear()
    batch.update(size=3, where="(steps=50, batch_size=3, seconds=0.0)")
    loop(step, None, None, optimizer, images, labels, 50, batch_size=3, seconds=0.0,
         generator=torch.Generator().manual_seed(0))  # fmt: skip
    if len(seen) > 1:
        return f"with seconds=0 the loop ran {len(seen)} steps: stop once the time is spent"
    return True


@torch.no_grad()
def euler_sample_cfg(
    model: Callable,
    x_T: torch.Tensor,
    y: torch.Tensor,
    steps: int = 20,
    cfg_scale: float = 3.0,
    null_class: int = 10,
) -> torch.Tensor:
    """The package's Euler sampler from t = 1 to 0 with classifier-free guidance, in the
    signature of notebook 14's sampler exercise. Shapes: x_T (B, C, H, W), y (B,) -> x_0."""
    return euler_sample(guided(model, cfg_scale, null_class), x_T, y, steps)


# Steps of batch 16 after which the recipe's EMA draws relics the classifier recognises (>= 80 %
# class accuracy): measured with `python -m dit_mini.course.medium_mode` (MEASUREMENTS.md,
# section 14; the notebook's optimizer, AdamW 4e-3 with betas (0.9, 0.95): 84 % after 2,500 steps,
# 86 % after 2,750, 89 % after 3,000; issue 4's 3e-3 with betas (0.9, 0.999): 82 % after 2,750,
# 86 % after 3,000, 93 % after 3,500, the medium budget). Steps, not seconds: a busy machine
# trains slower, not worse.
RELICS_CHECK_STEPS = 3000


@dataclass(frozen=True)
class TrainingBudget:
    """How long notebook 14 trains the learner's DiT in one course mode, and how it is shown.

    The loop stops after `steps` steps or `seconds` of training (None: no time limit); a sample
    grid is drawn every `grid_every_steps` steps (None: about once a minute). `check_steps` is
    what the "draws relics" check needs (0: no check, the drawings of FAST mode are noise)."""

    mode: str
    steps: int
    seconds: float | None
    grid_every_steps: int | None
    per_row: int
    n_per_class: int
    check_steps: int


BUDGETS = {
    "fast": TrainingBudget("fast", 40, None, 10, 2, 3, 0),
    "medium": TrainingBudget("medium", 3500, 600.0, 500, 4, 20, RELICS_CHECK_STEPS),
    "full": TrainingBudget("full", 100_000, 600.0, None, 4, 20, RELICS_CHECK_STEPS),
}


def training_budget(mode: str | None = None) -> TrainingBudget:
    """The budget of `mode` (fast, medium or full), by default of the course mode in force."""
    mode = course_mode() if mode is None else mode
    if mode not in BUDGETS:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    return BUDGETS[mode]


def too_little_training(steps: int, seconds: float, budget: TrainingBudget) -> str | None:
    """None when a run of `steps` steps is long enough for the "draws relics" check; else why not,
    in words that do not blame the learner's code."""
    if budget.check_steps <= 0:
        return (
            f"{budget.mode} mode trained {steps:,} steps: the drawings are noise and the "
            "classifier's score is chance, so nothing is checked. Set DIT_MINI_MODE=medium "
            "(a laptop, about 3 minutes) or full and run the notebook again to see your DiT draw "
            "relics."
        )
    if steps >= budget.check_steps:
        return None
    return (
        f"your run got {steps:,} steps in {seconds / 60:.1f} minutes, fewer than the "
        f"{budget.check_steps:,} this check needs (your code is not the problem: the machine was "
        "slow or busy); run the training cell again, it continues"
    )


@dataclass
class Snapshot:
    """A sample grid drawn during training: when, after how many steps, and the images."""

    seconds: float
    step: int
    loss: float
    images: torch.Tensor  # (rows * per_row, C, H, W) in [-1, 1]


def snapshot_figure(
    snapshots: Sequence[Snapshot],
    index: int,
    history: Sequence[float],
    class_names: Sequence[str],
    per_row: int,
    title: str = "your DiT in training",
) -> Figure:
    """The loss curve up to snapshot `index` (marked) beside its sample grid (a row per class)."""
    if not snapshots:
        raise ValueError("no snapshots yet: train at least until the first sample grid is drawn")
    snap = snapshots[max(0, min(index, len(snapshots) - 1))]
    fig = Figure(figsize=(10, 4.2))
    ax_loss, ax_img = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    seen = list(history[: max(snap.step, 1)])
    if seen:
        steps = range(1, len(seen) + 1)
        ax_loss.plot(steps, seen, color="tab:blue", alpha=0.25, linewidth=0.7, label="one batch")
        window = max(1, len(seen) // 25)
        ax_loss.plot(steps, smooth(seen, window), color="tab:blue", label=f"mean of {window}")
        ax_loss.set_yscale("log")
        ax_loss.legend(fontsize=8)
    ax_loss.set(xlabel="training step", ylabel="flow-matching loss (log)")
    ax_loss.grid(alpha=0.3, which="both")
    ax_img.imshow(image_grid(snap.images, nrow=per_row, pad=1))
    ax_img.set_yticks(
        [(i + 0.5) * (snap.images.shape[-1] + 1) for i in range(len(class_names))], class_names
    )
    ax_img.set_xticks([])
    ax_img.set_title(
        f"after {snap.step} steps, {snap.seconds / 60:.1f} min (EMA, guided)", fontsize=10
    )
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@dataclass
class TrainingView:
    """Live view of a training run: every `every_s` seconds or `every_steps` steps (and at the
    end) draw samples with `draw(model) -> images` from the EMA and redraw the loss curve and the
    grid in one display.

    Call `update(step, loss)` after every step (it is the loop's `on_step`) and `finish()` once.
    The snapshots stay in `snapshots` for a slider. On a shared CPU the view also picks torch's
    thread count from the measured step times (`dit_mini.threads.ThreadTuner`; set
    DIT_MINI_THREADS=N to fix it); the count it found stays set after `finish()`.
    """

    ema: nn.Module
    draw: Callable[[nn.Module], torch.Tensor]
    class_names: Sequence[str]
    per_row: int
    every_s: float = 60.0
    every_steps: int | None = None
    live: bool = True
    history: list[float] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)

    def __post_init__(self):
        self._start = time.perf_counter()
        self._last = self._start
        self._handle = None
        self._sampling_s = 0.0
        self._tuner = ThreadTuner(fixed=requested_threads())
        self._tuner.before_step()
        self._step_start = self._start

    @property
    def seconds(self) -> float:
        """Training time so far: wall time since the start, less the time spent drawing."""
        return time.perf_counter() - self._start - self._sampling_s

    def update(self, step: int, loss: float) -> None:
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss} at step {step + 1}: training diverged; lower the "
                "learning rate or check the loss and the step for a sign or scale mistake"
            )
        self.history.append(loss)
        self._tuner.after_step(time.perf_counter() - self._step_start)
        by_steps = self.every_steps and len(self.history) % self.every_steps == 0
        if by_steps or time.perf_counter() - self._last >= self.every_s:
            self.snap()
        self._tuner.before_step()
        self._step_start = time.perf_counter()

    def snap(self) -> Snapshot:
        """Draw a sample grid now, keep it, and redraw the live view."""
        tic = time.perf_counter()
        with torch.no_grad():
            images = self.draw(self.ema).detach().cpu().clamp(-1, 1)
        loss = sum(self.history[-50:]) / max(1, len(self.history[-50:]))
        snap = Snapshot(self.seconds, len(self.history), loss, images)
        self.snapshots.append(snap)
        if self.live:
            self._redraw()
        self._sampling_s += time.perf_counter() - tic
        self._last = time.perf_counter()
        return snap

    def finish(self) -> None:
        """The last grid, unless one was drawn at this very step."""
        torch.set_num_threads(self._tuner.chosen)
        if not self.snapshots or self.snapshots[-1].step != len(self.history):
            self.snap()

    def figure(self, index: int = -1) -> Figure:
        index = index % len(self.snapshots) if self.snapshots else 0
        return snapshot_figure(self.snapshots, index, self.history, self.class_names, self.per_row)

    def _redraw(self) -> None:
        from IPython.display import Image, display  # deferred: notebooks only

        buffer = io.BytesIO()
        self.figure().savefig(buffer, format="png", dpi=80)
        image = Image(data=buffer.getvalue())
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)
