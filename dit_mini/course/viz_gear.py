"""Inside the DiT block: its stages, how much each block moves the tokens, the adaLN-Zero gates,
and the race of the four conditioning designs (Peebles & Xie, arXiv 2212.09748, sec. 3.2).

Measurements take a model or a block and return tensors; figures take those numbers and return a
`matplotlib.figure.Figure` built without pyplot, like `dit_mini.course.widgets`, so notebook
controls
only wire values to them.

- `block_stages`: every intermediate tensor of one adaLN-Zero block, in the order it computes.
- `block_updates`: ||block(x) - x|| / ||x|| for every block of a model (zero for adaLN-Zero at
  initialisation).
- `gate_magnitudes`: mean |gate| of the attention and MLP branches, per block, for given t, y.

Taught in notebook 07 (legendary gear).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..models.dit_block import CONDITIONING, DiTBlock, modulate

__all__ = [
    "DESIGN_COLOURS",
    "block_stages",
    "block_updates",
    "gate_magnitudes",
    "running_mean",
    "stage_figure",
    "updates_figure",
    "gate_view",
    "race_figure",
]

DESIGN_COLOURS = {
    "adaln-zero": "tab:red",
    "adaln": "tab:orange",
    "in-context": "tab:blue",
    "cross-attention": "tab:green",
}
MODULATION_NAMES = ("shift_msa", "scale_msa", "gate_msa", "shift_mlp", "scale_mlp", "gate_mlp")


@torch.no_grad()
def block_stages(block: DiTBlock, x: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every stage of an adaLN-Zero block, named; 'out' equals `block(x, c)`.

    Shapes: x (B, L, D), c (B, D) -> the six modulation vectors (B, D), every other stage (B, L, D).
    """
    s = dict(zip(MODULATION_NAMES, block.adaLN_modulation(c).chunk(6, dim=1)))
    s["x"] = x
    s["norm1"] = block.norm1(x)
    s["modulated1"] = modulate(s["norm1"], s["shift_msa"], s["scale_msa"])
    s["attn"] = block.attn(s["modulated1"])
    s["mid"] = x + s["gate_msa"][:, None] * s["attn"]
    s["norm2"] = block.norm2(s["mid"])
    s["modulated2"] = modulate(s["norm2"], s["shift_mlp"], s["scale_mlp"])
    s["mlp"] = block.mlp(s["modulated2"])
    s["out"] = s["mid"] + s["gate_mlp"][:, None] * s["mlp"]
    return s


@torch.no_grad()
def block_updates(model: nn.Module, x_t: torch.Tensor, t: torch.Tensor, y=None) -> torch.Tensor:
    """How much each block changes its input: ||block(x) - x|| / ||x|| over the whole batch.

    Forward hooks read each block's input and output while the model runs once. An adaLN-Zero
    model at initialisation gives exactly zero for every block.

    Shapes: x_t (B, C, H, W), t (B,), y (B,) -> (depth,).
    """
    ratios = []

    def record(module, inputs, output):
        ratios.append(float((output - inputs[0]).norm() / inputs[0].norm()))

    handles = [block.register_forward_hook(record) for block in model.blocks]
    try:
        model(x_t, t, y)
    finally:
        for handle in handles:
            handle.remove()
    return torch.tensor(ratios)


@torch.no_grad()
def gate_magnitudes(model: nn.Module, t: torch.Tensor, y: torch.Tensor | None = None):
    """Mean |gate| of the attention and MLP branches of every block of an adaLN-Zero DiT.

    Shapes: t (B,), y (B,) -> (depth, 2, B): [:, 0] attention gates, [:, 1] MLP gates.
    """
    if model.config.conditioning != "adaln-zero":
        raise ValueError(
            f"only adaLN-Zero blocks have gates; this model uses {model.config.conditioning!r}"
        )
    c = model.embed_condition(t, y, t.shape[0])  # (B, D)
    gates = []
    for block in model.blocks:
        chunks = block.adaLN_modulation(c).chunk(6, dim=1)  # six (B, D)
        gates.append(torch.stack([chunks[2].abs().mean(1), chunks[5].abs().mean(1)]))
    return torch.stack(gates)  # (depth, 2, B)


def running_mean(values: Sequence[float], window: int) -> np.ndarray:
    """Mean of the last `window` values at every position (fewer at the start).

    Shapes: (N,) -> (N,).
    """
    if window < 1:
        raise ValueError(f"window must be a positive integer; got {window}")
    v = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], v]))
    lo = np.maximum(np.arange(1, len(v) + 1) - window, 0)
    return (sums[1:] - sums[lo]) / (np.arange(1, len(v) + 1) - lo)


