"""Training that never loses a run: AdamW, EMA, checkpoints, exact resume and data parallelism.

`fit` trains any model with the (x_t, t, y) contract on any loss function
`loss_fn(model, x0, y, generator) -> scalar`. Like the reference DiT (arXiv 2212.09748, sec. 5) it
uses AdamW at a constant learning rate (after an optional linear warm-up) and keeps an exponential
moving average (EMA) of the weights, the model that is sampled from.

Randomness comes only from explicit sources, so a run is a pure function of its seed:
- data order: epoch e is the permutation `randperm(N)` of a generator seeded from (seed, e), and
  step s takes positions [s B, (s + 1) B) of the concatenated epochs; nothing to save.
- label dropout for guidance: a CPU generator drawing for the whole global batch.
- the loss's noise: a generator on the training device. When the loss has a
  `draw(x0, generator) -> (t, eps)` method (every `dit_mini.diffusion.losses.make_loss` loss has
  one),
  the trainer draws t and eps for the whole global batch and hands each process its slice through
  the `t=` and `eps=` keywords. So sample i of a global batch sees the same noise whatever the
  number of processes, and `torchrun --nproc_per_node=2` ends where one process ends.
The generators' states, the optimizer, the EMA and the loss history go into every checkpoint, so
a run stopped at any point (even by SIGKILL) and resumed from its last checkpoint ends
bit-identical on the CPU to one that never stopped.

Taught in notebook 03 (clearing the fog); used by every notebook that trains.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ..registry import kind_of, save_model
from ..runtime import dist_info
from ..storage import CheckpointError, save_tensors
from ..threads import ThreadTuner, requested_threads
from .config import TrainConfig
from .lock import run_lock
from .memory import keep_freed_memory
from .session import CHECKPOINT_NAME, TrainingSession

__all__ = ["EXPORT_NAME", "TrainResult", "TrainingInterrupted", "fit"]

EXPORT_NAME = "ema.safetensors"


@dataclass
class TrainResult:
    """What `fit` returns: the trained model, its EMA, the per-step losses and timings."""

    model: nn.Module
    ema: nn.Module
    history: list[float]
    step: int
    seconds: float
    images_per_second: float
    checkpoint: Path | None = None
    threads: int | None = None  # the torch thread count the run ended with


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped `fit` at the end of a step, after the run was saved.

    `result` holds the TrainResult up to that step; the message says how to continue."""

    def __init__(self, message: str, result: TrainResult):
        super().__init__(message)
        self.result = result


@contextlib.contextmanager
def _stop_at_step_end() -> Iterator[dict]:
    """While training, the first SIGINT (Ctrl-C) or SIGTERM (timeout, Slurm, Colab) only asks
    the loop to stop after the current step; the handlers are then restored, so a second one
    stops at once. Outside the main thread (no signals there) nothing changes."""
    asked: dict = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield asked
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def ask(signum, frame):
        asked["signal"] = signal.Signals(signum).name
        for s, handler in previous.items():
            signal.signal(s, handler)

    for s in previous:
        signal.signal(s, ask)
    try:
        yield asked
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _export(ema: nn.Module, path: Path, run_config: dict) -> None:
    """The EMA weights as a model file; `dit_mini.load_model` rebuilds registered networks."""
    extra = {k: v for k, v in run_config.items() if k != "model"}
    if kind_of(ema) is not None:
        save_model(ema, path, extra=extra)
    else:  # the learner's own network: the weights and the run, for their own module to load
        save_tensors(path, ema.state_dict(), {"model": run_config["model"], "extra": extra})


def _refuse_foreign_weights(out_dir: Path | None, resume, overwrite: bool) -> None:
    """A new run never silently replaces exported weights that it did not write: a folder with
    an ema.safetensors but no checkpoint.pt holds someone's model, not a run to continue."""
    if out_dir is None or overwrite or resume is True:
        return
    weights, checkpoint = Path(out_dir) / EXPORT_NAME, Path(out_dir) / CHECKPOINT_NAME
    if weights.exists() and not checkpoint.exists():
        raise CheckpointError(
            f"{out_dir} holds {EXPORT_NAME} but no {CHECKPOINT_NAME}: a new run would replace "
            "those weights at its end; move them, choose another output folder, or pass "
            "overwrite=True (--overwrite) to replace them"
        )


