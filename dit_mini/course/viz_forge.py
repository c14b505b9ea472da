"""Costs and pictures of latent diffusion against pixel diffusion, for notebook 11 (forge).

Latent diffusion (Rombach et al., arXiv 2112.10752, sec. 3) trains the denoiser on the latents
z = s E(x) of an autoencoder instead of on pixels x, and decodes a finished latent once,
x = D(z / s). A DiT on latents (Peebles & Xie, arXiv 2212.09748, sec. 3.1) cuts the latent grid
into patches exactly as it cuts an image, so the saving shows up as fewer tokens: the attention
matmuls grow with the square of the token count, the rest of the block linearly.

This module measures those costs with the flop counter of `dit_mini.metrics.flops` (tokens
and attention Gflops of a DiT, the VAE's encoder and decoder, the sampling cost of a whole sample,
a sweep over image sizes), times training steps, decodes a latent sampling path into pixels, and
draws the figures. Every picture is a `matplotlib.figure.Figure` built without pyplot, like
`dit_mini.course.widgets`, so the notebook's slider only wires controls to `forge_view`.

Taught in notebook 11 (forge).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence

import torch
from matplotlib.figure import Figure
from torch.utils.flop_counter import FlopCounterMode

from ..metrics.flops import FLOPS_PER_MAC, count_gflops, count_gflops_by_op
from ..models.dit import DiT, dit_config
from ..models.vae import VAE
from ..studies.bench import time_call
from .viz_sampling import SamplingPath
from .widgets import image_rows

__all__ = [
    "ATTENTION_OP",
    "attention_cost",
    "vae_gflops",
    "sampling_gflops",
    "size_sweep",
    "size_sweep_figure",
    "training_rate",
    "decode_path",
    "forge_view",
]

ATTENTION_OP = "aten.bmm"  # the counter's name for the Q K^T and weights-times-V matmuls
LATENT_RANGE = 2.5  # latent channels are drawn from -2.5 to +2.5 std (as in notebook 10)


def _meta_dit(image_size: int, patch_size: int, in_channels: int, preset: str, **overrides) -> DiT:
    """A DiT preset on the 'meta' device (shapes only), for an input of the given size."""
    config = dit_config(
        preset, input_size=image_size, patch_size=patch_size, in_channels=in_channels, **overrides
    )
    with torch.device("meta"):
        return DiT(config)


def attention_cost(
    image_size: int, patch_size: int, hidden_size: int = 192, depth: int = 6
) -> tuple[int, float]:
    """Tokens of a DiT on a square input and the Gflops (multiply-adds, billions) of its
    attention matmuls, read from the flop counter on a meta model of that width and depth.

    Shapes: an input (C, image_size, image_size) -> L = (image_size / patch_size)^2 tokens.
    """
    heads = 3 if hidden_size % 3 == 0 else 1  # the cost does not depend on the head count
    model = _meta_dit(
        image_size, patch_size, 3, "tiny", hidden_size=hidden_size, depth=depth, num_heads=heads
    )
    gflops = count_gflops_by_op(model).get(ATTENTION_OP, 0.0)
    return model.config.num_patches, gflops


def vae_gflops(vae: VAE) -> dict[str, float]:
    """Gflops (multiply-adds, billions) of one image through the VAE's encoder and decoder.

    Shapes: encoder (1, C, H, W) -> (1, 2 C_z, h, w); decoder (1, C_z, h, w) -> (1, C, H, W).
    """
    config = vae.config
    param = next(vae.parameters())
    inputs = {
        "encoder": torch.zeros(1, config.in_channels, config.input_size, config.input_size),
        "decoder": torch.zeros(1, *config.latent_shape),
    }
    out = {}
    for part, x in inputs.items():
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            getattr(vae, part)(x.to(param))
        out[part] = counter.get_total_flops() / FLOPS_PER_MAC / 1e9
    return out


def sampling_gflops(
    model: torch.nn.Module, steps: int, guidance: bool = True, decoder_gflops: float = 0.0
) -> float:
    """Gflops of one finished sample: `steps` network passes (two each with classifier-free
    guidance, the conditional and the null-class pass), plus one decoder pass for a latent model.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    return steps * (2 if guidance else 1) * count_gflops(model) + decoder_gflops


