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

import copy
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ..diffusion.guidance import drop_labels
from ..registry import kind_of, save_model
from ..runtime import autocast_context, dist_info, make_grad_scaler, pick_device
from ..storage import CheckpointError, load_checkpoint, save_checkpoint, save_tensors
from .resume import RESUMABLE_FIELDS, config_diff, describe_for_run, with_new_defaults

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "CHECKPOINT_NAME",
    "EXPORT_NAME",
    "derive_seed",
    "batch_indices",
    "fit",
    "make_adamw",
]

CHECKPOINT_NAME = "checkpoint.pt"
EXPORT_NAME = "ema.safetensors"


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
    warmup_steps: int = field(
        default=0, metadata={"help": "steps of linear learning-rate warm-up (0: none)"}
    )
    ema_decay: float = field(
        default=0.9999,
        metadata={"help": "decay of the moving average of the weights (the EMA is sampled)"},
    )
    ema_warmup: bool = True  # EMA decay min(decay, (1 + n) / (10 + n)) early on; not an option
    grad_clip: float = field(
        default=1.0, metadata={"help": "clip the gradient norm to this value (0: no clipping)"}
    )
    cfg_dropout: float | None = field(
        default=None,
        metadata={
            "help": "probability of replacing a label by the null class, so the model learns "
            "classifier-free guidance (0: never); it is the model's class_dropout_prob"
        },
    )
    seed: int = field(
        default=0, metadata={"help": "seed of the initial weights, data order and noise"}
    )
    checkpoint_every: int = field(
        default=0, metadata={"help": "write a checkpoint every K steps (0: only at the end)"}
    )
    log_every: int = field(
        default=10, metadata={"help": "steps between loss updates on the progress bar"}
    )

    def __post_init__(self):
        for name in ("steps", "batch_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer; got {getattr(self, name)}")
        for name in ("warmup_steps", "checkpoint_every", "seed"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive; got {self.lr}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("weight_decay and grad_clip must be >= 0 (0 turns clipping off)")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1); got {self.ema_decay}")
        if self.cfg_dropout is not None and not 0.0 <= self.cfg_dropout < 1.0:
            raise ValueError(f"cfg_dropout must lie in [0, 1); got {self.cfg_dropout}")

    def lr_at(self, step: int) -> float:
        """Learning rate of step `step` (0-based): linear warm-up, then constant."""
        return self.lr * min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else self.lr

    def ema_decay_at(self, step: int) -> float:
        """EMA decay after step `step`: min(decay, (1 + s) / (10 + s)) with warm-up, so early
        EMA weights are not dominated by the random initialisation."""
        return min(self.ema_decay, (1 + step) / (10 + step)) if self.ema_warmup else self.ema_decay


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


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def derive_seed(*parts) -> int:
    """A 63-bit seed from (seed, stream name, index...), stable across runs and platforms."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> torch.Tensor:
    """Indices of the global batch of step `step`: a slice of the concatenated shuffled epochs.

    Shapes: -> (batch_size,) int64.
    """
    start, stop = step * batch_size, (step + 1) * batch_size
    parts = []
    for epoch in range(start // n, (stop - 1) // n + 1):
        perm = torch.randperm(
            n, generator=torch.Generator().manual_seed(derive_seed(seed, "data", epoch))
        )
        lo, hi = max(start - epoch * n, 0), min(stop - epoch * n, n)
        parts.append(perm[lo:hi])
    return torch.cat(parts)


def make_adamw(params, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW fused into one kernel over all tensors where this torch build supports it (CPU and
    CUDA in torch >= 2.4), else the plain for-each AdamW. For a small model the optimizer step
    is a sizeable part of a CPU step; `dit-mini bench --fused/--no-fused` measures the gain.
    Both are deterministic, so exact resume holds either way."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


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
    return images.float(), None if labels is None else labels.long()


class _Replica:
    """The DDP-wrapped model, seen through the plain model's attributes (config, null_class...)."""

    def __init__(self, ddp: nn.Module):
        self.ddp = ddp

    def __call__(self, *args, **kwargs):
        return self.ddp(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.ddp.module, name)


