"""Gflops: the cost of one forward pass, counted the way the DiT paper counts it.

The DiT paper (Peebles & Xie, arXiv 2212.09748, Table 4 and Fig. 8) measures model cost in
"Gflops": billions of multiply-adds in one forward pass of one image, attention matmuls (Q K^T
and the weighted sum of V) included. Its finding is that sample quality follows these Gflops,
whether they come from a deeper or wider network or from more tokens (a smaller patch size).

The counts here are taken from the real module, not from a formula: the model runs once under
`torch.utils.flop_counter.FlopCounterMode`, which sees every matmul and convolution. That counter
reports 2 flops per multiply-add, so the result is halved. The attention layers are switched to
their explicit path while counting, because the counter does not see the fused CPU kernel. The
pass runs on the 'meta' device (shapes only, no arithmetic, no memory), so even DiT-XL/2 costs
milliseconds to count.

Taught in notebook 09 (DPS); notebook 07 uses it to compare DiT and U-Net at equal cost.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import math
from dataclasses import replace

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

from ..models.attention import use_explicit_attention
from ..models.dit import DIT_PRESETS, DiT, DiTConfig, dit_config
from ..models.unet import UNET_PRESETS, UNet, UNetConfig, unet_config

__all__ = [
    "attention_gflops",
    "block_cost_parts",
    "block_gflops",
    "PAPER_TABLE4",
    "PAPER_SETTING",
    "count_params",
    "count_gflops_by_op",
    "count_gflops",
    "gflops_report",
    "format_table",
    "unet_matching_gflops",
]

FLOPS_PER_MAC = 2  # FlopCounterMode counts a multiply-add as two flops; the paper as one

# DiT paper (arXiv 2212.09748), Table 4: name -> (params in millions, Gflops as multiply-adds).
PAPER_TABLE4: dict[str, tuple[float, float]] = {
    "DiT-S/8": (33.1, 0.36),
    "DiT-S/4": (32.9, 1.41),
    "DiT-S/2": (33.0, 6.06),
    "DiT-B/8": (130.9, 1.42),
    "DiT-B/4": (130.5, 5.56),
    "DiT-B/2": (130.5, 23.01),
    "DiT-L/8": (458.6, 5.01),
    "DiT-L/4": (458.1, 19.70),
    "DiT-L/2": (458.1, 80.71),
    "DiT-XL/8": (675.7, 7.39),
    "DiT-XL/4": (675.1, 29.05),
    "DiT-XL/2": (675.1, 118.64),
}

# The setting of those numbers: 32x32x4 SD-VAE latents of 256x256 ImageNet images, 1000 classes,
# learned variance (twice the output channels).
PAPER_SETTING = dict(input_size=32, in_channels=4, num_classes=1000, learn_sigma=True)


def count_params(model: nn.Module) -> int:
    """Number of parameters, trainable or not (DiT's fixed pos_embed counts, as in the paper)."""
    return sum(p.numel() for p in model.parameters())


def _input_shape(model: nn.Module, input_shape) -> tuple[int, int, int]:
    if input_shape is not None:
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W); got {tuple(input_shape)}")
        return tuple(int(s) for s in input_shape)
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "input_size"):
        raise ValueError(
            f"{type(model).__name__} has no .config with input_size and in_channels; "
            "pass input_shape=(C, H, W)"
        )
    return (config.in_channels, config.input_size, config.input_size)


def _flops_by_op(model: nn.Module, shape, batch: int, device: torch.device) -> dict[str, int]:
    """Run one forward pass under FlopCounterMode on `device` and return flops per aten op."""
    # 1. Stand-ins for the weights: meta tensors of the same shapes, or the weights themselves.
    named = itertools.chain(model.named_parameters(), model.named_buffers())
    on_meta = device.type == "meta"
    tensors = {k: torch.empty_like(v, device=device) if on_meta else v for k, v in named}
    dtype = next((v.dtype for v in tensors.values() if v.is_floating_point()), torch.float32)
    # 2. A batch of zeros with time 0 and label 0 (the cost does not depend on the values).
    x = torch.zeros(batch, *shape, dtype=dtype, device=device)
    t = torch.zeros(batch, device=device)
    has_labels = getattr(getattr(model, "config", None), "num_classes", 0) > 0
    y = torch.zeros(batch, dtype=torch.long, device=device) if has_labels else None
    # 3. One forward pass with explicit attention, every matmul and convolution counted.
    with use_explicit_attention(model), torch.no_grad(), FlopCounterMode(display=False) as counter:
        functional_call(model, tensors, (x, t, y))
    return {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}


