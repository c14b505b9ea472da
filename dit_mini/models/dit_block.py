"""The DiT block and four ways of telling it t and y (Peebles & Xie, arXiv 2212.09748, sec 3.2).

Every block of a diffusion transformer must know the noise level t and the class y. The DiT paper
compares four designs (its Fig. 3 and 5), all selectable with `DiTConfig(conditioning=...)`:

- 'in-context': emb(t) and emb(y) are appended to the sequence as two extra tokens and the blocks
  are standard ViT blocks; the two tokens are dropped after the last block.
- 'cross-attention': [emb(t), emb(y)] is a separate length-2 sequence; each block gets a
  multi-head cross-attention layer after its self-attention (about 15 % more Gflops).
- 'adaln': the LayerNorms lose their learned scale and shift; instead, per-channel shift and
  scale are regressed from c = emb(t) + emb(y), the same for every token (cheapest in flops).
- 'adaln-zero' (the default): adaLN plus a per-channel gate on each residual branch, with the
  regressing layers and the output layer initialised to zero, so every block starts as the
  identity map and the network starts by predicting zero. The best FID of the four in the paper.

The adaLN-Zero block and final layer keep the reference implementation's parameter names.
`in_context_extra_macs` counts what in-context conditioning adds to a forward pass (two tokens
more in every block), in multiply-adds.

Taught in notebook 07 (legendary gear).
"""

from __future__ import annotations

import difflib
import math

import torch
from torch import nn

from .attention import Attention, CrossAttention

__all__ = [
    "CONDITIONING",
    "ADALN_DESIGNS",
    "LAYERNORM_EPS",
    "modulate",
    "TanhGELU",
    "Mlp",
    "DiTBlock",
    "AdaLNBlock",
    "ViTBlock",
    "CrossAttentionBlock",
    "FinalLayer",
    "PlainFinalLayer",
    "check_conditioning",
    "make_blocks",
    "make_final_layer",
    "in_context_extra_macs",
]

CONDITIONING = ("adaln-zero", "adaln", "in-context", "cross-attention")  # paper, Fig. 5
ADALN_DESIGNS = ("adaln-zero", "adaln")  # designs fed the vector c = emb(t) + emb(y)
LAYERNORM_EPS = 1e-6  # reference DiT


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: x * (1 + scale) + shift, one (shift, scale) pair per sample.

    Shapes: x (B, L, D), shift, scale (B, D) -> (B, L, D).
    """
    return x * (1 + scale[:, None]) + shift[:, None]


_A = 2.0 * math.sqrt(2.0 / math.pi)  # 0.5 (1 + tanh(u)) = sigmoid(2u)
_B = _A * 0.044715


class _TanhGELUFunction(torch.autograd.Function):
    """GELU(tanh) = x sigmoid(A x + B x^3), written with a sigmoid: torch's CPU tanh is slow."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        s = torch.addcmul(torch.full((), _A, dtype=x.dtype), x, x, value=_B).mul_(x).sigmoid_()
        return s.mul_(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors  # torch's own backward kernel is not the slow part
        return torch.ops.aten.gelu_backward(grad, x, approximate="tanh")


class TanhGELU(nn.GELU):
    """nn.GELU(approximate='tanh'), the reference's activation, computed through a sigmoid.

    Same function to float rounding (tests compare it); on the CPU it skips torch's tanh kernel,
    which is several times slower than its sigmoid (issue 24, `dit_mini.studies.step_levers`).
    Other devices keep torch's kernel.

    Shapes: (...) -> (...).
    """

    def __init__(self):
        super().__init__(approximate="tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        return _TanhGELUFunction.apply(x)


class Mlp(nn.Module):
    """Token-wise feed-forward network fc1 -> GELU(tanh) -> fc2 (keys as in timm's Mlp).

    Shapes: (B, L, D) -> (B, L, D).
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = TanhGELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _plain_norm(dim: int, affine: bool) -> nn.LayerNorm:
    return nn.LayerNorm(dim, elementwise_affine=affine, eps=LAYERNORM_EPS)


class DiTBlock(nn.Module):
    """Transformer block with adaLN-Zero conditioning (the reference block); with gated=False
    the adaLN block (shift and scale from c, no gates: `AdaLNBlock`).

    Shapes: x (B, L, D), c (B, D) -> (B, L, D).
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0, gated=True):
        super().__init__()
        self.gated = gated
        self.norm1 = _plain_norm(hidden_size, affine=False)
        self.attn = Attention(hidden_size, num_heads, qkv_bias=True)
        self.norm2 = _plain_norm(hidden_size, affine=False)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        n_vectors = 6 if gated else 4  # (shift, scale[, gate]) for each of the two branches
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(), nn.Linear(hidden_size, n_vectors * hidden_size)
        )

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # 1. The (B, D) modulation vectors from the conditioning, in the reference's order.
        if self.gated:
            shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(
                c
            ).chunk(6, dim=1)
        else:
            shift_msa, scale_msa, shift_mlp, scale_mlp = self.adaLN_modulation(c).chunk(4, dim=1)
        # 2. Attention branch, then MLP branch; adaLN-Zero gates them (gates start at zero, so
        # the block starts as the identity).
        attn = self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + (gate_msa[:, None] * attn if self.gated else attn)
        mlp = self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x + (gate_mlp[:, None] * mlp if self.gated else mlp)


