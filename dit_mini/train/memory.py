"""Will a training batch fit in memory? An estimate made before anything is allocated.

A transformer layer keeps about s b h (34 + 5 a s / h) bytes of activations for the backward
pass in 16-bit precision (Korthikanti et al., arXiv 2205.05198, sec. 4.1, eq. 2; s tokens,
b batch, h width, a heads), twice that in float32. `check_batch_memory` multiplies it out for
a DiT-like model and refuses a batch that needs far more than the device has (an absurd
`--batch-size 200000` gets "needs about 1,100 GiB ... lower --batch-size" instead of an
allocator traceback); `out_of_memory` turns an allocator failure during a step into the same
advice. Models without a transformer config (U-Net, learners' own networks) are not estimated.

`keep_freed_memory` is a speed lever for training on the CPU: glibc's malloc hands the memory of
freed tensors back to the OS as soon as the top of its heap holds more than a small, adaptive
threshold, so every step faults the same pages in again (about 190,000 page faults per 500 nano
steps). Raising the trim threshold and the top pad keeps that memory for the next step: 1.10x
to 1.27x faster quickstart steps (notebooks/MEASUREMENTS.md, "Relics in two minutes").

Used by `dit_mini.train.session` (the batch check), `dit_mini.train.trainer` and notebook 14's
training cell (the lever, also in `dit_mini.course.medium_mode`).
"""

from __future__ import annotations

import ctypes
import os
import sys

import torch
from torch import nn

__all__ = [
    "BatchTooLarge",
    "activation_bytes",
    "available_bytes",
    "check_batch_memory",
    "out_of_memory",
    "batch_advice",
    "KEEP_FREED_ENV",
    "keep_freed_memory",
]

MARGIN = 2.0  # refuse only when the estimate exceeds the available memory this many times
KEEP_FREED_ENV = "DIT_MINI_KEEP_FREED_MEMORY"  # "0": leave malloc as it is (to measure the lever)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # mallopt (glibc's malloc.h)
_kept: bool | None = None  # what keep_freed_memory did in this process (None: not asked yet)


class BatchTooLarge(ValueError):
    """A batch that does not fit in the training device's memory."""


def activation_bytes(model: nn.Module, batch_size: int) -> int | None:
    """Estimated float32 activation bytes of one training step, or None for an unknown model."""
    cfg = getattr(model, "config", None)
    try:
        s, h, a, depth = cfg.num_patches, cfg.hidden_size, cfg.num_heads, cfg.depth
    except AttributeError:
        return None
    per_layer = s * h * (34 + 5 * a * s / h) * 2  # bytes per sample, float32 (eq. 2, x2)
    return int(batch_size * depth * per_layer)


def available_bytes(device: torch.device) -> int | None:
    """Free memory of `device`: CUDA's free memory, or the host's MemAvailable; None if unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _advice(model: nn.Module, batch_size: int, need: int, free: int, device) -> str:
    per_sample = max(need // batch_size, 1)
    fits = max(int(free // per_sample), 0)
    return (
        f"batch_size {batch_size} needs about {need / 2**30:,.1f} GiB for the activations of "
        f"one training step ({per_sample / 2**20:.1f} MiB per image), but {device} has "
        f"{free / 2**30:.1f} GiB available; lower --batch-size (batch_size), to about "
        f"{max(fits, 1)} or less"
    )


def check_batch_memory(model: nn.Module, batch_size: int, device: torch.device) -> None:
    """Refuse, before allocating, a batch whose activations need far more than is available."""
    need, free = activation_bytes(model, batch_size), available_bytes(device)
    if need is not None and free is not None and need > MARGIN * free:
        raise BatchTooLarge(_advice(model, batch_size, need, free, device))


def out_of_memory(error: BaseException) -> bool:
    """Whether `error` is an allocator failure (CUDA OOM, the CPU allocator's 'can't allocate')."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and (
        "can't allocate memory" in text or "DefaultCPUAllocator" in text
    )


def batch_advice(model: nn.Module, batch_size: int, device) -> BatchTooLarge:
    """The error for a step that ran out of memory: the estimate and 'lower --batch-size'."""
    need = activation_bytes(model, batch_size)
    free = available_bytes(device) or 0
    if need is None:
        return BatchTooLarge(
            f"batch_size {batch_size} ran out of memory on {device} during a training step; "
            "lower --batch-size (batch_size)"
        )
    return BatchTooLarge(_advice(model, batch_size, need, free, device))


def keep_freed_memory(trim_mib: int = 512, pad_mib: int = 64, mmap_mib: int = 32) -> bool:
    """Ask glibc's malloc to keep up to `trim_mib` MiB of freed memory (and to grow its heap by
    `pad_mib` MiB at a time) instead of returning it to the OS after every step, and to take
    blocks below `mmap_mib` MiB (glibc's largest setting) from that heap rather than from fresh
    pages; returns True when it did. Once per process; a no-op (False) off Linux/glibc or with
    DIT_MINI_KEEP_FREED_MEMORY=0. The kept memory stays with this process until it exits."""
    global _kept
    if _kept is None:
        _kept = False
        if sys.platform.startswith("linux") and os.environ.get(KEEP_FREED_ENV, "1") != "0":
            try:
                libc = ctypes.CDLL("libc.so.6")
                settings = (
                    (_M_TRIM_THRESHOLD, trim_mib), (_M_TOP_PAD, pad_mib),
                    (_M_MMAP_THRESHOLD, mmap_mib),
                )  # fmt: skip
                _kept = all([bool(libc.mallopt(name, mib << 20)) for name, mib in settings])
            except (OSError, AttributeError):  # musl, no libc.so.6: malloc stays as it is
                _kept = False
    return _kept
