"""Pictures behind the notebooks' sliders: each function takes control values, returns a Figure.

A notebook wires ipywidgets controls to these functions and draws nothing itself, so every
picture a learner can move is also tested. Figures are built as `matplotlib.figure.Figure`
objects (no pyplot), which renders headless (CI, nbval) and leaves the notebook's backend alone;
`show` displays one as a PNG, which looks the same in JupyterLab, Colab and on GitHub.
ipywidgets is imported only when a control is built (it comes with the `notebooks` extra).

Sections: generic builders; notebook 01 (fog: the forward process and the noise schedules,
Ho et al. arXiv 2006.11239 eq. 4, Nichol & Dhariwal arXiv 2102.09672 eq. 17); notebook 02
(nameless king: the reparameterization trick, Kingma & Welling arXiv 1312.6114 sec. 2.4).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from ..diffusion.schedules import NoiseSchedule
from ..viz import to_uint8

__all__ = [
    "show",
    "interactive_view",
    "image_rows",
    "histogram_figure",
    "snr_db",
    "fog_grid",
    "schedule_curves",
    "fog_view",
    "reparam_view",
]

DPI = 100
SCHEDULE_COLOURS = {"linear": "tab:orange", "cosine": "tab:blue"}

# ---- generic builders ----


def show(figure: Figure) -> None:
    """Display a Figure in a notebook as a PNG image."""
    from IPython.display import Image, display  # deferred: IPython comes with notebooks only

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    display(Image(data=buffer.getvalue()))


def interactive_view(render: Callable[..., Figure], **controls):
    """A widget: the `controls` (ipywidgets, by keyword) above the picture `render(**values)`,
    redrawn whenever a control moves. Works with ipywidgets 7 and 8."""
    import ipywidgets as widgets  # deferred: the optional `notebooks` extra

    output = widgets.interactive_output(lambda **values: show(render(**values)), controls)
    return widgets.VBox([widgets.HBox(list(controls.values())), output])


def image_rows(
    rows: dict[str, torch.Tensor],
    column_titles: Sequence[str] | None = None,
    captions: dict[str, Sequence[str]] | None = None,
    title: str | None = None,
    panel: float = 1.6,
) -> Figure:
    """One row of images per entry of `rows`, labelled with its key, pixels shown unsmoothed;
    `captions[key]` puts one line of text under each image of that row.

    Shapes: every value (N, C, H, W) in [-1, 1] with the same N.
    """
    counts = {len(images) for images in rows.values()}
    if len(counts) != 1 or not rows:
        raise ValueError(f"every row needs the same number of images; got {sorted(counts)}")
    ncol = counts.pop()
    if column_titles is not None and len(column_titles) != ncol:
        raise ValueError(f"got {len(column_titles)} column titles for {ncol} columns")
    height = (panel + 0.25 * (captions is not None)) * len(rows) + 0.5 + 0.3 * bool(title)
    fig = Figure(figsize=(panel * ncol + 0.6, height))
    axes = fig.subplots(len(rows), ncol, squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        pixels = to_uint8(images)  # (N, H, W, C)
        for c in range(ncol):
            ax = axes[r, c]
            ax.imshow(pixels[c].squeeze(-1) if pixels.shape[-1] == 1 else pixels[c])
            ax.set_xticks([]), ax.set_yticks([])
            if column_titles is not None and r == 0:
                ax.set_title(column_titles[c], fontsize=10)
            if captions is not None and label in captions:
                ax.set_xlabel(captions[label][c], fontsize=9)
        axes[r, 0].set_ylabel(label, fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def histogram_figure(
    samples: dict[str, torch.Tensor],
    gaussian: tuple[float, float] | None = None,
    xlabel: str = "value",
    title: str | None = None,
    bins: int = 80,
    truth: float | None = None,
    xlim: tuple[float, float] | None = None,
) -> Figure:
    """Density histograms of each sample set, overlaid; the legend gives each set's measured
    mean and std; `gaussian` = (mean, std) adds that normal density as a dashed curve, and
    `truth` a vertical line at the value the samples should average to. The bins span `xlim`,
    or the middle 99.8 % of all samples."""
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    values = {k: torch.as_tensor(v).detach().double().flatten().numpy() for k, v in samples.items()}
    lo, hi = xlim or (
        min(float(np.quantile(v, 0.001)) for v in values.values()),
        max(float(np.quantile(v, 0.999)) for v in values.values()),
    )
    edges = np.linspace(lo, hi, bins + 1)
    for label, v in values.items():
        stats = f"{label}: mean {v.mean():+.3f}, std {v.std():.3f}"
        ax.hist(v, bins=edges, density=True, histtype="stepfilled", alpha=0.35, label=stats)
    if gaussian is not None:
        mean, std = gaussian
        x = np.linspace(lo, hi, 400)
        pdf = np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
        ax.plot(x, pdf, "k--", linewidth=1.2, label=f"N({mean:+.3f}, {std:.3f}²) in theory")
    if truth is not None:
        ax.axvline(truth, color="k", linewidth=1.2, label=f"true value {truth:+.3f}")
    ax.set(xlabel=xlabel, ylabel="density", title=title)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ---- notebook 01: fog (forward process, linear and cosine schedules, SNR) ----


def snr_db(schedule: NoiseSchedule, t: torch.Tensor | None = None) -> torch.Tensor:
    """The signal-to-noise ratio in decibels, 10 log10(alpha_bar / (1 - alpha_bar)).

    Shapes: t (B,) -> (B,); None -> (T,).
    """
    return 10.0 * torch.log10(schedule.snr(t))


def fog_grid(
    x0: torch.Tensor,
    eps: torch.Tensor,
    schedules: Sequence[NoiseSchedule],
    timesteps: Sequence[int],
) -> Figure:
    """x_t of one image under each schedule (rows) at each timestep (columns), all from the
    same noise `eps`, so the only difference between rows is the schedule.

    Shapes: x0, eps (C, H, W) in [-1, 1] for x0.
    """
    t = torch.as_tensor(list(timesteps)).long()
    batch, noise = x0.expand(len(t), *x0.shape), eps.expand(len(t), *eps.shape)
    rows = {s.name: s.add_noise(batch, noise, t) for s in schedules}
    captions = {s.name: [f"SNR {db:+.1f} dB" for db in snr_db(s, t).tolist()] for s in schedules}
    return image_rows(rows, [f"t = {step}" for step in t.tolist()], captions)


def _crossing(schedule: NoiseSchedule) -> int:
    """First step whose SNR is below 1 (0 dB), or T when none is."""
    below = (schedule.alpha_bar < 0.5).nonzero()
    return int(below[0]) if len(below) else schedule.num_timesteps


def _plot_snr(ax, schedules: Sequence[NoiseSchedule], t: int | None) -> None:
    for i, s in enumerate(schedules):
        colour = SCHEDULE_COLOURS.get(s.name)
        ax.plot(snr_db(s).numpy(), color=colour, label=s.name)
        cross = _crossing(s)
        if cross < s.num_timesteps:  # labels alternate below-left and above-right of the curves
            where = (cross - 0.25 * len(s), -35.0) if i % 2 == 0 else (cross + 0.06 * len(s), 25.0)
            arrow = {"arrowstyle": "->", "color": colour}
            ax.plot([cross], [0.0], "o", color=colour, markersize=5)
            ax.annotate(f"0 dB at t = {cross}", (cross, 0.0), where, arrowprops=arrow, color=colour)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    if t is not None:
        ax.axvline(t, color="k", linestyle="--", linewidth=1)
    ax.set(xlabel="timestep t", ylabel="SNR (dB)", title="signal-to-noise ratio")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def schedule_curves(schedules: Sequence[NoiseSchedule], t: int | None = None) -> Figure:
    """alpha_bar (left) and the SNR in dB (right) against t for each schedule, the 0 dB
    crossings marked, and a dashed cursor at `t` when given."""
    fig = Figure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2)
    for s in schedules:
        left.plot(s.alpha_bar.numpy(), color=SCHEDULE_COLOURS.get(s.name), label=s.name)
    left.axhline(0.5, color="grey", linewidth=0.8)
    if t is not None:
        left.axvline(t, color="k", linestyle="--", linewidth=1)
    left.set(xlabel="timestep t", ylabel="alpha_bar (share of signal variance)")
    left.set(title="how much of the image is left", ylim=(-0.02, 1.02))
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    _plot_snr(right, schedules, t)
    fig.tight_layout()
    return fig


def fog_view(
    x0: torch.Tensor, eps: torch.Tensor, t: int, schedules: Sequence[NoiseSchedule]
) -> Figure:
    """The fog slider's picture: x_t under each schedule at step t (same noise), beside the SNR
    curves with t marked.

    Shapes: x0, eps (C, H, W).
    """
    n = len(schedules)
    fig = Figure(figsize=(2.6 * n + 5.4, 3.2))
    grid = fig.add_gridspec(1, n + 2)
    step = torch.tensor([int(t)])
    for i, s in enumerate(schedules):
        ax = fig.add_subplot(grid[0, i])
        x_t = s.add_noise(x0[None], eps[None], step)
        ax.imshow(to_uint8(x_t)[0])
        ax.set_xticks([]), ax.set_yticks([])
        a = float(s.alpha_bar[int(t)])
        ax.set_title(f"{s.name}, t = {int(t)}", fontsize=10)
        ax.set_xlabel(f"alpha_bar {a:.3f}\nSNR {float(snr_db(s, step)[0]):+.1f} dB", fontsize=9)
    _plot_snr(fig.add_subplot(grid[0, n:]), schedules, int(t))
    fig.tight_layout()
    return fig


# ---- notebook 02: nameless king (the reparameterization trick) ----


def reparam_view(mu: float, sigma: float, eps: torch.Tensor, lines: int = 30) -> Figure:
    """x = mu + sigma * eps drawn as a map: the fixed eps samples on the top line, the x they
    become on the bottom line, grey links joining `lines` of them, and each side's histogram.
    Moving mu shifts every link the same way; sigma stretches them about mu.

    Shapes: eps (N,).
    """
    eps = torch.as_tensor(eps).double().flatten()
    x = mu + sigma * eps
    fig = Figure(figsize=(8, 4.2))
    ax = fig.subplots()
    edges = np.linspace(-8, 8, 161)
    densities = [np.histogram(v.numpy(), bins=edges, density=True)[0] for v in (eps, x)]
    scale = 0.9 / max(float(d.max()) for d in densities)  # one scale: areas stay comparable
    for density, base, sign, colour in zip(densities, (1.0, 0.0), (1, -1), ("C4", "C2")):
        heights = base + sign * scale * density
        ax.stairs(heights, edges, baseline=base, fill=True, alpha=0.35, color=colour)
    for e, v in zip(eps[:lines].tolist(), x[:lines].tolist()):
        ax.plot([e, v], [1.0, 0.0], color="grey", linewidth=0.7, alpha=0.8)
    ax.plot(eps[:lines], np.ones(min(lines, len(eps))), "o", color="tab:purple", markersize=3)
    ax.plot(x[:lines], np.zeros(min(lines, len(x))), "o", color="tab:green", markersize=3)
    ax.set_yticks([0.0, 1.0], [f"x = {mu:+.2f} + {sigma:.2f} eps", "eps ~ N(0, 1)"])
    ax.set(xlim=(-8, 8), ylim=(-1.0, 2.0), xlabel="value")
    measured = f"measured: mean {float(x.mean()):+.2f}, std {float(x.std()):.2f}"
    ax.set_title(f"the same eps, moved by mu and stretched by sigma ({measured})", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig
