"""Multi-head attention, with an explicit path that shows its weights and a fused fast path.

Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V   (Vaswani et al., arXiv 1706.03762, eq. 1).

Each token asks a question (query), advertises what it holds (key) and offers content (value);
the softmax of query-key similarities says how much of each value it takes. Multi-head attention
runs h such lookups side by side on D/h-wide slices and mixes their results with a projection.

The explicit path materialises the (L, L) weight matrix, so notebooks can draw attention maps and
the Gflops counter can see the two attention matmuls; the fast path calls
`F.scaled_dot_product_attention` (fused kernels, no (L, L) matrix kept). Both compute the same
function; tests check they agree.

Taught in notebook 06 (whispers).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

__all__ = [
    "attention_weights",
    "explicit_attention",
    "multihead_attention",
    "Attention",
    "CrossAttention",
    "use_explicit_attention",
]


def attention_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) over the key axis.

    Shapes: q (..., Lq, d), k (..., Lk, d) -> (..., Lq, Lk); each row sums to 1.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    return scores.softmax(dim=-1)


def explicit_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out: returns the output and the weights.

    Shapes: q (..., Lq, d), k, v (..., Lk, d) -> (..., Lq, d), (..., Lq, Lk).
    """
    weights = attention_weights(q, k)
    return weights @ v, weights


def multihead_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, fused: bool = True, weights: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The heads' attention, merged back to one width: the fused kernel
    (`F.scaled_dot_product_attention`) when `fused` and no weights are asked for, else the
    explicit path. Returns (output, weights or None). The one dispatch of `Attention` and
    `CrossAttention`.

    Shapes: q (B, h, Lq, d), k, v (B, h, Lk, d) -> (B, Lq, h * d), weights (B, h, Lq, Lk).
    """
    if weights or not fused:
        out, kept = explicit_attention(q, k, v)
    else:
        out, kept = F.scaled_dot_product_attention(q, k, v), None
    return rearrange(out, "b h l d -> b l (h d)"), kept


class Attention(nn.Module):
    """Multi-head self-attention with the reference keys `qkv` and `proj` (timm layout).

    Set `fused = False` (or use `use_explicit_attention`) to take the explicit path everywhere.

    Shapes: x (B, L, D) -> (B, L, D); with return_weights also weights (B, heads, L, L).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.fused = True
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        qkv = rearrange(self.qkv(x), "b l (three h d) -> b l three h d", three=3, h=self.num_heads)
        # Unbind before moving the heads forward: the backward of this unbind then stacks the
        # q, k, v gradients straight into the (B, L, 3D) layout of qkv, with no extra copy.
        q, k, v = (rearrange(t, "b l h d -> b h l d") for t in qkv.unbind(dim=2))
        out, weights = multihead_attention(q, k, v, self.fused, return_weights)
        out = self.proj(out)
        return (out, weights) if return_weights else out


class CrossAttention(nn.Module):
    """Multi-head attention from tokens x to a context sequence (captions, class tokens).

    Shapes: x (B, L, D), context (B, S, Dc) -> (B, L, D); weights (B, heads, L, S).
    """

    def __init__(self, dim: int, context_dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.fused = True
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(context_dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, return_weights: bool = False):
        q = rearrange(self.q(x), "b l (h d) -> b h l d", h=self.num_heads)
        k, v = rearrange(self.kv(context), "b s (two h d) -> two b h s d", two=2, h=self.num_heads)
        out, weights = multihead_attention(q, k, v, self.fused, return_weights)
        out = self.proj(out)
        return (out, weights) if return_weights else out


@contextlib.contextmanager
def use_explicit_attention(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every attention layer of `model` takes the explicit path."""
    layers = [m for m in model.modules() if isinstance(m, (Attention, CrossAttention))]
    saved = [m.fused for m in layers]
    for m in layers:
        m.fused = False
    try:
        yield model
    finally:
        for m, fused in zip(layers, saved):
            m.fused = fused
