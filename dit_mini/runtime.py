"""Where and how code runs: FAST mode, device choice, mixed precision and several processes.

- The course mode is the one switch for how long the notebooks run (`course_mode()`, set by
  DIT_MINI_MODE=fast|medium|full): `fast` (CI, a first look: every loop shrinks so that a notebook
  runs in about a minute on 2 CPU cores, and trained models draw noise), `medium` (a laptop, the
  default: notebook 14 trains its DiT for a step budget that draws recognizable relics in about
  3 minutes on 2 cores; every other notebook runs as in full mode) and `full` (the longest runs
  and the best pictures). DIT_MINI_FAST=1 (or CI set) still means fast and DIT_MINI_FAST=0 full;
  `fast_mode()` is `course_mode() == "fast"`.
- Device: CUDA, then Apple's MPS, then the CPU, unless the caller names one.
- Mixed precision only on CUDA: bfloat16 where the GPU supports it, else float16 with a gradient
  scaler (Micikevicius et al., arXiv 1710.03740); float32 everywhere else, so CPU runs are exact.
- `cpu_name()` names the processor in the records of measurements (benchmarks, model cards).
- Data parallelism: `torchrun` starts one process per device and sets RANK, WORLD_SIZE and
  LOCAL_RANK; `init_distributed` joins them (gloo on CPU, nccl on CUDA).

Used by every notebook (00 bonfire introduces FAST mode) and by `dit_mini.train.trainer`.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "machine_info",
    "cpu_name",
    "FAST_ENV",
    "MODE_ENV",
    "MODES",
    "course_mode",
    "fast_mode",
    "pick_device",
    "autocast_dtype",
    "autocast_context",
    "make_grad_scaler",
    "DistInfo",
    "dist_info",
    "init_distributed",
    "close_distributed",
]

FAST_ENV = "DIT_MINI_FAST"
MODE_ENV = "DIT_MINI_MODE"
MODES = ("fast", "medium", "full")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """What a timing depends on: the CPU, its cores, torch's threads and version, and how busy
    the machine was (the 1-minute load average), recorded beside every measured number."""
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average": load,
    }


def course_mode() -> str:
    """'fast', 'medium' or 'full'. DIT_MINI_MODE decides when set; else DIT_MINI_FAST (1: fast,
    0: full); else 'fast' when CI is set; else 'medium', the laptop default."""
    mode = os.environ.get(MODE_ENV, "").strip().lower()
    if mode:
        if mode not in MODES:
            raise ValueError(
                f"{MODE_ENV}={mode!r} is not understood; set it to fast, medium or full"
            )
        return mode
    value = os.environ.get(FAST_ENV)
    if value is None:
        return "fast" if os.environ.get("CI") else "medium"
    value = value.strip().lower()
    if value not in _TRUE + _FALSE:
        raise ValueError(f"{FAST_ENV}={value!r} is not understood; set it to 1 (fast) or 0 (full)")
    return "fast" if value in _TRUE else "full"


def fast_mode() -> bool:
    """True in the fast course mode: DIT_MINI_MODE=fast, DIT_MINI_FAST on, or CI set without
    either saying otherwise (see `course_mode`)."""
    return course_mode() == "fast"


def pick_device(override: str | torch.device | None = None) -> torch.device:
    """The device to train on: `override` if given, else cuda, else mps, else cpu."""
    if override is not None and str(override) != "auto":
        try:
            device = torch.device(override)
        except (RuntimeError, TypeError) as error:
            raise ValueError(
                f"unknown device {str(override)!r}; use cpu, cuda, cuda:N or mps (or leave "
                "--device out for the best one available)"
            ) from error
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {str(override)!r} asked for, but CUDA is not available; use 'cpu'"
            )
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", dist_info().local_rank % torch.cuda.device_count())
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(
                f"device {str(override)!r} asked for, but MPS is not available; use 'cpu'"
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", dist_info().local_rank % torch.cuda.device_count())
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """bfloat16 or float16 on CUDA (bf16 where supported), None (plain float32) elsewhere."""
    if torch.device(device).type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast_context(device: torch.device | str):
    """A context manager running the forward pass in mixed precision on CUDA, a no-op elsewhere."""
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def make_grad_scaler(device: torch.device | str) -> torch.amp.GradScaler | None:
    """A gradient scaler when training in float16 (needed to keep small gradients), else None."""
    if autocast_dtype(device) != torch.float16:
        return None
    return torch.amp.GradScaler("cuda")


@dataclass(frozen=True)
class DistInfo:
    """This process's place among the processes that train together."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) writes checkpoints, logs and progress bars."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    """Rank and world size of the running process group, else from torchrun's variables."""
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        return DistInfo(dist.get_rank(), dist.get_world_size(), local)
    env = os.environ
    return DistInfo(
        int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))
    )


def init_distributed(device: torch.device | str | None = None) -> DistInfo:
    """Join the process group that torchrun set up (gloo on CPU, nccl on CUDA); no-op alone.

    Safe to call twice. Returns this process's `DistInfo`.
    """
    info = dist_info()
    if not info.distributed or dist.is_initialized():
        return info
    device = torch.device(device) if device is not None else pick_device()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    return dist_info()


def close_distributed() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