def stage_figure(stages: Mapping[str, torch.Tensor], title: str = "one DiT block") -> Figure:
    """Root-mean-square size of the token stream after each stage of `block_stages`."""
    names = [n for n in stages if n not in MODULATION_NAMES]
    rms = [float(stages[n].pow(2).mean().sqrt()) for n in names]
    fig = Figure(figsize=(8.5, 3.2))
    ax = fig.subplots()
    colours = ["tab:gray" if n in ("x", "mid", "out") else "tab:purple" for n in names]
    ax.bar(range(len(names)), rms, color=colours)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("RMS of the tokens")
    ax.set_title(f"{title}: grey = the residual stream, purple = a branch")
    fig.tight_layout()
    return fig


def updates_figure(updates: Mapping[str, torch.Tensor]) -> Figure:
    """Grouped bars: ||block(x) - x|| / ||x|| per block, one colour per design."""
    fig = Figure(figsize=(7.5, 3.2))
    ax = fig.subplots()
    width = 0.8 / len(updates)
    for i, (design, values) in enumerate(updates.items()):
        xs = np.arange(len(values)) + (i - (len(updates) - 1) / 2) * width
        colour = DESIGN_COLOURS.get(design, "tab:gray")
        ax.bar(xs, values.numpy(), width, label=design, color=colour)
    ax.set_xticks(range(len(values)), [f"block {b}" for b in range(len(values))])
    ax.set_ylabel("||block(x) - x|| / ||x||")
    ax.set_title("how much each block changes its input at initialisation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gate_view(gates: torch.Tensor, levels: Sequence[float], level: float) -> Figure:
    """Left: each block's mean |gate| at noise level `level`; right: against every level.

    Shapes: gates (depth, 2, len(levels)) from `gate_magnitudes`, averaged over classes.
    """
    levels = np.asarray(levels, dtype=np.float64)
    i = int(np.abs(levels - level).argmin())
    depth = gates.shape[0]
    fig = Figure(figsize=(10, 3.4))
    left, right = fig.subplots(1, 2)
    xs = np.arange(depth)
    left.bar(xs - 0.2, gates[:, 0, i].numpy(), 0.4, label="attention gate", color="tab:blue")
    left.bar(xs + 0.2, gates[:, 1, i].numpy(), 0.4, label="MLP gate", color="tab:orange")
    left.set_ylim(0, 1.1 * float(gates.max()))
    left.set_xticks(xs, [f"block {b}" for b in xs])
    left.set_ylabel("mean |gate| over channels")
    left.set_title(f"gates at noise level t = {levels[i]:.2f}")
    left.legend(fontsize=8)
    for b in range(depth):
        colour = f"C{b}"
        right.plot(levels, gates[b, 0].numpy(), color=colour, label=f"block {b}")
        right.plot(levels, gates[b, 1].numpy(), color=colour, linestyle="--")
    right.axvline(levels[i], color="black", linewidth=0.8)
    right.set_xlabel("noise level t (0 clean, 1 pure noise)")
    right.set_title("solid: attention gate, dashed: MLP gate")
    right.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def race_figure(
    histories: Mapping[str, Sequence[float]],
    gflops: Mapping[str, float],
    highlight: str | None = None,
    window: int = 10,
) -> Figure:
    """Left: training loss (running mean over `window` steps) of each design; right: its Gflops.

    `highlight` draws one design bold and fades the others.
    """
    if highlight is not None and highlight not in histories:
        raise ValueError(f"highlight {highlight!r} is not one of {list(histories)}")
    fig = Figure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    for design, history in histories.items():
        bold = highlight is None or design == highlight
        left.plot(
            np.arange(1, len(history) + 1),
            running_mean(history, window),
            color=DESIGN_COLOURS.get(design, "tab:gray"),
            linewidth=2.2 if bold else 1.0,
            alpha=1.0 if bold else 0.35,
            label=design,
        )
    left.set_xlabel("training step")
    left.set_ylabel(f"loss (mean of {window} steps)")
    left.set_title("the same steps, data and seed for every design")
    left.legend(fontsize=8)
    names = [d for d in CONDITIONING if d in gflops] + [d for d in gflops if d not in CONDITIONING]
    values = [gflops[d] for d in names]
    alphas = [1.0 if highlight in (None, d) else 0.35 for d in names]
    bars = right.barh(range(len(names)), values, color=[DESIGN_COLOURS.get(d) for d in names])
    for bar, alpha in zip(bars, alphas):
        bar.set_alpha(alpha)
    right.set_yticks(range(len(names)), names)
    right.invert_yaxis()
    right.set_xlabel("Gflops per image (forward pass)")
    # the axis starts at 0, so bar lengths compare the costs; each bar names its difference
    # from adaLN-Zero, so +15 % reads as +15 %, not as three times longer
    right.set_xlim(0.0, 1.3 * max(values))
    reference = gflops.get("adaln-zero", values[0])
    for i, value in enumerate(values):
        change = 100 * (value / reference - 1)
        note = f"{value:.3f}" if names[i] == "adaln-zero" else f"{value:.3f} ({change:+.1f} %)"
        right.text(value, i, f" {note}", va="center", fontsize=8)
    fig.tight_layout()
    return fig
