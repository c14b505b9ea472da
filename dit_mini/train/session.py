"""One training run's state and its step: model, EMA, optimizer, generators, history, and the
checkpoint that holds them all.

`TrainingSession` is the inside of `dit_mini.train.trainer.fit`: it starts a run or resumes it
from its checkpoint (refusing another run's config, `dit_mini.train.resume`), takes one
optimizer step (batch and noise, loss, backward, clip, AdamW, EMA), and saves itself atomically.
Under torchrun each process holds a replica; the checkpoint is written by the main process.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from ..diffusion.guidance import drop_labels
from ..runtime import autocast_context, dist_info, make_grad_scaler, pick_device
from ..storage import (
    CheckpointError,
    WriteError,
    check_writable,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from .config import TrainConfig, batch_indices, derive_seed, resolve_dropout
from .memory import batch_advice, check_batch_memory, out_of_memory
from .resume import RESUMABLE_FIELDS, config_diff, describe_for_run, with_new_defaults
from .step import clip_and_step, ema_update, set_lr

__all__ = ["CHECKPOINT_NAME", "TrainingDiverged", "TrainingSession", "make_adamw"]

CHECKPOINT_NAME = "checkpoint.pt"
# The mean loss of the last DIVERGE_WINDOW steps above DIVERGE_FACTOR times the loss of the first
# step (the untrained network's) means the run diverged (e.g. --lr 1e10); training loss only falls.
DIVERGE_FACTOR, DIVERGE_WINDOW = 100.0, 5


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def make_adamw(params, lr: float, weight_decay: float, beta2: float = 0.999) -> torch.optim.AdamW:
    """AdamW (betas 0.9 and `beta2`) fused into one kernel over all tensors where this torch
    build supports it (CPU and CUDA in torch >= 2.4), else the plain for-each AdamW. For a small
    model the optimizer step is a sizeable part of a CPU step; `dit-mini bench --fused/--no-fused`
    measures the gain. Both are deterministic, so exact resume holds either way."""
    params, betas = list(params), (0.9, beta2)
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)


def _as_tensors(data) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images, labels or None) from an ImageDataset, an (images, labels) pair or images."""
    if hasattr(data, "images"):
        images, labels = data.images, getattr(data, "labels", None)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = data
    else:
        images, labels = data, None
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[0] < 1:
        raise ValueError(
            "data must be an ImageDataset, an (images, labels) pair or an (N, C, H, W) tensor "
            f"with N >= 1; got {type(images).__name__} {tuple(getattr(images, 'shape', ()))}"
        )
    return _check_range(images.float()), None if labels is None else labels.long()


def _check_range(images: torch.Tensor) -> torch.Tensor:
    """Refuse data in [0, 255] or [0, 1] (the trainer wants [-1, 1]) and non-finite values;
    one pass over the dataset at the start, nothing per step."""
    lo, hi = (float(v) for v in torch.aminmax(images))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        bad = int((~torch.isfinite(images)).flatten(1).any(1).sum())
        raise ValueError(
            f"{bad} training image(s) hold NaN or infinite values; remove them or fix the "
            "preprocessing (e.g. a division by zero)"
        )
    if lo >= 0 and hi > 1.5:
        fix = "x / 127.5 - 1" if hi <= 255 else "x * 2 / x.max() - 1"
        raise ValueError(
            f"the training images lie in [{lo:g}, {hi:g}], like 0..255 pixels; the trainer "
            f"expects images in [-1, 1]: convert them with {fix}"
        )
    if lo >= 0 and hi > 0.5:
        raise ValueError(
            f"the training images lie in [{lo:g}, {hi:g}], like [0, 1] pixels; the trainer "
            "expects images in [-1, 1]: convert them with x * 2 - 1"
        )
    return images


class _Replica:
    """The DDP-wrapped model, seen through the plain model's attributes (config, null_class...)."""

    def __init__(self, ddp: nn.Module):
        self.ddp = ddp

    def __call__(self, *args, **kwargs):
        return self.ddp(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.ddp.module, name)


