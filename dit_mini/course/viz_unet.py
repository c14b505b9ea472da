"""Pictures and measurements of a U-Net denoiser: its shape, its feature maps, what skips buy.

- The U drawn from a config: one box per level (height follows the resolution, the label gives
  H x W x C), stride-2 convolutions going down, upsampling coming back, skips across.
- Feature maps per level (`UNet.feature_maps`), one channel large or a few channels per level.
- Denoising measured: x0_hat from the network's eps prediction (Ho et al., arXiv 2006.11239,
  eq. 15 rearranged), PSNR in dB, and the error split into a coarse part (block means over
  `factor` x `factor` pixels) and the fine detail left over. The split is an orthogonal
  projection, so the two mean squared errors add up exactly to the total.
- Receptive field of the contraction path: r grows by (k - 1) * j at each k x k convolution,
  and the jump j (input pixels between neighbouring outputs) doubles at each stride-2 one
  (Araujo et al., Distill 2019, "Computing receptive fields of convolutional neural networks").

Taught in notebook 04 (cartographer); every function returns a Figure or tensors, so the
notebook's sliders only wire controls to them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from ..diffusion.schedules import NoiseSchedule
from ..models.unet import UNetConfig
from ..viz import to_uint8
from .widgets import image_rows

__all__ = [
    "PEAK_TO_PEAK",
    "psnr",
    "denoise",
    "detail_split",
    "contraction_layers",
    "receptive_field",
    "unet_diagram",
    "feature_levels",
    "feature_map_view",
    "denoise_view",
    "expansion_step",
    "psnr_curves",
    "receptive_field_view",
]

PEAK_TO_PEAK = 2.0  # images live in [-1, 1]
LEVEL_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def psnr(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, 10 log10(2^2 / MSE) for images in [-1, 1].

    Shapes: x, reference (N, C, H, W) -> (N,).
    """
    mse = (x.double() - reference.double()).pow(2).flatten(1).mean(1)  # (N,)
    return 10.0 * torch.log10(PEAK_TO_PEAK**2 / mse.clamp_min(1e-12))