def size_sweep(
    sizes: Sequence[int], patch_size: int = 2, factor: int = 8, latent_channels: int = 4,
    preset: str = "tiny",
) -> list[dict]:  # fmt: skip
    """Gflops per forward pass of a DiT preset on pixels (size x size x 3) and on the latents
    of a VAE with downsample factor `factor` ((size / factor)^2 x latent_channels), same patch.

    Returns one dict per size: 'size', 'pixel_tokens', 'pixel_gflops', 'latent_tokens',
    'latent_gflops'.
    """
    rows = []
    for size in sizes:
        if size % (factor * patch_size):
            raise ValueError(
                f"size {size} must be divisible by factor x patch = {factor * patch_size}"
            )
        pixel = _meta_dit(size, patch_size, 3, preset)
        latent = _meta_dit(size // factor, patch_size, latent_channels, preset)
        rows.append({
            "size": size,
            "pixel_tokens": pixel.config.num_patches,
            "pixel_gflops": count_gflops(pixel),
            "latent_tokens": latent.config.num_patches,
            "latent_gflops": count_gflops(latent),
        })  # fmt: skip
    return rows


def size_sweep_figure(rows: Sequence[Mapping[str, float]], title: str | None = None) -> Figure:
    """Gflops per forward pass against image side, pixel and latent DiT, log-log, each point
    labelled with its token count; the ratio pixel / latent is printed at the largest size."""
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    sizes = [r["size"] for r in rows]
    for kind, colour in (("pixel", "tab:orange"), ("latent", "tab:blue")):
        gflops = [r[f"{kind}_gflops"] for r in rows]
        ax.plot(sizes, gflops, "o-", color=colour, label=f"{kind} DiT")
        for s, g, r in zip(sizes, gflops, rows):
            ax.annotate(f"{r[f'{kind}_tokens']} tok", (s, g), textcoords="offset points",
                        xytext=(4, -12 if kind == "latent" else 6), fontsize=8)  # fmt: skip
    last = rows[-1]
    ratio = last["pixel_gflops"] / last["latent_gflops"]
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sizes, [f"{s}x{s}" for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("image size (pixels)")
    ax.set_ylabel("Gflops per forward pass (multiply-adds)")
    ax.set_title(title or f"pixel / latent = {ratio:.0f}x at {last['size']}x{last['size']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def training_rate(
    model: torch.nn.Module,
    loss_fn: Callable,
    x0: torch.Tensor,
    y: torch.Tensor | None = None,
    seconds: float = 1.0,
    windows: int = 2,
    generator: torch.Generator | None = None,
) -> float:
    """Training images per second: forward, `loss_fn(model, x0, y, generator)`, backward and an
    AdamW step on the batch x0, the median over `windows` timed windows after one warm-up step.

    The model's weights change (it trains); pass a copy to keep them. Shapes: x0 (B, C, H, W).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    model.train()

    def step() -> None:
        loss = loss_fn(model, x0, y, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    per_step = time_call(step, x0.device, seconds, windows, warmup=1)
    return len(x0) / statistics.median(per_step)


def decode_path(path: SamplingPath, decode: Callable[[torch.Tensor], torch.Tensor]) -> SamplingPath:
    """A latent sampling path with every frame (held x_t and x0 guess) decoded into pixels.

    Shapes: x_t, x0_hat (S, B, C_z, h, w) -> (S, B, C, H, W), clamped to [-1, 1].
    """
    S, B = path.x_t.shape[:2]
    with torch.no_grad():
        frames = decode(torch.cat([path.x_t.flatten(0, 1), path.x0_hat.flatten(0, 1)]))
    frames = frames.clamp(-1, 1).unflatten(0, (2 * S, B))  # (2S, B, C, H, W)
    return SamplingPath(f"{path.kind}, decoded", list(path.times), frames[:S], frames[S:])


def forge_view(
    latent: SamplingPath,
    decoded: SamplingPath,
    index: int,
    pixel: SamplingPath | None = None,
    columns: Sequence[str] | None = None,
) -> Figure:
    """Frame `index` of a latent sampling path: the four latent channels held at that step (from
    -2.5 to +2.5 std), the decoded x_t and the decoded x0 guess; below them, optionally, the
    pixel model's x_t and x0 guess at the same frame. One column per sample.

    Shapes: latent (S, B, C_z, h, w); decoded and pixel (S, B, C, H, W).
    """
    if not 0 <= index < len(latent) or len(decoded) != len(latent):
        raise ValueError(f"index {index} is outside the path's {len(latent)} frames")
    if pixel is not None and len(pixel) != len(latent):
        raise ValueError(f"pixel path has {len(pixel)} frames, latent path {len(latent)}")
    z = latent.x_t[index]  # (B, C_z, h, w)
    rows = {
        f"latent ch {c}": (z[:, c : c + 1] / LATENT_RANGE).clamp(-1, 1) for c in range(z.shape[1])
    }
    rows["decoded\nx_t"] = decoded.x_t[index]
    rows["decoded\nx0 guess"] = decoded.x0_hat[index]
    if pixel is not None:
        rows["pixel DiT\nx_t"] = pixel.x_t[index].clamp(-1, 1)
        rows["pixel DiT\nx0 guess"] = pixel.x0_hat[index].clamp(-1, 1)
    title = f"frame {index} of {len(latent) - 1}: {latent.times[index]}"
    return image_rows(rows, columns, title=title, panel=1.05)
