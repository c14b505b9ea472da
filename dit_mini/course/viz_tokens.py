"""Pictures and measurements of an image read as tokens: patches, positions, and their cost.

- Patches as tokens (ViT, Dosovitskiy et al., arXiv 2010.11929, eq. 1): an H x W x C image cut
  into p x p patches is a sequence of L = (H/p)(W/p) tokens of p*p*C numbers each.
- Fixed 2-D sin-cos position embeddings (`sincos_2d`): the cosine similarity of one token's
  embedding with every other token's, drawn on the patch grid.
- The context window's cost: self-attention forms an L x L weight matrix per head (Vaswani et
  al., arXiv 1706.03762, eq. 1), so its time and memory grow as L^2, while the linear layers
  grow as L. Measured here: wall-clock time of the real modules, and the bytes autograd keeps
  for the backward pass, counted with saved-tensor hooks (no profiler needed).

Taught in notebook 05 (mystic lens).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from ..models.dit import patchify
from ..models.embeddings import sincos_2d
from ..viz import to_uint8

__all__ = [
    "patch_grid_view",
    "position_similarity",
    "position_view",
    "time_call",
    "saved_bytes",
    "token_cost_curves",
]

INDEX_LABEL_LIMIT = 64  # write token indices on the grid up to this many tokens


def patch_grid_view(image: torch.Tensor, patch_size: int) -> Figure:
    """The patch-size control's picture: the image with its patch grid and token indices (left)
    and the token sequence the transformer reads (right), one row per token, each row the
    patch's p*p pixels in reading order.

    Shapes: image (C, H, W) in [-1, 1].
    """
    C, H, W = image.shape
    p = int(patch_size)
    tokens = patchify(image[None], p)[0]  # (L, p*p*C), raises if p does not divide H, W
    L = tokens.shape[0]
    fig = Figure(figsize=(9.5, 4.2))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    left.imshow(to_uint8(image[None])[0], extent=(0, W, H, 0))
    for edge in range(0, W + 1, p):
        left.axvline(edge, color="white", linewidth=1.2 if L <= 256 else 0.4)
    for edge in range(0, H + 1, p):
        left.axhline(edge, color="white", linewidth=1.2 if L <= 256 else 0.4)
    if L <= INDEX_LABEL_LIMIT:
        for i in range(L):
            r, c = divmod(i, W // p)
            left.text(c * p + p / 2, r * p + p / 2, str(i), color="yellow", fontsize=7,
                      ha="center", va="center")  # fmt: skip
    left.set(xticks=[], yticks=[], title=f"patch {p}x{p}: a {H // p}x{W // p} grid = {L} tokens")
    strip = tokens.reshape(L, p * p, C)[:, None]  # (L, 1, p*p, C): each token as a pixel row
    pixels = to_uint8(strip.permute(0, 3, 1, 2))  # (L, 1, p*p, C)
    right.imshow(pixels[:, 0], aspect="auto", interpolation="nearest")
    right.set(xlabel=f"the p*p = {p * p} pixels of a token ({p * p * C} numbers with colour)")
    right.set(ylabel="token index (reading order)")
    right.set_title(f"the sequence: {L} tokens of {p * p * C} numbers", fontsize=10)
    fig.tight_layout()
    return fig


def position_similarity(embedding: torch.Tensor, index: int) -> torch.Tensor:
    """Cosine similarity of token `index`'s embedding with every token's.

    Shapes: embedding (L, D) -> (L,).
    """
    unit = embedding / embedding.norm(dim=-1, keepdim=True)
    return unit @ unit[int(index)]


def position_view(dim: int, grid: int, row: int, col: int) -> Figure:
    """The token picker's picture: how similar every position's sin-cos embedding is to the
    one at (row, col), on the grid (left), and the embedding matrix with that row marked
    (right)."""
    embedding = sincos_2d(dim, grid)  # (L, D)
    index = int(row) * grid + int(col)
    sim = position_similarity(embedding, index).reshape(grid, grid)
    fig = Figure(figsize=(10, 4.0))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    low = float(sim.min())  # colours span the values present: far tokens are still similar
    shown = left.imshow(sim.numpy(), cmap="magma", vmin=low, vmax=1.0)
    left.plot([col], [row], marker="*", color="cyan", markersize=14, markeredgecolor="k")
    left.set(xlabel="column of the patch grid", ylabel="row of the patch grid")
    left.set_title(f"cosine similarity to token ({row}, {col}) = #{index}", fontsize=10)
    fig.colorbar(shown, ax=left, fraction=0.046).set_label(f"cosine similarity ({low:.2f} to 1)")
    right.imshow(embedding.numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
    right.axhline(index, color="lime", linewidth=1.5)
    right.axvline(dim / 2 - 0.5, color="k", linewidth=0.8)
    right.set(xlabel=f"channel (0..{dim // 2 - 1} encode the column, the rest the row)")
    right.set(ylabel="token index")
    right.set_title(f"sincos_2d({dim}, {grid}): one row per token", fontsize=10)
    fig.tight_layout()
    return fig


def time_call(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of `fn()` over `repeats` runs, after `warmup` unmeasured ones."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def saved_bytes(fn: Callable[[], torch.Tensor], exclude: Sequence[torch.Tensor] = ()) -> int:
    """Bytes of the tensors autograd saves for the backward pass while `fn()` runs (each
    storage counted once); tensors sharing storage with `exclude` (e.g. parameters) are left out.

    This is the activation memory a training step holds between its forward and backward pass.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(seen.values())


