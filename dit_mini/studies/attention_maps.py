"""Looking inside attention: the weight maps of a trained DiT, their cost, a cross-attention toy.

Every self-attention layer of a DiT computes, per head, a matrix of weights
softmax(Q K^T / sqrt(d)) (Vaswani et al., arXiv 1706.03762, eq. 1): row i says how much patch i
takes from every other patch. `attention_maps` records these matrices for every layer while the
model runs unchanged (forward hooks recompute them from each layer's input, so the fused fast
path keeps producing the output). `mean_attention_distance` summarises a map by how far, in
patches, a query looks on average (the measure of Dosovitskiy et al., arXiv 2010.11929, fig. 7).

The cross-attention toy shows the other kind of attention without any training: image patches
(queries) attend to a few colour words (keys and values) through a `CrossAttention` layer whose
weights are set by hand so that each patch listens most to the word whose colour is nearest
its own. The layer's output repaints the image in the words' colours.

The split/merge of heads and the cost formula are the reference solutions of the notebook's
exercises. Taught in notebook 06 (whispers).
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from ..data.relics import RELIC_BACKGROUNDS, RELIC_COLOURS
from ..diffusion.samplers import FLOW_TIME_SCALE
from ..models.attention import Attention, CrossAttention, attention_weights

__all__ = [
    "split_heads",
    "merge_heads",
    "attention_cost",
    "attention_maps",
    "noisy_input",
    "mean_attention_distance",
    "COLOUR_WORDS",
    "word_tokens",
    "patch_colour_tokens",
    "colour_cross_attention",
]

# ---- exercise references: heads and cost ----


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Cut the width into `num_heads` slices, one sequence per head.

    Shapes: (B, L, D) -> (B, heads, L, D / heads).
    """
    if x.shape[-1] % num_heads:
        raise ValueError(f"num_heads {num_heads} must divide the width {x.shape[-1]}")
    return rearrange(x, "b l (h d) -> b h l d", h=num_heads)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Put the heads' slices side by side again (the inverse of `split_heads`).

    Shapes: (B, heads, L, d) -> (B, L, heads * d).
    """
    return rearrange(x, "b h l d -> b l (h d)")


def attention_cost(tokens: int, width: int, num_heads: int) -> dict[str, int]:
    """Size and multiply-adds of one self-attention layer's two matmuls, for one image.

    'weights': entries of the (heads, L, L) weight matrix; 'macs': multiply-adds of Q K^T
    (L * L * d per head) plus weights @ V (the same again), 2 L^2 D in all. The projections
    (qkv, proj) are ordinary linear layers and not counted here.
    """
    if min(tokens, width, num_heads) < 1 or width % num_heads:
        raise ValueError(
            f"need tokens, width, heads >= 1 and heads dividing width; "
            f"got {tokens}, {width}, {num_heads}"
        )
    return {"weights": num_heads * tokens * tokens, "macs": 2 * tokens * tokens * width}


# ---- attention maps of a trained model ----


@torch.no_grad()
def attention_maps(
    model: nn.Module, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
) -> torch.Tensor:
    """The attention weights of every self-attention layer of `model`, in module order.

    The model runs once as usual; a forward hook on each `Attention` layer recomputes
    softmax(Q K^T / sqrt(d)) from that layer's input, so the output is not changed.

    Shapes: x_t (B, C, H, W), t (B,), y (B,) or None -> (B, layers, heads, L, L).
    """
    layers = [m for m in model.modules() if isinstance(m, Attention)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no Attention layers to look into")
    captured: list[torch.Tensor] = []

    def record(layer: Attention, inputs, output) -> None:
        q, k, _ = rearrange(
            layer.qkv(inputs[0]), "b l (three h d) -> three b h l d", three=3, h=layer.num_heads
        )
        captured.append(attention_weights(q, k).float())  # (B, heads, L, L)

    handles = [layer.register_forward_hook(record) for layer in layers]
    try:
        model(x_t, t, y)
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(captured, dim=1)


def noisy_input(
    x0: torch.Tensor, eps: torch.Tensor, level: float, diffusion_config
) -> tuple[torch.Tensor, torch.Tensor]:
    """x_t at noise level `level` in [0, 1] (0 clean, 1 pure noise) and the timestep to feed.

    Flow models: x_t = (1 - t) x0 + t eps with t = level, fed as t * FLOW_TIME_SCALE.
    Discrete schedules: t = round(level * (T - 1)), x_t from `NoiseSchedule.add_noise`.

    Shapes: x0, eps (B, C, H, W) -> x_t (B, C, H, W), t (B,).
    """
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"noise level {level} must lie in [0, 1] (0 clean, 1 pure noise)")
    B = x0.shape[0]
    if diffusion_config.is_flow:
        t = torch.full((B,), level * FLOW_TIME_SCALE, device=x0.device)
        return (1 - level) * x0 + level * eps, t
    step = round(level * (diffusion_config.num_timesteps - 1))
    t = torch.full((B,), step, dtype=torch.long, device=x0.device)
    return diffusion_config.make_schedule().add_noise(x0, eps, t), t


def mean_attention_distance(weights: torch.Tensor, grid_size: int) -> torch.Tensor:
    """How far each query looks, in patches: sum_j w_ij |pos_i - pos_j|, averaged over queries i.

    Shapes: weights (..., L, L) with L = grid_size^2 (row-major grid) -> (...).
    """
    L = weights.shape[-1]
    if L != grid_size**2:
        raise ValueError(f"{L} tokens do not form a {grid_size} x {grid_size} grid")
    rows, cols = torch.meshgrid(torch.arange(grid_size), torch.arange(grid_size), indexing="ij")
    pos = torch.stack([rows.flatten(), cols.flatten()], dim=1).to(weights)  # (L, 2)
    distance = torch.cdist(pos, pos)  # (L, L)
    return (weights * distance).sum(-1).mean(-1)


# ---- cross-attention toy: patches listening to colour words ----


def _rgb(colour) -> tuple[float, ...]:
    return tuple(c / 127.5 - 1.0 for c in colour)


# word -> colour in [-1, 1]: the relic colours, and each background's mean colour
COLOUR_WORDS: dict[str, tuple[float, ...]] = {
    **{name: _rgb(rgb) for name, rgb in RELIC_COLOURS.items()},
    **{
        name: _rgb([(a + b) / 2 for a, b in zip(top, bottom)])
        for name, (top, bottom, _, _) in RELIC_BACKGROUNDS.items()
    },
}


def word_tokens(words: list[str]) -> torch.Tensor:
    """One token per colour word: (r, g, b, -|c|^2 / 2).

    Shapes: S words -> (S, 4).
    """
    unknown = [w for w in words if w not in COLOUR_WORDS]
    if unknown:
        raise ValueError(f"unknown colour words {unknown}; choose from {sorted(COLOUR_WORDS)}")
    rgb = torch.tensor([COLOUR_WORDS[w] for w in words])  # (S, 3)
    return torch.cat([rgb, -0.5 * rgb.square().sum(1, keepdim=True)], dim=1)


def patch_colour_tokens(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """One token per patch: its mean colour and a constant 1, (r, g, b, 1).

    Shapes: (B, 3, H, W) -> (B, L, 4) with L = (H / P)(W / P).
    """
    rgb = rearrange(images, "b c (h p) (w q) -> b (h w) (p q) c", p=patch_size, q=patch_size)
    rgb = rgb.mean(2)  # (B, L, 3)
    return torch.cat([rgb, torch.ones_like(rgb[..., :1])], dim=-1)


@torch.no_grad()
def colour_cross_attention(sharpness: float = 8.0) -> CrossAttention:
    """A one-head `CrossAttention` from patch tokens to word tokens, weights set by hand.

    With q = s * patch token and k = s * word token, q . k / sqrt(4) equals
    -(s^2 / 4) |patch colour - word colour|^2 plus a term that is the same for every word, so
    the softmax favours the nearest colour; s^2 / 4 = `sharpness`. The values are the words'
    colours, so the output (its first 3 channels) repaints each patch in its words' colours.
    """
    if not sharpness > 0:
        raise ValueError(f"sharpness must be positive; got {sharpness}")
    layer = CrossAttention(dim=4, context_dim=4, num_heads=1)
    s, eye = 2.0 * math.sqrt(sharpness), torch.eye(4)
    value = torch.diag(torch.tensor([1.0, 1.0, 1.0, 0.0]))  # keep the colour, drop the last entry
    layer.q.weight.copy_(s * eye)
    layer.kv.weight.copy_(torch.cat([s * eye, value]))  # (8, 4): keys, then values
    layer.proj.weight.copy_(eye)
    for linear in (layer.q, layer.kv, layer.proj):
        linear.bias.zero_()
    return layer.eval()