class _Timer:
    """Whether `minutes` have passed since the last checkpoint; under torchrun the main
    process decides (at log steps) and tells the others, so they all save together."""

    def __init__(self, minutes: float, every: int):
        self.seconds, self.every, self.last = 60.0 * minutes, every, time.monotonic()

    def due(self, run: TrainingSession) -> bool:
        if not self.seconds or run.path is None:
            return False
        late = time.monotonic() - self.last > self.seconds
        if run.info.distributed:
            if run.step % self.every:
                return False
            flag = torch.tensor([float(late)], device=run.device)
            torch.distributed.broadcast(flag, src=0)
            late = bool(flag.item())
        return late


def fit(
    model: nn.Module,
    loss_fn: Callable,
    data,
    config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    quiet: bool = False,
    callback: Callable[[int, float], bool | None] | None = None,
    run_config: dict | None = None,
    threads: int | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train `model` on `data` with `loss_fn(model, x0, y, generator)`; see the module docstring.

    `data` is an ImageDataset, an (images, labels) pair or an images tensor (unconditional).
    With `out_dir`, checkpoints go to out_dir/checkpoint.pt (every `checkpoint_every` steps and at
    the end) and the EMA weights to out_dir/ema.safetensors; `resume=True` continues the run found
    there. `callback(step, loss)` runs after every step; returning True stops early (the run is
    then saved). `run_config` (plain data, e.g. the diffusion config) is stored in checkpoints and
    must match when resuming. On the CPU the torch thread count is measured and chosen while
    training (`dit_mini.threads`); `threads` (or $DIT_MINI_THREADS) fixes it, which also makes
    runs repeat bit for bit, and malloc keeps freed memory for the next step
    (`dit_mini.train.memory.keep_freed_memory`). The output folder is locked for this process
    (`dit_mini.train.lock`) and a new run refuses to replace an ema.safetensors it did not write
    unless `overwrite`.
    Besides every `checkpoint_every` steps, a checkpoint is written whenever
    `checkpoint_minutes` have passed since the last one.

    Shapes: data images (N, C, H, W) in [-1, 1], labels (N,).
    """
    config = config or TrainConfig()
    with run_lock(out_dir if dist_info().is_main else None):
        _refuse_foreign_weights(out_dir, resume, overwrite)
        run = TrainingSession(model, loss_fn, data, config, out_dir, device, run_config)
        run.open(resume)
        return _train(run, quiet, callback, threads)


def _train(run: TrainingSession, quiet: bool, callback, threads) -> TrainResult:
    """The loop of `fit` on an opened session: steps, checkpoints, export, the result."""
    model, config = run.model, run.config
    show = not quiet and run.info.is_main
    bar = tqdm(total=config.steps, initial=run.step, disable=not show, desc="train", unit="step")
    first, start = run.step, time.perf_counter()
    model.train()
    fixed = requested_threads(threads)
    if run.device.type == "cpu":
        keep_freed_memory()  # no page faults for the same tensors every step (memory.py)
    tuner = ThreadTuner(
        fixed if run.device.type == "cpu" else torch.get_num_threads(), quiet=not show
    )
    timer = _Timer(config.checkpoint_minutes, config.log_every)
    with _stop_at_step_end() as asked, contextlib.ExitStack() as closing:
        closing.callback(bar.close)
        closing.callback(tuner.close)
        while run.step < config.steps and not asked["signal"]:
            tuner.before_step()
            tic = time.perf_counter()
            loss = run.train_step()
            tuner.after_step(time.perf_counter() - tic)
            bar.update(1)
            if run.step % config.log_every == 0 or run.step == config.steps:
                recent = run.history[-config.log_every :]
                bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")
            every = config.checkpoint_every
            if (every and run.step % every == 0) or timer.due(run):
                run.save()
                timer.last = time.monotonic()
            if callback is not None and callback(run.step, loss):
                break
    seconds = time.perf_counter() - start
    if run.saved_step != run.step:
        run.save()
    if run.path is not None and run.info.is_main:
        _export(run.ema, run.path.parent / EXPORT_NAME, run.run_config)
    images = (run.step - first) * config.batch_size
    result = TrainResult(
        model, run.ema, run.history, run.step, seconds, images / seconds if seconds else 0.0,
        run.path, tuner.chosen,
    )  # fmt: skip
    if asked["signal"]:
        saved = f"saved {run.path}" if run.path is not None else "nothing saved (no out_dir)"
        raise TrainingInterrupted(
            f"{asked['signal']} stopped training after step {run.step}; {saved}; continue "
            "with resume=True (--resume)", result
        )  # fmt: skip
    return result