def _loglog(ax, x, y, label, marker="o", **style):
    ax.plot(x, y, marker=marker, label=label, **style)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")


def _guides(ax, x, y):
    """Grey guide lines through the last point, growing as L and as L^2, and the measured
    growth factor written beside each segment."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    for power, style in ((1, ":"), (2, "--")):
        guide = y[-1] * (x / x[-1]) ** power
        ax.plot(x, guide, style, color="grey", linewidth=1, label=f"slope of L^{power}")
    for i in range(len(x) - 1):
        middle = (np.sqrt(x[i] * x[i + 1]), np.sqrt(y[i] * y[i + 1]))
        ax.annotate(f"x{y[i + 1] / y[i]:.1f}", middle, (-4, 6), textcoords="offset points",
                    ha="right", fontsize=8, color="tab:blue")  # fmt: skip


def token_cost_curves(rows: Sequence[dict]) -> Figure:
    """Three log-log panels against the token count: forward time, Gflops split into linear
    layers and attention matmuls, and the bytes saved for the backward pass. Grey guides
    through the last point have the slopes of L and L^2; each segment is labelled with its
    measured growth factor.

    Each row: 'tokens', 'ms', 'gflops_linear', 'gflops_attention', 'saved_MB'.
    """
    if not rows:
        raise ValueError("need at least one measured row")
    L = [r["tokens"] for r in rows]
    fig = Figure(figsize=(12, 3.8))
    axes = fig.subplots(1, 3)
    ms = np.array([r["ms"] for r in rows])
    _loglog(axes[0], L, ms, "measured")
    _guides(axes[0], L, ms)
    axes[0].set(xlabel="tokens L", ylabel="forward time (ms)", title="time")
    lin = np.array([r["gflops_linear"] for r in rows])
    att = np.array([r["gflops_attention"] for r in rows])
    _loglog(axes[1], L, lin, "linear layers (grow as L)")
    _loglog(axes[1], L, att, "attention matmuls (grow as L^2)", marker="s")
    axes[1].set(xlabel="tokens L", ylabel="Gflops per image", title="compute")
    mb = np.array([r["saved_MB"] for r in rows])
    _loglog(axes[2], L, mb, "measured")
    _guides(axes[2], L, mb)
    axes[2].set(xlabel="tokens L", ylabel="MB kept for backward", title="memory")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
