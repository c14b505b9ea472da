"""Pictures of attention: where one patch looks, in every layer and head, and how far.

Each function takes attention weights recorded by `dit_mini.studies.attention_maps` (or a
`CrossAttention` layer) plus the images they belong to, and returns a `matplotlib.figure.Figure`
built without pyplot, like `dit_mini.course.widgets`, so notebook sliders only wire controls to
them.
A query's row of weights over the 8 x 8 patch grid is drawn as a heat map laid over the clean
image, each patch one cell, with the query patch outlined.

Taught in notebook 06 (whispers).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from einops import rearrange
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..studies.attention_maps import (
    colour_cross_attention,
    mean_attention_distance,
    patch_colour_tokens,
    word_tokens,
)
from ..viz import to_uint8

__all__ = [
    "query_weights",
    "draw_overlay",
    "attention_view",
    "head_grid_figure",
    "attention_distance_figure",
    "cross_attention_figure",
    "colour_words_view",
]

HEAT = "inferno"
QUERY_COLOUR = "cyan"


def query_weights(maps: torch.Tensor, row: int, col: int) -> torch.Tensor:
    """The weights of the query patch (row, col) over the grid, as a grid.

    Shapes: maps (..., L, L) with L = G^2 -> (..., G, G).
    """
    grid = int(round(maps.shape[-1] ** 0.5))
    if not (0 <= row < grid and 0 <= col < grid):
        raise ValueError(f"query ({row}, {col}) lies outside the {grid} x {grid} patch grid")
    return maps[..., row * grid + col, :].reshape(*maps.shape[:-2], grid, grid)


def _box(ax, row: int, col: int, patch: float) -> None:
    corner = (col * patch - 0.5, row * patch - 0.5)
    ax.add_patch(Rectangle(corner, patch, patch, fill=False, edgecolor=QUERY_COLOUR, linewidth=2))


def draw_overlay(
    ax, image: torch.Tensor, weights: torch.Tensor, row=None, col=None, alpha=0.65, vmax=None
):
    """The image, the weight grid over it, the query (row, col) outlined. The colours run from
    0 to `vmax`, by default the grid's own maximum.

    Shapes: image (C, H, W) in [-1, 1]; weights (G, G).
    """
    weights = weights.detach().float()
    pixels = to_uint8(image.detach()[None])[0]
    size, grid = pixels.shape[0], weights.shape[-1]
    ax.imshow(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels)
    top = weights.max().clamp(min=1e-12) if vmax is None else torch.tensor(float(vmax))
    heat = (weights / top).cpu().numpy()
    extent = (-0.5, size - 0.5, size - 0.5, -0.5)
    ax.imshow(heat, cmap=HEAT, alpha=alpha, extent=extent, vmin=0, vmax=1, interpolation="nearest")
    if row is not None:
        _box(ax, row, col, size / grid)
    ax.set_xticks([]), ax.set_yticks([])


def attention_view(
    image: torch.Tensor,
    x_t: torch.Tensor,
    maps: torch.Tensor,
    layer: int,
    head: int,
    row: int,
    col: int,
    level: float | None = None,
) -> Figure:
    """The widget's picture: the noisy input with the query patch outlined; where that patch
    looks in (layer, head), over the clean image; the same weights as numbers on the grid.

    Shapes: image, x_t (C, H, W); maps (layers, heads, L, L) recorded for x_t.
    """
    layers, heads = maps.shape[:2]
    if not (0 <= layer < layers and 0 <= head < heads):
        raise ValueError(
            f"layer {layer}, head {head} do not exist: the maps hold {layers} layers, {heads} heads"
        )
    w = query_weights(maps[layer, head], row, col)  # (G, G)
    grid = w.shape[-1]
    distance = float(mean_attention_distance(maps[layer, head], grid))
    fig = Figure(figsize=(10.5, 3.7))
    left, middle, right = fig.subplots(1, 3)
    draw_overlay(left, x_t, torch.zeros_like(w), row, col, alpha=0.0)
    noise = "" if level is None else f", noise level {level:.2f}"
    left.set_title(f"what the model sees{noise}", fontsize=10)
    draw_overlay(middle, image, w, row, col)
    middle.set_title(f"layer {layer}, head {head}: where patch ({row}, {col}) looks", fontsize=10)
    shown = right.imshow(100 * w.cpu().numpy(), cmap=HEAT, vmin=0)
    _box(right, row, col, 1.0)
    right.set(xlabel="patch column", ylabel="patch row")
    right.set_xticks(range(grid)), right.set_yticks(range(grid))
    right.set_title(f"in numbers; mean distance {distance:.2f} patches", fontsize=10)
    fig.colorbar(shown, ax=right, fraction=0.046, pad=0.04, label="share of attention (%)")
    fig.tight_layout()
    return fig


def head_grid_figure(image: torch.Tensor, maps: torch.Tensor, row: int, col: int) -> Figure:
    """Where one query patch looks in every layer (rows) and head (columns), over the image.

    Shapes: image (C, H, W); maps (layers, heads, L, L).
    """
    layers, heads = maps.shape[:2]
    weights = query_weights(maps, row, col)  # (layers, heads, G, G)
    fig = Figure(figsize=(1.9 * heads + 0.6, 1.9 * layers + 0.5))
    axes = fig.subplots(layers, heads, squeeze=False)
    for i in range(layers):
        for j in range(heads):
            draw_overlay(axes[i, j], image, weights[i, j], row, col)
            if i == 0:
                axes[i, j].set_title(f"head {j}", fontsize=10)
        axes[i, 0].set_ylabel(f"layer {i}", fontsize=10)
    fig.suptitle(f"where patch ({row}, {col}) looks, every layer and head", fontsize=11)
    fig.tight_layout()
    return fig


def attention_distance_figure(
    levels: Sequence[float], distances: torch.Tensor, uniform: float | None = None
) -> Figure:
    """Mean attention distance against depth, one line per noise level (the mean over heads,
    each head a dot); a dashed line at `uniform`, the distance of attention spread evenly.

    Shapes: distances (len(levels), layers, heads), in patches.
    """
    d = torch.as_tensor(distances, dtype=torch.float64)
    n_levels, layers, heads = d.shape
    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.subplots()
    x = np.arange(layers)
    colours = [f"C{i}" for i in range(n_levels)]
    for i, level in enumerate(levels):
        ax.plot(x, d[i].mean(-1).numpy(), "-", color=colours[i], label=f"noise level {level:.2f}")
        for h in range(heads):
            ax.plot(x + 0.04 * (h - 1), d[i, :, h].numpy(), ".", color=colours[i], alpha=0.6)
    if uniform is not None:
        ax.axhline(uniform, color="grey", linestyle="--", linewidth=1, label="spread evenly")
    ax.set(xlabel="layer", ylabel="mean attention distance (patches)", xticks=x)
    ax.set_title("how far the patches look, from the first layer to the last", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def cross_attention_figure(
    image: torch.Tensor, weights: torch.Tensor, words: Sequence[str], repainted: torch.Tensor
) -> Figure:
    """The image, one panel per word showing which patches listen to it (its share of each
    patch's attention, 0 to 1; the title gives its share over all patches), and the image
    repainted by the layer's output.

    Shapes: image, repainted (3, H, W); weights (L, S) over S = len(words) words.
    """
    if weights.shape[-1] != len(words):
        raise ValueError(f"{weights.shape[-1]} weight columns for {len(words)} words")
    grid = int(round(weights.shape[0] ** 0.5))
    panels = len(words) + 2
    fig = Figure(figsize=(1.9 * panels, 2.5))
    axes = fig.subplots(1, panels)
    pixels = to_uint8(torch.stack([image, repainted]).detach())
    axes[0].imshow(pixels[0]), axes[0].set_title("relic", fontsize=10)
    for ax, word, column in zip(axes[1:], words, weights.detach().T):
        share = column.reshape(grid, grid)
        draw_overlay(ax, image, share, vmax=1.0)
        ax.set_title(f'"{word}": {100 * float(column.mean()):.0f} %', fontsize=10)
    axes[-1].imshow(pixels[1]), axes[-1].set_title("repainted by the output", fontsize=10)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


@torch.no_grad()
def colour_words_view(
    image: torch.Tensor, words: Sequence[str], sharpness: float, patch_size: int = 4
) -> Figure:
    """The cross-attention toy at one sharpness: the patches of `image` attend to the colour
    `words` through `colour_cross_attention(sharpness)`; drawn by `cross_attention_figure`.

    Shapes: image (3, H, W) in [-1, 1].
    """
    layer = colour_cross_attention(sharpness)
    tokens = patch_colour_tokens(image[None], patch_size)  # (1, L, 4)
    out, weights = layer(tokens, word_tokens(list(words))[None], return_weights=True)
    grid = image.shape[-1] // patch_size
    repainted = rearrange(out[0, :, :3], "(h w) c -> c h w", h=grid)  # (3, G, G)
    repainted = repainted.repeat_interleave(patch_size, -2).repeat_interleave(patch_size, -1)
    return cross_attention_figure(image, weights[0, 0], words, repainted)