def _export(ema: nn.Module, path: Path, run_config: dict) -> None:
    """The EMA weights as a model file; `dit_mini.load_model` rebuilds registered networks."""
    extra = {k: v for k, v in run_config.items() if k != "model"}
    if kind_of(ema) is not None:
        save_model(ema, path, extra=extra)
    else:  # the learner's own network: the weights and the run, for their own module to load
        save_tensors(path, ema.state_dict(), {"model": run_config["model"], "extra": extra})


def _resolve_dropout(config: TrainConfig, model: nn.Module) -> TrainConfig:
    """The label dropout of guidance has one source: the model's config (`class_dropout_prob`,
    or `caption_dropout` for the video DiT), which also decides whether a null class exists.
    `cfg_dropout=None` takes it from there; a different explicit value is an error."""
    cfg = getattr(model, "config", None)
    built = getattr(cfg, "class_dropout_prob", getattr(cfg, "caption_dropout", None))
    if config.cfg_dropout is None:
        return replace(config, cfg_dropout=built or 0.0)
    if built is not None and config.cfg_dropout != built:
        raise ValueError(
            f"cfg_dropout={config.cfg_dropout} but the model was built with label dropout "
            f"{built}; the model's config is the one that counts: build the model with the "
            "dropout you want and leave cfg_dropout unset"
        )
    return config


