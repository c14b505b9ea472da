"""Pictures of a VAE's latent space: the 2-D map, interpolation paths on it, the KL trade-off.

A VAE (Kingma & Welling, arXiv 1312.6114) encodes each relic to a Gaussian over 4 x 8 x 8
latents. These figures show where the posterior means of many relics fall (a PCA map coloured by
class, `dit_mini.models.latents.latent_map_2d`), how a walk between two relics looks when it is
straight
('linear') or follows a great circle ('spherical', slerp: Shoemake 1985), compared with fading
the pixels, and how the reconstruction quality trades against the KL term when the KL weight
changes. Every function returns a `matplotlib.figure.Figure` built without pyplot, like
`dit_mini.course.widgets`, so the notebook's sliders only wire controls to them.

Taught in notebook 10 (dream factory).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from ..models.latents import LatentMap, decode_latents, interpolate_latents
from ..models.vae import VAE
from ..viz import to_uint8

__all__ = [
    "PATH_COLOURS",
    "draw_latent_map",
    "latent_map_figure",
    "rms",
    "interpolation_frames",
    "interpolation_view",
    "kl_tradeoff_figure",
]

PATH_COLOURS = {"linear": "black", "spherical": "tab:red"}
INTERP_MODES = ("linear", "spherical")


def rms(z: torch.Tensor) -> torch.Tensor:
    """Root mean square of each latent: its norm divided by sqrt(number of entries).

    Shapes: (M, C, h, w) -> (M,).
    """
    return z.reshape(len(z), -1).float().square().mean(1).sqrt()


def draw_latent_map(
    ax,
    latent_map: LatentMap,
    class_names: Sequence[str],
    paths: Mapping[str, torch.Tensor] | None = None,
    marker: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> None:
    """Scatter the map's points on `ax`, coloured by `labels` (default: the map's classes) and
    named by `class_names`; draw each path (projected with `latent_map.project`) as a line with
    its end points, and `marker` as a star.

    Shapes: paths' values (M, C, h, w); marker (1, C, h, w); labels (N,) like the map's.
    """
    coords = latent_map.coords.numpy()
    labels = (latent_map.labels if labels is None else torch.as_tensor(labels)).numpy()
    if len(labels) != len(coords):
        raise ValueError(f"got {len(labels)} labels for a map of {len(coords)} points")
    for k, name in enumerate(class_names):
        pts = coords[labels == k]
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=6, color=f"C{k % 10}", alpha=0.5, label=name)
    for mode, path in (paths or {}).items():
        xy = latent_map.project(path).numpy()  # (M, 2)
        colour = PATH_COLOURS.get(mode, "grey")
        ax.plot(xy[:, 0], xy[:, 1], "-", color=colour, linewidth=1.6, label=f"{mode} path")
        ax.plot(xy[[0, -1], 0], xy[[0, -1], 1], "o", color=colour, markersize=7, mfc="white")
    if marker is not None:
        xy = latent_map.project(marker).numpy()
        ax.plot(xy[:, 0], xy[:, 1], "*", color="gold", markersize=16, markeredgecolor="k")
    pc1, pc2 = (100 * latent_map.explained).tolist()
    ax.set(xlabel=f"PC 1 ({pc1:.1f} % of variance)", ylabel=f"PC 2 ({pc2:.1f} % of variance)")
    ax.grid(alpha=0.3)


def latent_map_figure(
    latent_map: LatentMap,
    class_names: Sequence[str],
    paths: Mapping[str, torch.Tensor] | None = None,
    title: str | None = None,
    labels: torch.Tensor | None = None,
) -> Figure:
    """The latent map on its own, with a legend of the groups (and paths) beside it; `labels`
    colours the points by another grouping than the class (e.g. the background)."""
    fig = Figure(figsize=(7.4, 5.0))
    ax = fig.subplots()
    draw_latent_map(ax, latent_map, class_names, paths, labels=labels)
    ax.legend(fontsize=8, markerscale=2, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(title or "latent means of relics, first two principal axes", fontsize=10)
    fig.tight_layout()
    return fig


def interpolation_frames(
    vae: VAE, z0: torch.Tensor, z1: torch.Tensor, frames: int, mode: str = "linear"
) -> torch.Tensor:
    """The decoded images along an interpolation between two (scaled) latents, ends included.

    Shapes: z0, z1 (C, h, w) or (1, C, h, w) -> (frames, 3, H, W) in [-1, 1].
    """
    with torch.no_grad():
        return decode_latents(vae, interpolate_latents(z0, z1, frames, mode)).clamp(-1, 1)


def interpolation_view(
    vae: VAE,
    x0: torch.Tensor,
    x1: torch.Tensor,
    z0: torch.Tensor,
    z1: torch.Tensor,
    t: float,
    mode: str,
    latent_map: LatentMap,
    class_names: Sequence[str],
    frames: int = 21,
) -> Figure:
    """The interpolation slider's picture: the latent map (no legend: pair it with
    `latent_map_figure`) with both paths and a star at step t of the chosen one; the image
    decoded there; the pixel cross-fade (1 - t) x0 + t x1 at the same t; the RMS of the
    latents along both paths, with a cursor at t.

    t is rounded to the nearest of `frames` evenly spaced steps. Shapes: x0, x1 (3, H, W) in
    [-1, 1]; z0, z1 (C, h, w), scaled latents of x0 and x1.
    """
    if mode not in INTERP_MODES or not 0.0 <= t <= 1.0:
        raise ValueError(f"need mode in {INTERP_MODES} and 0 <= t <= 1; got {mode!r}, t={t}")
    # 1. Both paths, the chosen step, the decoded image and the cross-fade there.
    paths = {m: interpolate_latents(z0, z1, frames, m) for m in INTERP_MODES}
    i = round(t * (frames - 1))
    s = i / (frames - 1)
    with torch.no_grad():
        decoded = decode_latents(vae, paths[mode][i : i + 1]).clamp(-1, 1)
    blend = ((1 - s) * x0 + s * x1)[None]
    # 2. Lay out: map (classes coloured as in `latent_map_figure`), two images, the RMS curves.
    fig = Figure(figsize=(12.5, 3.6))
    grid = fig.add_gridspec(1, 4, width_ratios=(1.4, 1, 1, 1.4))
    ax_map = fig.add_subplot(grid[0, 0])
    draw_latent_map(ax_map, latent_map, class_names, paths, paths[mode][i : i + 1])
    ax_map.set_title("the walk on the latent map (star: t)", fontsize=10)
    for col, image, label in ((1, decoded, f"decoded, {mode}"), (2, blend, "pixel cross-fade")):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(to_uint8(image)[0])
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"{label}\nt = {s:.2f}", fontsize=10)
    # 3. RMS along both paths: slerp keeps the size of the latents, a straight line shrinks it.
    ax = fig.add_subplot(grid[0, 3])
    steps = np.linspace(0, 1, frames)
    for m, path in paths.items():
        ax.plot(steps, rms(path).numpy(), color=PATH_COLOURS[m], label=m)
    ax.axvline(s, color="k", linestyle="--", linewidth=1)
    ax.set(xlabel="t along the path", ylabel="RMS of the latent", title="size of the latent")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def kl_tradeoff_figure(results: Sequence[Mapping[str, float]]) -> Figure:
    """Reconstruction quality against the KL term, one point per KL weight.

    Each result holds 'kl_weight', 'kl' (mean nats per latent number) and 'psnr' (dB). The
    points are joined in the order of the weights, so the trade-off reads as one curve.
    """
    if not results:
        raise ValueError("need at least one result with 'kl_weight', 'kl' and 'psnr'")
    ordered = sorted(results, key=lambda r: r["kl_weight"])
    kl = [r["kl"] for r in ordered]
    psnr = [r["psnr"] for r in ordered]
    fig = Figure(figsize=(6.0, 3.8))
    ax = fig.subplots()
    ax.plot(kl, psnr, "o-", color="tab:purple")
    for r in ordered:
        ax.annotate(f"weight {r['kl_weight']:g}", (r["kl"], r["psnr"]), (6, 4), fontsize=8,
                    textcoords="offset points")  # fmt: skip
    ax.set(xlabel="KL term (nats per latent number)", ylabel="reconstruction PSNR (dB)")
    ax.set_title("a tighter rein on the KL costs detail", fontsize=10)
    ax.margins(x=0.2, y=0.1)  # room for the labels
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