def count_gflops_by_op(
    model: nn.Module, input_shape: tuple[int, int, int] | None = None, batch: int = 1
) -> dict[str, float]:
    """Multiply-adds per image in billions, split by aten op ('aten.addmm' linear layers,
    'aten.convolution', 'aten.bmm' attention matmuls, ...).

    The pass runs on meta stand-ins of the weights; a model that cannot run on 'meta' is run
    once for real on a batch of zeros on its own device.

    Shapes: input_shape (C, H, W); default (in_channels, input_size, input_size) of model.config.
    """
    if batch < 1:
        raise ValueError(f"batch must be a positive integer; got {batch}")
    shape = _input_shape(model, input_shape)
    try:
        flops = _flops_by_op(model, shape, batch, torch.device("meta"))
    except (NotImplementedError, RuntimeError):
        device = next(itertools.chain(model.parameters(), [torch.zeros(())])).device
        flops = _flops_by_op(model, shape, batch, device)
    return {op: n / FLOPS_PER_MAC / batch / 1e9 for op, n in flops.items()}


def count_gflops(
    model: nn.Module, input_shape: tuple[int, int, int] | None = None, batch: int = 1
) -> float:
    """Gflops in the DiT paper's convention: forward-pass multiply-adds per image, in billions.

    The model's attention flags, weights and mode are left as they were.

    Shapes: input_shape (C, H, W); default (in_channels, input_size, input_size) of model.config.
    """
    return sum(count_gflops_by_op(model, input_shape, batch).values())


def unet_matching_gflops(
    target_gflops: float, preset: str = "unet-tiny", max_base_channels: int = 512, **overrides
) -> UNetConfig:
    """The preset with the base_channels whose Gflops come closest to `target_gflops`.

    Candidates are multiples of lcm(8, norm_groups), so every GroupNorm divides its width.
    Notebook 07 uses it to race a U-Net against a DiT of equal cost:
    `unet_matching_gflops(count_gflops(dit))`.
    """
    if not target_gflops > 0:
        raise ValueError(f"target_gflops must be positive; got {target_gflops}")
    if "base_channels" in overrides:
        raise ValueError("base_channels is what unet_matching_gflops chooses; do not pass it")
    base = unet_config(preset, **overrides)
    step = math.lcm(8, base.norm_groups, base.num_heads if base.attention else 1)
    sizes = list(range(step, max_base_channels + 1, step))

    @functools.cache
    def gflops(i: int) -> float:
        with torch.device("meta"):  # shapes only: nothing is allocated or computed
            model = UNet(replace(base, base_channels=sizes[i]))
        return count_gflops(model)

    # 1. Gflops grow with the width: bisect for the first candidate at or above the target.
    lo, hi = 0, len(sizes) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if gflops(mid) < target_gflops else (lo, mid)
    # 2. Keep whichever of it and its smaller neighbour lands closer.
    best = min({max(lo - 1, 0), lo}, key=lambda i: abs(gflops(i) - target_gflops))
    return replace(base, base_channels=sizes[best])


def _build(config: DiTConfig | UNetConfig) -> nn.Module:
    cls = DiT if isinstance(config, DiTConfig) else UNet
    with torch.device("meta"):  # shapes only: DiT-XL/2 would take 2.7 GB in float32
        return cls(config)


def _resolve(spec, overrides: dict) -> tuple[str, nn.Module]:
    """Turn a preset name, a config or a model into (name, model)."""
    if isinstance(spec, nn.Module):
        if overrides:
            raise ValueError(f"config overrides {sorted(overrides)} need a name or a config")
        return type(spec).__name__, spec
    if isinstance(spec, (DiTConfig, UNetConfig)):
        return type(spec).__name__.removesuffix("Config"), _build(replace(spec, **overrides))
    if isinstance(spec, str) and spec in DIT_PRESETS:
        setting = PAPER_SETTING if spec in PAPER_TABLE4 else {}
        return spec, _build(dit_config(spec, **{**setting, **overrides}))
    if isinstance(spec, str) and spec in UNET_PRESETS:
        return spec, _build(unet_config(spec, **overrides))
    known = [*DIT_PRESETS, *UNET_PRESETS]
    close = difflib.get_close_matches(str(spec), known, n=3, cutoff=0.3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"cannot measure {spec!r}{hint} Pass a model, a DiTConfig or UNetConfig, or a preset "
        f"name among {known}"
    )