class _Session:
    """One training run's state: model, EMA, optimizer, generators, history and step."""

    def __init__(self, model, loss_fn, data, config: TrainConfig, out_dir, device, run_config):
        config = _resolve_dropout(config, model)
        self.info, self.config, self.loss_fn = dist_info(), config, loss_fn
        if config.batch_size % self.info.world_size:
            raise ValueError(
                f"batch_size {config.batch_size} is the global batch and must be divisible by the "
                f"{self.info.world_size} processes; use a multiple of {self.info.world_size}"
            )
        self.device = pick_device(device)
        images, labels = _as_tensors(data)
        self.images, self.labels = images.to(self.device), self._check_labels(model, labels)
        self.model = model.to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False).eval()
        self.opt = make_adamw(model.parameters(), config.lr, config.weight_decay)
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
        if self.config.cfg_dropout > 0 and getattr(model, "null_class", None) is None:
            raise ValueError(
                f"cfg_dropout={self.config.cfg_dropout} needs a model with a null class; build "
                "it with class_dropout_prob > 0, or set cfg_dropout=0"
            )
        return labels.cpu()

    def _seed_generators(self) -> None:
        rank = 0 if self.shared_noise else self.info.rank
        self.gens["labels"].manual_seed(derive_seed(self.config.seed, "labels"))
        self.gens["noise"].manual_seed(derive_seed(self.config.seed, "noise", rank))

    def open(self, resume: bool) -> None:
        """Start fresh, or load the checkpoint in the output folder when resuming."""
        if self.path is None or not self.path.exists():
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
                save_checkpoint(self.path, self.state_dict())
            if self.info.distributed:
                torch.distributed.barrier()
            self.saved_step = self.step

    def batch(self) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
        """This process's share of the global batch: x0, y and, if drawn here, t and eps."""
        cfg, n_local = self.config, self.config.batch_size // self.info.world_size
        idx = batch_indices(self.step, cfg.batch_size, self.images.shape[0], cfg.seed)
        shard = slice(self.info.rank * n_local, (self.info.rank + 1) * n_local)
        x0 = self.images[idx.to(self.device)]  # (B, C, H, W), global
        extra = {}
        if self.shared_noise:
            t, eps = self.loss_fn.draw(x0, self.gens["noise"])
            extra = {"t": t[shard], "eps": eps[shard]}
        y = None
        if self.labels is not None:
            null = getattr(self.model, "null_class", None)
            y = drop_labels(self.labels[idx], cfg.cfg_dropout, null, self.gens["labels"])
            y = y[shard].to(self.device)
        return x0[shard], y, extra

    def global_loss(self, loss: torch.Tensor) -> float:
        value = loss.detach().float()
        if self.info.distributed:
            torch.distributed.all_reduce(value)
            value = value / self.info.world_size
        return float(value)

    def diverged(self, value: float) -> TrainingDiverged:
        where = (
            f"the last good checkpoint is {self.path} (step {self.saved_step})"
            if self.saved_step is not None
            else "no checkpoint was written yet"
        )
        return TrainingDiverged(
            f"the loss became {value} at step {self.step + 1}; {where}. Lower the learning "
            "rate (--lr), add warm-up steps or gradient clipping, or check the data for NaNs"
        )

    def train_step(self) -> float:
        """One optimizer step on one global batch; returns the batch's mean loss."""
        cfg = self.config
        # 1. Batch and noise, then the loss of this process's share.
        x0, y, extra = self.batch()
        with autocast_context(self.device):
            loss = self.loss_fn(self.net, x0, y, self.gens["noise"], **extra)
        value = self.global_loss(loss)
        if not math.isfinite(value):
            raise self.diverged(value)
        # 2. Backward (scaled in float16), clip, AdamW step at this step's learning rate.
        for group in self.opt.param_groups:
            group["lr"] = cfg.lr_at(self.step)
        self.opt.zero_grad(set_to_none=True)
        scaler = self.scaler
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler is not None:
            scaler.unscale_(self.opt)
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        scaler.step(self.opt) if scaler else self.opt.step()
        if scaler is not None:
            scaler.update()
        # 3. EMA of the weights, then count the step.
        self._update_ema()
        self.history.append(value)
        self.step += 1
        return value

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.config.ema_decay_at(self.step)
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p, 1.0 - decay)
        for e, b in zip(self.ema.buffers(), self.model.buffers()):
            e.copy_(b)


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
) -> TrainResult:
    """Train `model` on `data` with `loss_fn(model, x0, y, generator)`; see the module docstring.

    `data` is an ImageDataset, an (images, labels) pair or an images tensor (unconditional).
    With `out_dir`, checkpoints go to out_dir/checkpoint.pt (every `checkpoint_every` steps and at
    the end) and the EMA weights to out_dir/ema.safetensors; `resume=True` continues the run found
    there. `callback(step, loss)` runs after every step; returning True stops early (the run is
    then saved). `run_config` (plain data, e.g. the diffusion config) is stored in checkpoints and
    must match when resuming.

    Shapes: data images (N, C, H, W) in [-1, 1], labels (N,).
    """
    config = config or TrainConfig()
    run = _Session(model, loss_fn, data, config, out_dir, device, run_config)
    run.open(resume)
    show = not quiet and run.info.is_main
    bar = tqdm(total=config.steps, initial=run.step, disable=not show, desc="train", unit="step")
    first, start = run.step, time.perf_counter()
    model.train()
    try:
        while run.step < config.steps:
            loss = run.train_step()
            bar.update(1)
            if run.step % config.log_every == 0 or run.step == config.steps:
                recent = run.history[-config.log_every :]
                bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")
            if config.checkpoint_every and run.step % config.checkpoint_every == 0:
                run.save()
            if callback is not None and callback(run.step, loss):
                break
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    if run.saved_step != run.step:
        run.save()
    if run.path is not None and run.info.is_main:
        _export(run.ema, run.path.parent / EXPORT_NAME, run.run_config)
    images = (run.step - first) * config.batch_size
    return TrainResult(
        model,
        run.ema,
        run.history,
        run.step,
        seconds,
        images / seconds if seconds else 0.0,
        run.path,
    )
