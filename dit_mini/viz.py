"""Pictures of a run: image grids and loss curves, as arrays or PNG files (no display needed).

Images in the package live in [-1, 1] with layout (N, C, H, W); `to_uint8` maps them to the
0..255 pixels a screen shows. Plots use matplotlib's Agg backend, so they work on servers and CI.

Clips (N, C, T, H, W) become a strip of frames per clip (`clip_strips`) or a looping GIF
(`clip_gif`), for the video trainer's samples and notebook 13.

Used by `dit-mini quickstart` and `dit-mini sample`, the video trainer, and by notebooks 00
(bonfire) and 13 (mastering the art).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone
from PIL import Image, ImageDraw

from .storage import atomic_write

__all__ = [
    "IMAGE_SUFFIXES",
    "to_uint8",
    "image_grid",
    "save_image_grid",
    "image_format",
    "smooth",
    "save_loss_curve",
    "clip_strips",
    "clip_gif",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

LABEL_WIDTH = 56  # pixels left of each grid row for its label


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Map images in [-1, 1] to uint8 pixels, channels last.

    Shapes: (N, C, H, W) -> (N, H, W, C).
    """
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(x, "n c h w -> n h w c").numpy()


def image_grid(
    images: torch.Tensor, nrow: int | None = None, pad: int = 2, zoom: int = 1
) -> np.ndarray:
    """Tile images into one picture, `nrow` images per row, with `pad` pixels of black between.

    Shapes: (N, C, H, W) in [-1, 1] -> (rows * (H + pad) + pad, nrow * (W + pad) + pad, C) uint8.
    """
    if images.dim() != 4 or images.shape[0] < 1:
        raise ValueError(
            f"images must be a non-empty (N, C, H, W) batch; got {tuple(images.shape)}"
        )
    n = images.shape[0]
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    pixels = to_uint8(images)  # (N, H, W, C)
    if zoom > 1:
        pixels = pixels.repeat(zoom, axis=1).repeat(zoom, axis=2)
    _, h, w, c = pixels.shape
    grid = np.zeros((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[top : top + h, left : left + w] = pixels[i]
    return grid


def save_image_grid(
    images: torch.Tensor,
    path: str | Path,
    nrow: int | None = None,
    zoom: int = 2,
    row_labels: list[str] | None = None,
) -> Path:
    """Write `image_grid(images, nrow)` as a PNG (or the format of the extension, written
    atomically), optionally with a text label left of each row."""
    if nrow is not None and (isinstance(nrow, bool) or int(nrow) != nrow or nrow < 1):
        raise ValueError(f"nrow={nrow!r}: give a whole number of images per grid row, >= 1")
    image_format(path)  # an unknown extension fails before the grid is drawn
    nrow = nrow or math.ceil(math.sqrt(images.shape[0]))
    grid = image_grid(images, nrow, zoom=zoom)
    if grid.shape[-1] == 1:
        grid = grid[..., 0]
    picture = Image.fromarray(grid)
    if row_labels:
        canvas = Image.new("RGB", (picture.width + LABEL_WIDTH, picture.height), "white")
        canvas.paste(picture.convert("RGB"), (LABEL_WIDTH, 0))
        draw = ImageDraw.Draw(canvas)
        row_h = (picture.height - 2) / math.ceil(images.shape[0] / nrow)  # image + padding
        for r, label in enumerate(row_labels):
            draw.text((4, int(2 + (r + 0.5) * row_h - 5)), str(label)[:9], fill="black")
        picture = canvas
    return atomic_write(path, lambda f: picture.save(f, format=image_format(path)))


def image_format(path: str | Path) -> str:
    """PIL's format name for a file's extension ('.png' -> 'PNG'); a ValueError with the
    accepted extensions for a missing or unknown one."""
    suffix = Path(path).suffix.lower()
    known = Image.registered_extensions()
    if suffix not in known or known[suffix] not in Image.SAVE:
        raise ValueError(
            f"{path}: cannot tell the image format from the extension {suffix or '(none)'!r}; "
            f"use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    return known[suffix]


def smooth(values: list[float], window: int) -> np.ndarray:
    """Trailing moving average: entry i averages values[max(0, i - window + 1) : i + 1]."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return x
    c = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(1, x.size + 1)
    lo = np.maximum(i - window, 0)
    return (c[i] - c[lo]) / (i - lo)


def save_loss_curve(history: list[float], path: str | Path, title: str = "training loss") -> Path:
    """Plot the per-step loss (faint) and its moving average against the step, as a PNG."""
    if len(history) == 0:
        raise ValueError("the loss history is empty: train at least one step before plotting it")
    steps = np.arange(1, len(history) + 1)
    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    ax.plot(steps, history, color="tab:blue", alpha=0.25, linewidth=0.8, label="per step")
    window = max(1, len(history) // 50)
    ax.plot(steps, smooth(history, window), color="tab:blue", label=f"mean of {window} steps")
    ax.set(xlabel="step", ylabel="loss", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def clip_strips(clips: torch.Tensor, labels: list[str], title: str | None = None) -> Figure:
    """One row per clip, its frames left to right, with its label (e.g. its caption) on the left.

    Shapes: clips (N, C, T, H, W) in [-1, 1], N labels.
    """
    if len(labels) != len(clips):
        raise ValueError(f"need one label per clip; got {len(labels)} for {len(clips)} clips")
    n, T = clips.shape[0], clips.shape[2]
    pixels = to_uint8(rearrange(clips, "n c t h w -> (n t) c h w")).reshape(
        n, T, *clips.shape[3:], -1
    )
    lines = max(label.count("\n") + 1 for label in labels)
    fig = Figure(figsize=(3.2 + 0.85 * T, 0.3 + (0.85 + 0.1 * lines) * n + 0.3 * bool(title)))
    axes = fig.subplots(n, T, squeeze=False)
    for r in range(n):
        for t in range(T):
            ax = axes[r, t]
            ax.imshow(pixels[r, t])
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"frame {t}", fontsize=8)
        axes[r, 0].set_ylabel(labels[r], rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def clip_gif(clips: torch.Tensor, zoom: int = 6, frame_ms: int = 150, pad: int = 2) -> bytes:
    """An endlessly looping GIF of the clips side by side, upscaled by `zoom` (nearest).

    Shapes: clips (N, C, T, H, W) in [-1, 1] -> GIF file bytes.
    """
    if clips.dim() != 5 or len(clips) < 1:
        raise ValueError(
            f"clips must be a non-empty (N, C, T, H, W) batch; got {tuple(clips.shape)}"
        )
    frames = to_uint8(rearrange(clips, "n c t h w -> (n t) c h w"))  # (N*T, H, W, C)
    n, t = clips.shape[0], clips.shape[2]
    frames = np.pad(
        frames.reshape(n, t, *frames.shape[1:]), ((0, 0), (0, 0), (pad, pad), (pad, pad), (0, 0))
    )
    movie = rearrange(frames, "n t h w c -> t h (n w) c").repeat(zoom, 1).repeat(zoom, 2)
    pictures = [Image.fromarray(frame) for frame in movie]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=frame_ms, loop=0)  # fmt: skip
    return buffer.getvalue()