def gflops_report(
    spec: str | DiTConfig | UNetConfig | nn.Module, name: str | None = None, **overrides
) -> dict:
    """Cost of a preset name ('DiT-XL/2', 'tiny', 'unet-tiny'), a config or a model.

    Paper presets are measured in the paper's setting (`PAPER_SETTING`: 32x32x4 latents, 1000
    classes, learned sigma) unless overridden, and then carry the paper's numbers
    ('paper_gflops', 'paper_params_M') for comparison. Keyword arguments override config fields.

    Returns a dict with 'name', 'model', 'gflops', 'params', 'params_M', 'input_size',
    'in_channels', 'out_channels', 'tokens' (DiT patches, None for a U-Net) and 'patch_size'.
    """
    label, model = _resolve(spec, overrides)
    config = getattr(model, "config", None)
    report = {
        "name": name or label,
        "model": type(model).__name__,
        "gflops": count_gflops(model),
        "params": count_params(model),
        "input_size": getattr(config, "input_size", None),
        "in_channels": getattr(model, "in_channels", None),
        "out_channels": getattr(model, "out_channels", None),
        "tokens": getattr(config, "num_patches", None),
        "patch_size": getattr(config, "patch_size", None),
    }
    report["params_M"] = report["params"] / 1e6
    paper = PAPER_TABLE4.get(spec) if isinstance(spec, str) else None
    if paper and config == dit_config(spec, **PAPER_SETTING):
        report["paper_params_M"], report["paper_gflops"] = paper
    return report


def format_table(reports: list[dict]) -> str:
    """A fixed-width text table of `gflops_report` dicts, with the paper's columns if known."""
    paper = any("paper_gflops" in r for r in reports)
    w = max([len("model"), *(len(str(r["name"])) for r in reports)])
    head = f"{'model':<{w}} {'params (M)':>11} {'Gflops':>9} {'tokens':>6}"
    head += f" {'paper params':>12} {'paper Gflops':>12}" if paper else ""
    lines = [head, "-" * len(head)]
    for r in reports:
        tokens = "-" if r.get("tokens") is None else str(r["tokens"])
        line = f"{r['name']:<{w}} {r['params_M']:>11.2f} {r['gflops']:>9.3f} {tokens:>6}"
        if paper:
            p_params, p_gflops = r.get("paper_params_M"), r.get("paper_gflops")
            line += f" {p_params:>12.1f} {p_gflops:>12.2f}" if p_gflops else f" {'':>12} {'':>12}"
        lines.append(line.rstrip())
    return "\n".join(lines)


# ----- the same counts by hand (the formulas notebook 09 teaches) -----


def attention_gflops(tokens: int, width: int) -> float:
    """Multiply-adds (billions) of the two attention matmuls of one block: Q K^T (L x L scores,
    each a dot product of length D) and the weighted sum of V (the same count): 2 L^2 D."""
    return 2 * tokens**2 * width / 1e9


def block_cost_parts(tokens: int, width: int, mlp_ratio: float = 4.0) -> dict[str, float]:
    """Multiply-adds (billions) of one DiT block on L tokens of width D, part by part, as the paper
    counts them: 'projections' (QKV 3 L D^2 and output L D^2), 'attention' (2 L^2 D), 'mlp'
    (two layers, 2 L D (mlp_ratio D)) and 'adaln' (one 6D-wide map of the conditioning vector,
    6 D^2, once per image rather than per token)."""
    hidden = int(width * mlp_ratio)
    return {
        "projections": 4 * tokens * width**2 / 1e9,
        "attention": attention_gflops(tokens, width),
        "mlp": 2 * tokens * width * hidden / 1e9,
        "adaln": 6 * width**2 / 1e9,
    }


def block_gflops(tokens: int, width: int, mlp_ratio: float = 4.0) -> float:
    """Multiply-adds (billions) of one DiT block: the sum of `block_cost_parts`,
    4 L D^2 + 2 L^2 D + 2 mlp_ratio L D^2 + 6 D^2."""
    return sum(block_cost_parts(tokens, width, mlp_ratio).values())