@torch.no_grad()
def denoise(
    model,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    eps: torch.Tensor,
    t: int,
    y: torch.Tensor | None = None,
    prediction_type: str = "eps",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise clean images to step t in one jump, then let the model estimate them back.

    Returns (x_t, x0_hat), x0_hat clipped to [-1, 1].

    Shapes: x0, eps (N, C, H, W) -> two (N, C, H, W).
    """
    steps = torch.full((x0.shape[0],), int(t), dtype=torch.long, device=x0.device)
    x_t = schedule.add_noise(x0, eps, steps)
    _, x0_hat = schedule.to_eps_x0(model(x_t, steps, y), x_t, steps, prediction_type)
    return x_t, x0_hat.clamp(-1.0, 1.0)


def detail_split(x: torch.Tensor, reference: torch.Tensor, factor: int = 4) -> dict[str, float]:
    """Mean squared error of x, split into coarse (block means over factor x factor pixels)
    and fine (the rest) parts; 'coarse' + 'fine' = 'total' exactly.

    Shapes: x, reference (N, C, H, W), H and W divisible by factor.
    """
    if x.shape[-1] % factor or x.shape[-2] % factor:
        raise ValueError(f"factor {factor} must divide the image size {tuple(x.shape[-2:])}")
    error = x.double() - reference.double()
    coarse = F.avg_pool2d(error, factor).repeat_interleave(factor, -2).repeat_interleave(factor, -1)
    fine = error - coarse  # orthogonal to every block-constant image
    total, c, f = (e.pow(2).mean().item() for e in (error, coarse, fine))
    return {"total": total, "coarse": c, "fine": f}


def contraction_layers(config: UNetConfig) -> dict[str, list[tuple[int, int]]]:
    """(kernel, stride) of every convolution on the way from the input to each level's output.

    The 1x1 convolutions on residual shortcuts are left out: they widen nothing.
    """
    layers, out = [(3, 1)], {}  # conv_in
    for i in range(len(config.channel_mults)):
        if i > 0:
            layers.append((3, 2))  # the stride-2 downsampler that ends level i - 1
        layers += [(3, 1), (3, 1)] * config.num_res_blocks  # conv1, conv2 of each ResBlock
        out[f"down{i}"] = list(layers)
    return out


def receptive_field(layers: Sequence[tuple[int, int]]) -> int:
    """Width in input pixels that one output position of a stack of convolutions depends on."""
    size, jump = 1, 1
    for kernel, stride in layers:
        size += (kernel - 1) * jump  # each tap reaches one jump further
        jump *= stride
    return size


def _arrow(ax, start, end, colour, style="-|>", dashed=False, width=1.5):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=12,
            color=colour,
            linewidth=width,
            linestyle="--" if dashed else "-",
        )
    )


def unet_diagram(config: UNetConfig, input_size: int | None = None) -> Figure:
    """The U of `config`: contraction boxes on the left, bottleneck, expansion on the right.

    Box heights follow the resolution; labels give H x W x C. Red arrows halve the resolution,
    green ones double it, grey ones enter and leave the bottleneck (same resolution, blocks and
    self-attention); dashed arrows are the skips (absent when config.skip_connections is False).
    """
    size = input_size or config.input_size
    levels = len(config.channel_mults)
    fig = Figure(figsize=(2.0 * levels + 4.5, 1.3 * levels + 2.2))
    ax = fig.subplots()
    n_cols = 2 * levels + 1
    centres = {}
    for col in range(n_cols):
        depth = min(col, n_cols - 1 - col)  # rows down the U; the bottleneck is one row lower
        level = min(depth, levels - 1)  # the bottleneck works at the last level's resolution
        name = "mid" if col == levels else (f"down{col}" if col < levels else f"up{level}")
        res, width = size // 2**level, config.widths[level]
        height = 0.25 + 0.85 * res / size
        y = -1.4 * depth
        colour = LEVEL_COLOURS[level % len(LEVEL_COLOURS)]
        ax.add_patch(Rectangle((col - 0.3, y - height / 2), 0.6, height, color=colour, alpha=0.35))
        ax.text(col, y, f"{name}\n{res}x{res}x{width}", ha="center", va="center", fontsize=8)
        centres[name] = (col, y, height)
    for i in range(levels):
        last = i == levels - 1  # into and out of the bottleneck: no change of resolution
        x, y, h = centres[f"down{i}"]
        nxt = centres["mid"] if last else centres[f"down{i + 1}"]
        colour = "grey" if last else "firebrick"
        _arrow(ax, (x + 0.2, y - h / 2), (nxt[0] - 0.2, nxt[1] + nxt[2] / 2), colour)
        x, y, h = centres[f"up{i}"]
        below = centres["mid"] if last else centres[f"up{i + 1}"]
        colour = "grey" if last else "seagreen"
        _arrow(ax, (below[0] + 0.2, below[1] + below[2] / 2), (x - 0.2, y - h / 2), colour)
        if config.skip_connections:
            _arrow(ax, (i + 0.32, y), (n_cols - 1 - i - 0.32, y), "royalblue", dashed=True)
    ax.text(-0.75, 0, "x_t", ha="right", va="center", fontsize=10)
    ax.text(n_cols - 0.25, 0, "eps-hat", ha="left", va="center", fontsize=10)
    colours = ("firebrick", "seagreen", "grey", "royalblue")
    labels = ["stride-2 conv (halve)", "upsample + conv (double)", "bottleneck (+ attention)"]
    labels += ["skip: concatenate"] if config.skip_connections else []
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in colours[: len(labels)]]
    ax.legend(handles, labels, loc="lower right", fontsize=8, frameon=False)
    ax.set(xlim=(-1.6, n_cols + 0.6), ylim=(-1.4 * levels - 0.7, 0.9))
    ax.axis("off")
    skips = "with skip connections" if config.skip_connections else "WITHOUT skip connections"
    ax.set_title(f"U-Net, {levels} levels, {skips}", fontsize=11)
    fig.tight_layout()
    return fig


def _channel(ax, fmap: torch.Tensor, title: str, fontsize: int = 8) -> None:
    limit = float(fmap.abs().max()) or 1.0  # symmetric colours: white is zero
    ax.imshow(fmap.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title, fontsize=fontsize)


def _strongest(fmap: torch.Tensor, k: int) -> list[int]:
    """Indices of the k channels with the largest spatial variance (the most structured)."""
    return fmap.flatten(1).var(1).argsort(descending=True)[:k].tolist()


def feature_levels(features: dict[str, torch.Tensor], channels: int = 4) -> Figure:
    """One row per level (input order: down..., mid, up...), its `channels` most varied maps.

    Shapes: features[name] (C, H, W) or (1, C, H, W); 'out' is skipped.
    """
    names = [k for k in features if k != "out"]
    fig = Figure(figsize=(1.5 * channels + 1.2, 1.45 * len(names) + 0.4))
    axes = fig.subplots(len(names), channels, squeeze=False)
    for r, name in enumerate(names):
        fmap = features[name].detach().float().cpu().reshape(-1, *features[name].shape[-2:])
        for c, index in enumerate(_strongest(fmap, channels)):
            _channel(axes[r, c], fmap[index], f"ch {index}")
        C, H, W = fmap.shape
        axes[r, 0].set_ylabel(f"{name}\n{H}x{W}x{C}", fontsize=9)
    fig.suptitle("most varied channels per level (red +, blue -)", fontsize=10)
    fig.tight_layout()
    return fig


def feature_map_view(
    features: dict[str, torch.Tensor], level: str, channel: int, image: torch.Tensor
) -> Figure:
    """The widget's picture: the input, channel `channel` of `level` large, and the next
    eight channels of that level small.

    Shapes: features[level] (C, H, W) or (1, C, H, W); image (3, H0, W0) in [-1, 1].
    """
    if level not in features:
        raise ValueError(f"unknown level {level!r}; choose one of {sorted(features)}")
    fmap = features[level].detach().float().cpu().reshape(-1, *features[level].shape[-2:])
    C, H, W = fmap.shape
    channel = int(channel) % C
    fig = Figure(figsize=(11, 3.4))
    grid = fig.add_gridspec(2, 8)
    ax = fig.add_subplot(grid[:, 0:2])
    ax.imshow(to_uint8(image[None])[0]), ax.set_xticks([]), ax.set_yticks([])
    ax.set_title("input x_t", fontsize=10)
    _channel(fig.add_subplot(grid[:, 2:4]), fmap[channel], f"{level}, channel {channel}", 10)
    for k in range(8):  # the next eight channels, wrapping around
        index = (channel + 1 + k) % C
        _channel(fig.add_subplot(grid[k // 4, 4 + k % 4]), fmap[index], f"ch {index}")
    fig.suptitle(f"level {level}: {H}x{W} positions, {C} channels", fontsize=11)
    fig.tight_layout()
    return fig


def denoise_view(
    models: dict[str, torch.nn.Module],
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    eps: torch.Tensor,
    t: int,
) -> Figure:
    """The denoising slider's picture. Rows: clean relics, the same relics noised to step t,
    then each model's estimate of them; every image captioned with its PSNR against x0.

    Shapes: x0, eps (N, C, H, W).
    """
    estimates = {}
    for name, model in models.items():
        x_t, estimates[name] = denoise(model, schedule, x0, eps, t)
    rows = {"clean x0": x0, "noisy x_t": x_t.clamp(-1, 1), **estimates}
    scores = {name: psnr(images, x0).tolist() for name, images in rows.items()}
    captions = {name: [f"{v:.1f} dB" for v in scores[name]] for name in list(rows)[1:]}
    summary = ", ".join(f"{name} {np.mean(scores[name]):.1f} dB" for name in list(rows)[1:])
    return image_rows(rows, captions=captions, title=f"t = {int(t)}: mean PSNR: {summary}")


@torch.no_grad()
def expansion_step(
    model,
    features: dict[str, torch.Tensor],
    level: int,
    t: torch.Tensor,
    y: torch.Tensor | None = None,
    merge=None,
) -> torch.Tensor:
    """Recompute expansion level `level` of a U-Net from its recorded feature maps: take the
    map from below (upsampled unless it is the bottleneck), merge the skip from the same level
    with `merge(from_below, skip)` (default: concatenate along channels), run the level's blocks.

    With the default merge the result equals features[f"up{level}"].

    Shapes: features as returned by `UNet.feature_maps(x, t, y)`; t (B,) -> (B, C_level, H, W).
    """
    levels = len(model.config.channel_mults)
    if not 0 <= level < levels:
        raise ValueError(f"level {level} does not exist; this U-Net has levels 0..{levels - 1}")
    below = features["mid"] if level == levels - 1 else features[f"up{level + 1}"]
    h = below if level == levels - 1 else model.upsample[level](below)  # (B, C_below, H, W)
    if model.config.skip_connections:
        skip = features[f"down{level}"]
        h = merge(h, skip) if merge is not None else torch.cat([h, skip], dim=1)
    c = model.embed_condition(t, y, h.shape[0])  # (B, E)
    for block in model.up[level]:
        h = block(h, c)
    return h


def psnr_curves(
    steps: Sequence[int], curves: dict[str, Sequence[float]], noisy: Sequence[float]
) -> Figure:
    """PSNR against the timestep for each model and for the noisy input (left), and each
    model's gain over the noisy input (right)."""
    fig = Figure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2)
    left.plot(steps, noisy, "k--", marker="o", markersize=3, label="noisy input x_t")
    for name, values in curves.items():
        left.plot(steps, values, marker="o", markersize=4, label=name)
        gain = np.asarray(values) - np.asarray(noisy)
        right.plot(steps, gain, marker="o", markersize=4, label=name)
    right.axhline(0.0, color="k", linewidth=0.8)
    left.set(xlabel="timestep t (more noise to the right)", ylabel="PSNR (dB)")
    left.set_title("quality of the estimate of x0", fontsize=10)
    right.set(xlabel="timestep t", ylabel="gain over the noisy input (dB)")
    right.set_title("noise removed by the network", fontsize=10)
    for ax in (left, right):
        ax.grid(alpha=0.3), ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def receptive_field_view(image: torch.Tensor, fields: dict[str, int]) -> Figure:
    """The relic with, for each level, the square of input pixels that one position at the
    centre of that level's map depends on (squares larger than the image reach past it).

    Shapes: image (3, H, W) in [-1, 1].
    """
    H, W = image.shape[-2:]
    reach = max([H, W, *fields.values()]) / 2 + 1.5  # half-width of the view around the centre
    fig = Figure(figsize=(5.2, 5.4))
    ax = fig.subplots()
    ax.imshow(to_uint8(image[None])[0], extent=(0, W, H, 0))
    cy, cx = H / 2, W / 2
    for k, (name, size) in enumerate(fields.items()):
        colour = LEVEL_COLOURS[k % len(LEVEL_COLOURS)]
        square = Rectangle((cx - size / 2, cy - size / 2), size, size, fill=False, linewidth=2)
        square.set_edgecolor(colour)
        ax.add_patch(square)
        ax.plot([], [], color=colour, linewidth=2, label=f"{name}: {size}x{size} pixels")
    ax.set(xlim=(cx - reach, cx + reach), ylim=(cy + reach, cy - reach), facecolor="0.85")
    ax.set_xticks([]), ax.set_yticks([])
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=len(fields))
    ax.set_title("input pixels seen by one centre position of each level", fontsize=10)
    fig.tight_layout()
    return fig
