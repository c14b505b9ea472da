"""Pictures of classifier-free guidance: samples at one guidance scale, and the measured trade-off.

The functions take the dictionaries of `dit_mini.studies.guidance_study` (a sweep's samples, its
scores)
and return a `matplotlib.figure.Figure` built without pyplot, like `dit_mini.course.widgets`, so the
notebook's slider only picks the scale.

Taught in notebook 08 (summon signs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from ..viz import to_uint8

__all__ = ["samples_at_scale", "guidance_view", "tradeoff_figure"]


def samples_at_scale(sweep: dict, scale: float, per_class: int | None = None) -> torch.Tensor:
    """The sweep's samples at `scale` as a grid: one row per draw, one column per class.

    Shapes: -> (rows, classes, C, H, W).
    """
    if float(scale) not in sweep["samples"]:
        raise ValueError(f"scale {scale} was not sampled; the sweep holds {sweep['scales']}")
    images, labels = sweep["samples"][float(scale)], sweep["labels"]
    classes = labels.unique()
    rows = min(int((labels == k).sum()) for k in classes)
    rows = rows if per_class is None else min(rows, per_class)
    return torch.stack([images[labels == k][:rows] for k in classes], dim=1)


def _metric_axes(ax, scores: dict, key: str, ylabel: str, cursor: float | None, ref=None):
    ax.plot(scores["scales"], scores[key], "o-", color="tab:blue", label="samples")
    if ref is not None:
        value, label = ref
        ax.axhline(value, color="grey", linestyle="--", linewidth=1, label=label)
    if cursor is not None:
        ax.axvline(cursor, color="k", linestyle=":", linewidth=1)
    ax.axvline(1.0, color="tab:green", linewidth=0.8, alpha=0.5)
    ax.set(xlabel="guidance scale w", ylabel=ylabel)
    ax.grid(alpha=0.3)


def guidance_view(
    sweep: dict, scores: dict, scale: float, class_names: Sequence[str], rows: int = 3
) -> Figure:
    """The slider's picture: `rows` samples of every class at `scale` (the same starting noise
    at every scale), beside class accuracy and diversity against scale with `scale` marked."""
    grid = samples_at_scale(sweep, scale, rows)  # (rows, K, C, H, W)
    n_rows, K = grid.shape[:2]
    fig = Figure(figsize=(1.0 * K + 4.2, max(3.6, 1.0 * n_rows + 0.9)))
    layout = fig.add_gridspec(2, 2, width_ratios=[1.0 * K, 3.6])
    left = fig.add_subplot(layout[:, 0])
    tiles = to_uint8(grid.flatten(0, 1))  # (rows * K, H, W, C)
    H, W = tiles.shape[1:3]
    mosaic = tiles.reshape(n_rows, K, H, W, -1).transpose(0, 2, 1, 3, 4)
    left.imshow(mosaic.reshape(n_rows * H, K * W, -1))
    left.set_xticks(np.arange(K) * W + W / 2 - 0.5, list(class_names)[:K], rotation=45)
    left.set_yticks([])
    left.set_title(f"guidance scale w = {scale:g}: {n_rows} samples per class", fontsize=10)
    i = sweep["scales"].index(float(scale))
    top, bottom = fig.add_subplot(layout[0, 1]), fig.add_subplot(layout[1, 1])
    _metric_axes(top, scores, "class_accuracy", "class accuracy", scale)
    top.set_title(f"accuracy {scores['class_accuracy'][i]:.2f}, "
                  f"diversity {scores['diversity'][i]:.2f}", fontsize=10)  # fmt: skip
    top.set_ylim(-0.02, 1.02)
    real = (scores["real_diversity"], "real relics")
    _metric_axes(bottom, scores, "diversity", "diversity", scale, real)
    bottom.legend(fontsize=7)
    fig.tight_layout()
    return fig


def tradeoff_figure(scores: dict) -> Figure:
    """Fidelity and diversity against the guidance scale: feature FID (with the real-vs-real
    floor), class accuracy, and within-class diversity (with real relics' value)."""
    fig = Figure(figsize=(12, 3.6))
    ax_fid, ax_acc, ax_div = fig.subplots(1, 3)
    floor = (scores["fid_floor"], f"real vs real, n = {scores['n']}")
    _metric_axes(ax_fid, scores, "fid", "FID (relic-classifier features)", None, floor)
    ax_fid.set_title("distance to real relics (lower is better)", fontsize=10)
    _metric_axes(ax_acc, scores, "class_accuracy", "class accuracy", None)
    ax_acc.set(ylim=(-0.02, 1.02), title="fidelity: the asked-for class is seen")
    real = (scores["real_diversity"], "real relics")
    _metric_axes(ax_div, scores, "diversity", "mean feature distance within a class", None, real)
    ax_div.set_title("diversity: two samples of one class differ", fontsize=10)
    for ax in (ax_fid, ax_div):
        ax.legend(fontsize=8)
    ax_acc.title.set_fontsize(10)
    fig.tight_layout()
    return fig
