"""Embeddings that turn pictures, timesteps and labels into vectors a transformer can read.

- Patch embedding: a convolution with kernel = stride = p cuts the image into p x p patches and
  projects each to a D-dimensional token (ViT, Dosovitskiy et al., arXiv 2010.11929, eq. 1).
- Fixed 2-D sin-cos position embedding (MAE, He et al., arXiv 2111.06377), laid out as the
  reference DiT does: the first D/2 channels encode the column, the second D/2 the row.
- Sinusoidal timestep embedding followed by an MLP (DiT, Peebles & Xie, arXiv 2212.09748, sec. 3.2).
- Label embedding with an extra "null" row for classifier-free guidance (Ho & Salimans,
  arXiv 2207.12598): during training a label is replaced by the null class with probability p.

Taught in notebooks 05 (mystic lens) and 07 (legendary gear).
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

__all__ = [
    "FREQUENCY_EMBEDDING_SIZE",
    "MAX_PERIOD",
    "sincos_1d",
    "sincos_2d",
    "timestep_embedding",
    "PatchEmbed",
    "TimestepEmbedder",
    "LabelEmbedder",
]

FREQUENCY_EMBEDDING_SIZE = 256  # reference DiT's t_embedder input width
MAX_PERIOD = 10000.0  # "Attention is all you need", sec. 3.5


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """[sin, cos] embedding of positions with frequencies 1 / 10000^(2i/dim), sin first.

    Shapes: positions (L,) -> (L, dim).
    """
    if dim % 2:
        raise ValueError(f"sin-cos embedding width must be even; got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / MAX_PERIOD**omega  # (dim/2,)
    out = positions.double()[:, None] * omega[None]  # (L, dim/2)
    return torch.cat([out.sin(), out.cos()], dim=1)


def sincos_2d(dim: int, grid_h: int, grid_w: int | None = None) -> torch.Tensor:
    """Fixed 2-D position embedding of a row-major grid of tokens, float32.

    Channels [0, dim/2) encode the column index w, channels [dim/2, dim) the row index h.

    Shapes: -> (grid_h * grid_w, dim).
    """
    grid_w = grid_h if grid_w is None else grid_w
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding width must be divisible by 4; got {dim}")
    rows, cols = torch.meshgrid(
        torch.arange(grid_h, dtype=torch.float64),
        torch.arange(grid_w, dtype=torch.float64),
        indexing="ij",
    )  # (h, w) each
    emb_w = sincos_1d(dim // 2, cols.flatten())  # (L, dim/2)
    emb_h = sincos_1d(dim // 2, rows.flatten())  # (L, dim/2)
    return torch.cat([emb_w, emb_h], dim=1).float()  # (L, dim)


def timestep_embedding(
    t: torch.Tensor, dim: int = FREQUENCY_EMBEDDING_SIZE, max_period: float = MAX_PERIOD
) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, cos first as in the reference.

    Shapes: t (B,) -> (B, dim).
    """
    half = dim // 2
    k = torch.arange(half, dtype=torch.float32, device=t.device)
    freqs = torch.exp(-math.log(max_period) * k / half)  # (half,)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([args.cos(), args.sin()], dim=-1)  # (B, 2 * half)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class PatchEmbed(nn.Module):
    """Cut (B, C, H, W) into p x p patches and project each to a D-wide token.

    Shapes: (B, C, H, W) -> (B, L, D) with L = (H/p)(W/p), tokens row-major over the patch grid.
    """

    def __init__(self, patch_size: int, in_channels: int, hidden_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, hidden_size, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The view is channel-major in memory; one copy here keeps the residual stream contiguous,
        # else every LayerNorm, linear layer and residual add downstream pays for the strides.
        return rearrange(self.proj(x), "b d h w -> b (h w) d").contiguous()


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of t, then Linear-SiLU-Linear (keys mlp.0 and mlp.2 as in the reference).

    Shapes: t (B,) -> (B, D).
    """

    def __init__(self, hidden_size: int, frequency_size: int = FREQUENCY_EMBEDDING_SIZE):
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_size, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        freq = timestep_embedding(t, self.frequency_size).to(self.mlp[0].weight.dtype)
        return self.mlp(freq)


class LabelEmbedder(nn.Module):
    """Class labels to vectors; row `num_classes` is the null class used for guidance.

    Label dropout is applied by the trainer (see `drop_labels`) rather than hidden inside
    forward, so the model itself stays a deterministic function of (x_t, t, y).

    Shapes: y (B,) -> (B, D).
    """

    def __init__(self, num_classes: int, hidden_size: int, dropout_prob: float):
        super().__init__()
        self.num_classes = num_classes
        self.dropout_prob = dropout_prob
        use_null = dropout_prob > 0
        self.embedding_table = nn.Embedding(num_classes + int(use_null), hidden_size)

    @property
    def null_class(self) -> int | None:
        return self.num_classes if self.dropout_prob > 0 else None

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(y)
