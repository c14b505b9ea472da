"""Pictures for notebook 13 (mastering the art): clips as strips and GIFs, tubelets, text to clip.

Clips in the package are (N, C, T, H, W) tensors in [-1, 1]. A strip shows the T frames of each
clip side by side (it renders headless and on GitHub); a GIF plays them, rendered offline with PIL
so it needs no video codec and shows in JupyterLab, Colab and a static HTML view alike.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from einops import rearrange
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from ..data.clips import HELD_OUT, caption_id, parse_caption
from ..diffusion.text2video import sample_clips
from ..viz import to_uint8

__all__ = ["clip_strips", "clip_gif", "tubelet_figure", "token_cost_figure", "caption_to_clip"]


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


def tubelet_figure(
    clip: torch.Tensor, tubelet_t: int = 2, patch_size: int = 4, highlight=(1, 1, 2)
) -> Figure:
    """The frames of one clip with the tubelet grid drawn on: thin lines cut each frame into
    P x P patches, colours group frames into time blocks of `tubelet_t`, and the tubelet
    `highlight` = (time block, row, column) is outlined in every frame it spans.

    Shapes: clip (C, T, H, W) in [-1, 1].
    """
    C, T, H, W = clip.shape
    pixels = to_uint8(rearrange(clip, "c t h w -> t c h w"))
    fig = Figure(figsize=(1.45 * T, 2.1))
    axes = fig.subplots(1, T)
    colours = ("tab:orange", "tab:cyan")
    for t, ax in enumerate(axes):
        ax.imshow(pixels[t], extent=(0, W, H, 0))
        for k in range(0, W + 1, patch_size):
            ax.axvline(k, color="white", lw=0.6, alpha=0.7)
        for k in range(0, H + 1, patch_size):
            ax.axhline(k, color="white", lw=0.6, alpha=0.7)
        block = t // tubelet_t
        for spine in ax.spines.values():
            spine.set_color(colours[block % 2]), spine.set_linewidth(3)
        if block == highlight[0]:
            r, c = highlight[1] * patch_size, highlight[2] * patch_size
            ax.add_patch(Rectangle((c, r), patch_size, patch_size, fill=False, ec="red", lw=2.5))
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"frame {t}\ntime block {block}", fontsize=8)
    L = (T // tubelet_t) * (H // patch_size) * (W // patch_size)
    fig.suptitle(
        f"{tubelet_t} x {patch_size} x {patch_size} tubelets: {L} tokens of "
        f"{tubelet_t * patch_size * patch_size * C} numbers each (red: one tubelet)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def token_cost_figure(rows: list[dict]) -> Figure:
    """Bars of token count and attention cost per input (rows of name, tokens, attention_flops)."""
    fig = Figure(figsize=(8.4, 3.0))
    ax1, ax2 = fig.subplots(1, 2)
    names = [r["name"] for r in rows]
    ax1.barh(names, [r["tokens"] for r in rows], color="tab:blue")
    ax1.set_xlabel("tokens per sample")
    ax2.barh(names, [r["attention_flops"] / 1e6 for r in rows], color="tab:red")
    ax2.set_xscale("log")
    ax2.set_xlabel("attention matmul MFLOPs per layer (log)")
    ax2.set_yticks([])
    fig.tight_layout()
    return fig


def caption_to_clip(
    model, caption: str, steps: int = 12, cfg_scale: float = 3.0, seed: int = 0, n: int = 3
) -> tuple[torch.Tensor | None, str]:
    """n clips for a typed caption, or (None, a message saying what is wrong with the caption).

    Shapes: -> (n, C, T, H, W) in [-1, 1] or None.
    """
    try:
        ids = parse_caption(caption)
    except ValueError as error:
        return None, f"The fog does not part: {error}"
    generator = torch.Generator().manual_seed(seed)
    clips = sample_clips(model, [caption] * n, steps, cfg_scale, generator)
    unseen = caption_id(*ids) in {caption_id(*c) for c in HELD_OUT}
    note = "never seen in training (held out)" if unseen else "seen in training"
    return clips, f"{caption!r}: {note}; {steps} Euler steps, guidance {cfg_scale}"