class TrainingSession:
    """One training run's state: model, EMA, optimizer, generators, history and step."""

    def __init__(self, model, loss_fn, data, config: TrainConfig, out_dir, device, run_config):
        config = resolve_dropout(config, model)
        self.info, self.config, self.loss_fn = dist_info(), config, loss_fn
        if config.batch_size % self.info.world_size:
            raise ValueError(
                f"batch_size {config.batch_size} is the global batch and must be divisible by the "
                f"{self.info.world_size} processes; use a multiple of {self.info.world_size}"
            )
        self.device = pick_device(device)
        check_batch_memory(model, config.batch_size // self.info.world_size, self.device)
        images, labels = _as_tensors(data)
        self.images, self.labels = images.to(self.device), self._check_labels(model, labels)
        self.model = model.to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False).eval()
        self.opt = make_adamw(model.parameters(), config.lr, config.weight_decay, config.adam_beta2)
        self.scaler = make_grad_scaler(self.device)
        self.shared_noise = hasattr(loss_fn, "draw")  # draw for the global batch, then slice
        self.gens = {"labels": torch.Generator(), "noise": torch.Generator(self.device)}
        self._seed_generators()
        self.history: list[float] = []
        self.step = 0
        self.run_config = {
            "model": describe_for_run(model),
            "train": asdict(config),
            **(run_config or {}),
        }
        self.path = Path(out_dir) / CHECKPOINT_NAME if out_dir is not None else None
        if self.path is not None and self.info.is_main:  # fail now, not at the first save
            n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
            check_writable(self.path.parent, need_bytes=5 * n_bytes)  # model, EMA, AdamW x2, ...
        self.saved_step: int | None = None
        self.net = model
        if self.info.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = _Replica(nn.parallel.DistributedDataParallel(model, device_ids=ids))

    def _check_labels(self, model, labels):
        num_classes = getattr(getattr(model, "config", None), "num_classes", None)
        if labels is None or num_classes == 0:
            return None  # unconditional training
        if num_classes is not None and int(labels.max()) >= num_classes:
            raise ValueError(
                f"the data has label {int(labels.max())} but the model knows {num_classes} "
                f"classes; build the model with num_classes={int(labels.max()) + 1}"
            )
        if self.config.class_dropout_prob > 0 and getattr(model, "null_class", None) is None:
            raise ValueError(
                f"class_dropout_prob={self.config.class_dropout_prob} needs a model with a null "
                "class; build it with class_dropout_prob > 0, or train with class_dropout_prob=0"
            )
        return labels.cpu()

    def _seed_generators(self) -> None:
        rank = 0 if self.shared_noise else self.info.rank
        self.gens["labels"].manual_seed(derive_seed(self.config.seed, "labels"))
        self.gens["noise"].manual_seed(derive_seed(self.config.seed, "noise", rank))

    def open(self, resume: bool | str) -> None:
        """Start fresh, or load the checkpoint in the output folder when resuming.

        `resume` False: the folder must hold no run; True: it must hold one; 'auto': continue a
        run if there is one, else start. Temporary files of a killed writer are removed first.
        """
        if resume not in (False, True, "auto"):
            raise ValueError(f"resume must be False, True or 'auto'; got {resume!r}")
        if self.path is not None and self.path.parent.is_dir():
            remove_stale_temporaries(self.path.parent)
        if self.path is None or not self.path.exists():
            if resume is True:
                where = (
                    "no output folder was given"
                    if self.path is None
                    else (f"there is no {CHECKPOINT_NAME} in {self.path.parent}")
                )
                raise CheckpointError(
                    f"cannot resume: {where}; check the folder name, drop --resume to start a "
                    "new run, or pass --resume auto to continue a run only if there is one"
                )
            return
        if not resume:
            raise CheckpointError(
                f"{self.path.parent} already holds a training run ({self.path.name}); pass "
                "resume=True (--resume) to continue it, or choose another output folder"
            )
        state = load_checkpoint(self.path, map_location=self.device)
        saved = with_new_defaults(state["config"], self.model, self.run_config["model"])
        diff = config_diff(saved, self.run_config, ignore=RESUMABLE_FIELDS)
        if diff:
            raise CheckpointError(
                f"cannot resume from {self.path}: it was trained with another config:\n  "
                + "\n  ".join(diff)
                + "\nrepeat the original run's options, or choose another output folder"
            )
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = self.saved_step = int(state["step"])
        self.history = state["history"].tolist()
        self._restore_generators(state["rng"])

    def _restore_generators(self, rng: dict) -> None:
        try:
            for name, gen in self.gens.items():
                gen.set_state(rng[name].cpu())
        except (RuntimeError, KeyError):  # saved on another device type: restart the streams
            self._seed_generators()
        if not self.shared_noise and self.info.rank > 0:  # only rank 0's stream is saved
            seed = derive_seed(self.config.seed, "noise", self.info.rank, self.step)
            self.gens["noise"].manual_seed(seed)

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "step": self.step,
            "config": self.run_config,
            "rng": {name: gen.get_state() for name, gen in self.gens.items()},
            "history": torch.tensor(self.history, dtype=torch.float64),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
        }

    def save(self) -> None:
        """Write the checkpoint (main process only); the others wait for it."""
        if self.path is not None:
            if self.info.is_main:
                try:
                    save_checkpoint(self.path, self.state_dict())
                except WriteError as error:
                    raise self._save_failed(error) from error
            if self.info.distributed:
                torch.distributed.barrier()
            self.saved_step = self.step

    def _save_failed(self, error: WriteError) -> WriteError:
        """The error of a failed save: which step was lost and which one is still on disk."""
        if self.saved_step is not None and self.path.is_file():
            kept = f"the last checkpoint on disk is step {self.saved_step} ({self.path})"
        else:
            kept = f"no checkpoint of this run is on disk yet ({self.path})"
        reason = "the disk is full" if error.disk_full else f"cannot write {self.path}"
        cause = "" if error.disk_full else f" ({error})"
        return WriteError(
            f"{reason}: step {self.step} could not be saved{cause}; {kept}. Free some disk "
            "space (or move the folder) and continue with resume=True (--resume)",
            self.path, error.disk_full,
        )  # fmt: skip

    def batch(self) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
        """This process's share of the global batch: x0, y and, if drawn here, t and eps."""
        config, n_local = self.config, self.config.batch_size // self.info.world_size
        idx = batch_indices(self.step, config.batch_size, self.images.shape[0], config.seed)
        shard = slice(self.info.rank * n_local, (self.info.rank + 1) * n_local)
        x0 = self.images[idx.to(self.device)]  # (B, C, H, W), global
        extra = {}
        if self.shared_noise:
            t, eps = self.loss_fn.draw(x0, self.gens["noise"])
            extra = {"t": t[shard], "eps": eps[shard]}
        y = None
        if self.labels is not None:
            null = getattr(self.model, "null_class", None)
            y = drop_labels(self.labels[idx], config.class_dropout_prob, null, self.gens["labels"])
            y = y[shard].to(self.device)
        return x0[shard], y, extra

    def global_loss(self, loss: torch.Tensor) -> float:
        value = loss.detach().float()
        if self.info.distributed:
            torch.distributed.all_reduce(value)
            value = value / self.info.world_size
        return float(value)

    def exploding(self, value: float) -> bool:
        """True when the loss is far above where the run started (lr far too high): the mean of
        the last DIVERGE_WINDOW steps, this one included, above DIVERGE_FACTOR x the first loss."""
        if len(self.history) < DIVERGE_WINDOW:
            return False
        recent = (sum(self.history[1 - DIVERGE_WINDOW :]) + value) / DIVERGE_WINDOW
        return recent > DIVERGE_FACTOR * max(self.history[0], 1e-8)

    def diverged(self, value: float) -> TrainingDiverged:
        where = (
            f"the last good checkpoint is {self.path} (step {self.saved_step})"
            if self.saved_step is not None
            else "no checkpoint was written yet"
        )
        start = self.history[0] if self.history else float("nan")
        return TrainingDiverged(
            f"the loss became {value:.4g} at step {self.step + 1} (it started near {start:.3g}): "
            f"training diverged and its samples would be noise; {where}. Lower the learning "
            "rate (--lr), add warm-up steps or gradient clipping, or check the data for NaNs"
        )

    def train_step(self) -> float:
        """One optimizer step on one global batch; returns the batch's mean loss."""
        config = self.config
        # 1. Batch and noise, then the loss of this process's share.
        try:
            x0, y, extra = self.batch()
            with autocast_context(self.device):
                loss = self.loss_fn(self.net, x0, y, self.gens["noise"], **extra)
        except RuntimeError as error:
            if out_of_memory(error):
                raise batch_advice(self.model, config.batch_size, self.device) from error
            raise
        value = self.global_loss(loss)
        if not math.isfinite(value) or self.exploding(value):
            raise self.diverged(value)
        # 2. Backward (scaled in float16), clip, AdamW step at this step's learning rate.
        # (The same functions make notebook 14's reference step: dit_mini.train.step.)
        set_lr(self.opt, config.lr_at(self.step))
        self.opt.zero_grad(set_to_none=True)
        scaler = self.scaler
        (scaler.scale(loss) if scaler is not None else loss).backward()
        clip_and_step(self.model, self.opt, config.grad_clip, scaler)
        # 3. EMA of the weights, then count the step.
        ema_update(self.ema, self.model, config.ema_decay_at(self.step))
        self.history.append(value)
        self.step += 1
        return value
