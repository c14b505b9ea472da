"""Embeddings that turn pictures, timesteps and labels into vectors a transformer can read.

- Patch embedding: a convolution with kernel = stride = p cuts the image into p x p patches and
  projects each to a D-dimensional token (ViT, Dosovitskiy et al., arXiv 2010.11929, eq. 1).
- Fixed 2-D sin-cos position embedding (MAE, He et al., arXiv 2111.06377), laid out as the
  reference DiT does: the first D/2 channels encode the column, the second D/2 the row.
- Sinusoidal timestep embedding followed by an MLP (DiT, Peebles & Xie, arXiv 2212.09748, sec. 3.2).
- Label embedding with an extra "null" row for classifier-free guidance (Ho & Salimans,
  arXiv 2207.12598): during training a label is replaced by the null class with probability
  `class_dropout_prob` (`drop_labels`, `LabelEmbedder.token_drop`).

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
    "drop_labels",
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


def drop_labels(
    y: torch.Tensor, p: float, null_class: int | None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Replace each label by `null_class` with probability p (training for guidance).

    The draws come from `generator` (on its device), so a run that seeds it repeats exactly.

    Shapes: y (B,) -> (B,).
    """
    if p <= 0:
        return y
    if null_class is None:
        raise ValueError(
            f"label dropout p={p} needs a model with a null class; "
            "build it with class_dropout_prob > 0"
        )
    device = generator.device if generator is not None else y.device
    drop = torch.rand(y.shape[0], generator=generator, device=device).to(y.device) < p
    return torch.where(drop, torch.full_like(y, null_class), y)


class LabelEmbedder(nn.Module):
    """Class labels to vectors, with label dropout; row `num_classes` is the null class used
    for guidance (it exists when `class_dropout_prob` > 0).

    As the reference DiT's embedder, `forward(labels, train)` replaces each label by the null
    class with probability `class_dropout_prob` when `train` is True (`token_drop`), and
    `force_drop_ids` (1 = drop) replaces chosen labels. The package's DiT and U-Net call it with
    train=False: the trainer drops the labels before the model, from its own seeded generator
    (`dit_mini.train.session`), so a model stays a deterministic function of (x_t, t, y) and a
    run resumes bit for bit.

    Shapes: labels (B,) -> (B, D).
    """

    def __init__(self, num_classes: int, hidden_size: int, class_dropout_prob: float):
        super().__init__()
        self.num_classes = num_classes
        self.class_dropout_prob = class_dropout_prob
        use_null = class_dropout_prob > 0
        self.embedding_table = nn.Embedding(num_classes + int(use_null), hidden_size)

    @property
    def null_class(self) -> int | None:
        return self.num_classes if self.class_dropout_prob > 0 else None

    def token_drop(
        self,
        labels: torch.Tensor,
        force_drop_ids: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Labels with some replaced by the null class: those where `force_drop_ids` is 1, or
        (without it) each with probability `class_dropout_prob`. Shapes: (B,) -> (B,)."""
        if force_drop_ids is None:
            return drop_labels(labels, self.class_dropout_prob, self.null_class, generator)
        if self.null_class is None:
            raise ValueError(
                "force_drop_ids needs a null class; build the embedder with class_dropout_prob > 0"
            )
        return torch.where(force_drop_ids.to(labels.device) == 1, self.null_class, labels)

    def forward(
        self,
        labels: torch.Tensor,
        train: bool = False,
        force_drop_ids: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        if (train and self.class_dropout_prob > 0) or force_drop_ids is not None:
            labels = self.token_drop(labels, force_drop_ids, generator)
        return self.embedding_table(labels)