class AdaLNBlock(DiTBlock):
    """Transformer block with adaLN conditioning: shift and scale from c, no gates (a `DiTBlock`
    with gated=False).

    Shapes: x (B, L, D), c (B, D) -> (B, L, D).
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__(hidden_size, num_heads, mlp_ratio, gated=False)


class ViTBlock(nn.Module):
    """Standard pre-LayerNorm ViT block, used by in-context conditioning.

    The conditioning already sits in the sequence as extra tokens, so `context` is ignored.

    Shapes: x (B, L, D) -> (B, L, D).
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = _plain_norm(hidden_size, affine=True)
        self.attn = Attention(hidden_size, num_heads, qkv_bias=True)
        self.norm2 = _plain_norm(hidden_size, affine=True)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CrossAttentionBlock(nn.Module):
    """ViT block with a cross-attention layer to the conditioning tokens after self-attention.

    Shapes: x (B, L, D), context (B, S, D) -> (B, L, D); S = 2 for [emb(t), emb(y)].
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = _plain_norm(hidden_size, affine=True)
        self.attn = Attention(hidden_size, num_heads, qkv_bias=True)
        self.norm_cross = _plain_norm(hidden_size, affine=True)
        self.cross_attn = CrossAttention(hidden_size, hidden_size, num_heads, qkv_bias=True)
        self.norm2 = _plain_norm(hidden_size, affine=True)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        x = x + self.cross_attn(self.norm_cross(x), context)
        return x + self.mlp(self.norm2(x))


class FinalLayer(nn.Module):
    """adaLN-modulated LayerNorm and a linear map from each token to a P*P*C_out patch.

    Shapes: x (B, L, D), c (B, D) -> (B, L, P*P*C_out).
    """

    def __init__(self, hidden_size: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm_final = _plain_norm(hidden_size, affine=False)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class PlainFinalLayer(nn.Module):
    """LayerNorm and a linear map to patches, for the token-conditioned designs (c is ignored).

    Shapes: x (B, L, D) -> (B, L, P*P*C_out).
    """

    def __init__(self, hidden_size: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm_final = _plain_norm(hidden_size, affine=True)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.norm_final(x))


_BLOCKS = {
    "adaln-zero": DiTBlock,
    "adaln": AdaLNBlock,
    "in-context": ViTBlock,
    "cross-attention": CrossAttentionBlock,
}


def check_conditioning(conditioning: str) -> None:
    """A ValueError naming the four designs (and the closest one) for an unknown design."""
    if conditioning not in CONDITIONING:
        close = difflib.get_close_matches(str(conditioning), CONDITIONING, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"conditioning must be one of {list(CONDITIONING)}; got {conditioning!r}{hint}"
        )


def make_blocks(
    conditioning: str, hidden_size: int, num_heads: int, mlp_ratio: float, depth: int
) -> nn.ModuleList:
    """`depth` blocks of one conditioning design (see the module docstring)."""
    check_conditioning(conditioning)
    block = _BLOCKS[conditioning]
    return nn.ModuleList(block(hidden_size, num_heads, mlp_ratio) for _ in range(depth))


def make_final_layer(
    conditioning: str, hidden_size: int, patch_size: int, out_channels: int
) -> nn.Module:
    """The adaLN-modulated final layer for the adaLN designs, a plain one for the others."""
    check_conditioning(conditioning)
    layer = FinalLayer if conditioning in ADALN_DESIGNS else PlainFinalLayer
    return layer(hidden_size, patch_size, out_channels)


def in_context_extra_macs(
    tokens: int, width: int, depth: int, extra_tokens: int = 2, mlp_ratio: float = 4.0
) -> int:
    """Multiply-adds that `extra_tokens` conditioning tokens add to `depth` ViT blocks.

    Per block, each extra token passes through qkv (3 D^2), the output projection (D^2) and the
    MLP (2 r D^2); the two attention products grow from 2 L^2 D to 2 (L + S)^2 D.
    """
    if min(tokens, width, depth) < 1 or extra_tokens < 0:
        raise ValueError(
            f"need tokens, width, depth >= 1 and extra_tokens >= 0; "
            f"got {tokens}, {width}, {depth}, {extra_tokens}"
        )
    hidden = int(width * mlp_ratio)
    per_token = 4 * width * width + 2 * width * hidden  # linear layers, one token
    attention = 2 * ((tokens + extra_tokens) ** 2 - tokens**2) * width
    return depth * (extra_tokens * per_token + attention)
