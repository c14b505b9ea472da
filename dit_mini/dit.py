"""The Diffusion Transformer (DiT) of Peebles & Xie, arXiv 2212.09748.

An image x_t is cut into p x p patches (tokens), position-embedded, and passed through N
transformer blocks whose LayerNorms are modulated by the conditioning vector c = emb(t) + emb(y)
(adaptive LayerNorm). In adaLN-Zero every residual branch is also multiplied by a learned gate
that starts at zero, so each block starts as the identity and the whole network outputs zeros
at initialisation (paper, sec. 3.2). A final adaLN layer maps each token back to a p x p x C_out
patch, and the patches are put back together ("unpatchify").

The parameter names and shapes follow the reference implementation, so its state_dicts load with
`strict=True` (see `tests/test_dit.py`).

Taught in notebooks 05 (mystic lens), 06 (whispers) and 07 (legendary gear).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

import torch
from einops import rearrange
from torch import nn

from .attention import Attention
from .embeddings import LabelEmbedder, PatchEmbed, TimestepEmbedder, sincos_2d

__all__ = [
    "modulate",
    "patchify",
    "unpatchify",
    "Mlp",
    "DiTBlock",
    "FinalLayer",
    "DiTConfig",
    "DiT",
    "DIT_PRESETS",
    "dit_config",
]

LAYERNORM_EPS = 1e-6  # reference DiT


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: x * (1 + scale) + shift, one (shift, scale) pair per sample.

    Shapes: x (B, L, D), shift, scale (B, D) -> (B, L, D).
    """
    return x * (1 + scale[:, None]) + shift[:, None]


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into flattened patches, row-major over the grid, each ordered (p_row, p_col, c).

    Shapes: (B, C, H, W) -> (B, L, P*P*C) with L = (H/P)(W/P).
    """
    _check_divisible(x.shape[-2:], patch_size)
    return rearrange(x, "b c (h p) (w q) -> b (h w) (p q c)", p=patch_size, q=patch_size)


def unpatchify(tokens: torch.Tensor, patch_size: int, channels: int, grid_h: int | None = None):
    """Inverse of `patchify`: put flattened patches back into images (square grid by default).

    Shapes: (B, L, P*P*C) -> (B, C, H, W).
    """
    grid_h = grid_h or int(round(tokens.shape[1] ** 0.5))
    return rearrange(
        tokens,
        "b (h w) (p q c) -> b c (h p) (w q)",
        h=grid_h,
        p=patch_size,
        q=patch_size,
        c=channels,
    )


def _check_divisible(size, patch_size: int) -> None:
    for s in size:
        if s % patch_size:
            raise ValueError(
                f"patch size {patch_size} must divide the image size {tuple(size)}; "
                f"pick a patch size among the divisors of {s}"
            )


class Mlp(nn.Module):
    """Token-wise feed-forward network fc1 -> GELU(tanh) -> fc2 (keys as in timm's Mlp).

    Shapes: (B, L, D) -> (B, L, D).
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DiTBlock(nn.Module):
    """Transformer block with adaLN-Zero conditioning.

    Shapes: x (B, L, D), c (B, D) -> (B, L, D).
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=LAYERNORM_EPS)
        self.attn = Attention(hidden_size, num_heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=LAYERNORM_EPS)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # 1. Six (B, D) modulation vectors from the conditioning, in the reference's order.
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(
            c
        ).chunk(6, dim=1)
        # 2. Gated attention branch, then gated MLP branch (gates start at zero: identity block).
        x = x + gate_msa[:, None] * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + gate_mlp[:, None] * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    """adaLN-modulated LayerNorm and a linear map from each token to a P*P*C_out patch.

    Shapes: x (B, L, D), c (B, D) -> (B, L, P*P*C_out).
    """

    def __init__(self, hidden_size: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=LAYERNORM_EPS)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


@dataclass(frozen=True)
class DiTConfig:
    """Everything that defines a DiT's architecture (not its training)."""

    input_size: int = 32
    patch_size: int = 4
    in_channels: int = 3
    hidden_size: int = 192
    depth: int = 6
    num_heads: int = 3
    mlp_ratio: float = 4.0
    num_classes: int = 10
    class_dropout_prob: float = 0.1
    learn_sigma: bool = False

    def __post_init__(self):
        for name in (
            "input_size",
            "patch_size",
            "in_channels",
            "hidden_size",
            "depth",
            "num_heads",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer; got {getattr(self, name)}")
        n = self.input_size
        if n % self.patch_size:
            raise ValueError(
                f"patch_size {self.patch_size} must divide input_size {self.input_size}; "
                f"valid patch sizes: {[p for p in range(1, n + 1) if n % p == 0]}"
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"num_heads {self.num_heads} must divide hidden_size {self.hidden_size} "
                "(each head gets hidden_size / num_heads channels)"
            )
        if self.hidden_size % 4:
            raise ValueError(
                f"hidden_size must be divisible by 4 for the 2-D sin-cos position embedding; "
                f"got {self.hidden_size}"
            )
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0; got {self.num_classes}")
        if not 0.0 <= self.class_dropout_prob < 1.0:
            raise ValueError(
                f"class_dropout_prob must lie in [0, 1); got {self.class_dropout_prob}"
            )
        if self.mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be positive; got {self.mlp_ratio}")

    @property
    def out_channels(self) -> int:
        return 2 * self.in_channels if self.learn_sigma else self.in_channels

    @property
    def grid_size(self) -> int:
        return self.input_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2

    @property
    def null_class(self) -> int | None:
        """Label id of the 'no class' token used by classifier-free guidance, if any."""
        return self.num_classes if self.class_dropout_prob > 0 and self.num_classes > 0 else None


class DiT(nn.Module):
    """Diffusion Transformer with adaLN-Zero blocks, reference state-dict layout.

    Model contract: forward(x_t, t, y) with x_t (B, C, H, W), t (B,) integer or fractional
    timesteps, y (B,) class ids (the null class = num_classes for unconditional) or None.

    Shapes: (B, C, H, W), (B,), (B,) -> (B, C_out, H, W), C_out = 2C when learn_sigma.
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = config
        D = config.hidden_size
        self.in_channels = config.in_channels
        self.out_channels = config.out_channels
        self.patch_size = config.patch_size
        self.num_classes = config.num_classes
        self.x_embedder = PatchEmbed(config.patch_size, config.in_channels, D)
        self.t_embedder = TimestepEmbedder(D)
        if config.num_classes > 0:
            self.y_embedder = LabelEmbedder(config.num_classes, D, config.class_dropout_prob)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_patches, D), requires_grad=False)
        self.blocks = nn.ModuleList(
            DiTBlock(D, config.num_heads, config.mlp_ratio) for _ in range(config.depth)
        )
        self.final_layer = FinalLayer(D, config.patch_size, config.out_channels)
        self.initialize_weights()

    @property
    def null_class(self) -> int | None:
        return self.config.null_class

    def initialize_weights(self) -> None:
        """The reference initialisation; the zeros at the end make it adaLN-Zero."""
        # 1. Xavier-uniform linear layers, zero biases.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        # 2. Fixed sin-cos position embedding.
        self.pos_embed.data.copy_(sincos_2d(self.config.hidden_size, self.config.grid_size)[None])
        # 3. Patch projection initialised like a linear layer.
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        # 4. Embedding tables and timestep MLP: small normal.
        if self.num_classes > 0:
            nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        # 5. adaLN-Zero: every modulation and the output layer start at zero.
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def check_input(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> None:
        """Raise a ValueError that names the problem when inputs break the model contract."""
        cfg = self.config
        if x.dim() != 4:
            raise ValueError(f"x_t must be (B, C, H, W); got shape {tuple(x.shape)}")
        if x.shape[1] != cfg.in_channels:
            raise ValueError(
                f"model expects {cfg.in_channels} input channels, got {x.shape[1]} "
                f"(shape {tuple(x.shape)}); set in_channels={x.shape[1]} or convert the images"
            )
        if tuple(x.shape[-2:]) != (cfg.input_size, cfg.input_size):
            raise ValueError(
                f"model expects {cfg.input_size}x{cfg.input_size} images, got "
                f"{x.shape[-2]}x{x.shape[-1]}; resize the images or set input_size={x.shape[-1]}"
            )
        if t.dim() != 1 or t.shape[0] != x.shape[0]:
            raise ValueError(f"t must be (B,) = ({x.shape[0]},); got shape {tuple(t.shape)}")
        if y is not None and (y.dim() != 1 or y.shape[0] != x.shape[0]):
            raise ValueError(f"y must be (B,) = ({x.shape[0]},); got shape {tuple(y.shape)}")
        if y is None and cfg.num_classes > 0 and cfg.null_class is None:
            raise ValueError(
                "this model was trained without label dropout (class_dropout_prob=0), so it has "
                "no null class: pass class labels y"
            )

    def embed_condition(self, t: torch.Tensor, y: torch.Tensor | None, batch: int) -> torch.Tensor:
        """c = emb(t) + emb(y); y None means the null class. Shapes: -> (B, D)."""
        c = self.t_embedder(t)
        if self.num_classes > 0:
            if y is None:
                y = torch.full((batch,), self.config.null_class, dtype=torch.long, device=t.device)
            c = c + self.y_embedder(y)
        return c

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        t = torch.as_tensor(t, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        self.check_input(x, t, y)
        tokens = self.x_embedder(x) + self.pos_embed  # (B, L, D)
        c = self.embed_condition(t, y, x.shape[0])  # (B, D)
        for block in self.blocks:
            tokens = block(tokens, c)  # (B, L, D)
        tokens = self.final_layer(tokens, c)  # (B, L, P*P*C_out)
        return unpatchify(tokens, self.patch_size, self.out_channels)


# name -> (depth, hidden_size, num_heads, patch_size)
_PAPER = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}

DIT_PRESETS: dict[str, dict] = {
    f"DiT-{size}/{p}": dict(depth=d, hidden_size=w, num_heads=h, patch_size=p)
    for size, (d, w, h) in _PAPER.items()
    for p in (2, 4, 8)
}
DIT_PRESETS.update(
    {
        # CPU-sized toys for 32x32 images (64 tokens at patch 4).
        "nano": dict(depth=4, hidden_size=96, num_heads=3, patch_size=4),
        "tiny": dict(depth=6, hidden_size=192, num_heads=3, patch_size=4),
        "small": dict(depth=8, hidden_size=256, num_heads=4, patch_size=4),
    }
)


def dit_config(name: str = "tiny", **overrides) -> DiTConfig:
    """The config of a named preset ('DiT-S/2' ... 'DiT-XL/8', 'nano', 'tiny', 'small').

    Keyword arguments override any field, e.g.
    `dit_config("DiT-S/2", input_size=32, in_channels=4, num_classes=1000, learn_sigma=True)`.
    """
    if name not in DIT_PRESETS:
        close = difflib.get_close_matches(name, DIT_PRESETS, n=3, cutoff=0.3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown DiT preset {name!r}{hint} Known presets: {sorted(DIT_PRESETS)}")
    fields = set(DiTConfig.__dataclass_fields__)
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(
            f"unknown DiTConfig field(s) {sorted(unknown)}; valid fields: {sorted(fields)}"
        )
    return replace(DiTConfig(), **{**DIT_PRESETS[name], **overrides})
