"""Pictures of notebook 12 (fidelity): the Frechet distance in two dimensions and FID's bias.

FID (Heusel et al., arXiv 1706.08500, eq. 6) fits a Gaussian to the features of each set of
images and measures the Frechet distance between the two Gaussians. `frechet_playground` shows
that geometry in 2-D, where the fitted ellipses can be drawn next to the true ones, and where a
small sample visibly wobbles them; `sample_count_figure` plots FID and KID (Binkowski et al.,
arXiv 1801.01401) against the number of samples. Like `dit_mini.course.widgets`, every function
returns
a `matplotlib.figure.Figure` built without pyplot, so the notebook's sliders only wire controls.

Taught in notebook 12 (fidelity).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from ..metrics.fid import frechet_distance, gaussian_stats

__all__ = ["frechet_playground", "sample_count_figure"]


def _ellipse(ax, mean: torch.Tensor, cov: torch.Tensor, colour: str, style: str, label: str):
    """The 2-standard-deviation contour of a 2-D Gaussian."""
    vals, vecs = torch.linalg.eigh(cov.double())
    angle = torch.linspace(0, 2 * math.pi, 100, dtype=torch.float64)
    circle = torch.stack([angle.cos(), angle.sin()])  # (2, 100)
    xy = mean.double()[:, None] + vecs @ (2 * vals.clamp(min=0).sqrt()[:, None] * circle)
    ax.plot(xy[0].numpy(), xy[1].numpy(), style, color=colour, linewidth=1.5, label=label)


def frechet_playground(shift: float, spread: float, n: int, seed: int = 0) -> Figure:
    """n 'real' points from N(0, I) and n 'generated' points from N((shift, 0), spread^2 I) in
    2-D, each with its true Gaussian (solid, 2 std) and the Gaussian fitted to its points
    (dashed). The title compares the FID of the points, split into its mean and covariance
    terms, with the true Frechet distance shift^2 + 2 (1 - spread)^2.
    """
    if n < 3 or not spread > 0:
        raise ValueError(f"need n >= 3 points and spread > 0; got n={n}, spread={spread}")
    # 1. Draw both clouds from one seeded generator and fit a Gaussian to each.
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(n, 2, generator=g, dtype=torch.float64)
    fake = torch.tensor([shift, 0.0], dtype=torch.float64) + spread * torch.randn(
        n, 2, generator=g, dtype=torch.float64
    )
    (mu_r, cov_r), (mu_f, cov_f) = gaussian_stats(real), gaussian_stats(fake)
    fid = frechet_distance(mu_r, cov_r, mu_f, cov_f)
    mean_term = float((mu_r - mu_f).square().sum())
    # 2. Points, true and fitted contours.
    fig = Figure(figsize=(6.4, 5.0))
    ax = fig.subplots()
    true_f = (torch.tensor([shift, 0.0]), spread**2 * torch.eye(2))
    for name, pts, colour, truth, fit in (
        ("real", real, "tab:blue", (torch.zeros(2), torch.eye(2)), (mu_r, cov_r)),
        ("generated", fake, "tab:orange", true_f, (mu_f, cov_f)),
    ):
        ax.scatter(pts[:, 0].numpy(), pts[:, 1].numpy(), s=8, alpha=0.4, color=colour)
        _ellipse(ax, *truth, colour, "-", f"{name}: true Gaussian")
        _ellipse(ax, *fit, colour, "--", f"{name}: fitted to {n} points")
    true_fd = shift**2 + 2 * (1 - spread) ** 2
    ax.set_title(
        f"FID of the points {fid:.3f} = mean term {mean_term:.3f} + covariance term "
        f"{fid - mean_term:.3f}\ntrue Frechet distance {true_fd:.3f}",
        fontsize=10,
    )
    ax.set(xlabel="feature 1", ylabel="feature 2", xlim=(-5, 9), ylim=(-6, 6), aspect="equal")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def sample_count_figure(
    ns: Sequence[int],
    fid: dict[str, torch.Tensor],
    kid: dict[str, torch.Tensor] | None = None,
    mark: int | None = None,
) -> Figure:
    """FID (left) and KID (right) against the sample count n, one curve per entry: the mean
    over repeats with a band of one standard deviation; a dotted cursor at n = `mark`.

    Shapes: every value (R, len(ns)), R repeats (R >= 1).
    """
    panels = [("FID", fid)] + ([("KID", kid)] if kid is not None else [])
    fig = Figure(figsize=(5.2 * len(panels), 3.8))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    x = np.asarray(ns, dtype=float)
    for ax, (name, curves) in zip(axes, panels):
        for i, (label, values) in enumerate(curves.items()):
            v = torch.as_tensor(values, dtype=torch.float64).reshape(-1, len(ns))
            mean = v.mean(0).numpy()
            std = v.std(0).numpy() if len(v) > 1 else np.zeros_like(mean)
            ax.plot(x, mean, "o-", color=f"C{i}", label=label, markersize=4)
            ax.fill_between(x, mean - std, mean + std, color=f"C{i}", alpha=0.2)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        if mark is not None:
            ax.axvline(mark, color="k", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set(xlabel="sample count n (log scale)", ylabel=name, title=f"{name} against n")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
