"""Pictures for notebook 13 (mastering the art): clips as strips and GIFs, tubelets, text to clip.

`clip_strips` and `clip_gif` live in the core's `dit_mini.viz` (the video trainer draws its
samples with them) and are re-exported here for the notebook.

Clips in the package are (N, C, T, H, W) tensors in [-1, 1]. A strip shows the T frames of each
clip side by side (it renders headless and on GitHub); a GIF plays them, rendered offline with PIL
so it needs no video codec and shows in JupyterLab, Colab and a static HTML view alike.
"""

from __future__ import annotations

import torch
from einops import rearrange
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..data.clips import HELD_OUT, caption_id, parse_caption
from ..diffusion.text2video import sample_clips
from ..viz import clip_gif, clip_strips, to_uint8

__all__ = ["clip_strips", "clip_gif", "tubelet_figure", "token_cost_figure", "caption_to_clip"]


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
