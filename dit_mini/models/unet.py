"""A small U-Net denoiser: the convolutional network that DiT set out to replace.

A U-Net (Ronneberger et al., arXiv 1505.04597) reads an image on a contraction path (convolutions,
then a stride-2 downsample, level after level) and rebuilds it on an expansion path (upsample,
then convolutions). Skip connections carry each level's feature map straight across and
concatenate it to what comes up from below, so detail lost to downsampling is handed back.
DDPM (Ho et al., arXiv 2006.11239, appendix B) turned it into a diffusion denoiser: residual
blocks with GroupNorm, a timestep embedding injected into every block, self-attention at low
resolution.

This one honours the DiT model contract and reuses DiT's conditioning (sinusoidal timestep MLP
plus a label table with a null row, summed into one vector c). Each residual block applies c as
a per-channel scale and shift of its second GroupNorm (adaptive GroupNorm, Dhariwal & Nichol,
arXiv 2105.05233, sec. 3). The output convolution starts at zero, so, like DiT, the untrained
network predicts 0. `skip_connections=False` removes the skips to show what they are for.

Taught in notebooks 04 (cartographer) and 07 (legendary gear: DiT against U-Net at equal Gflops).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .attention import Attention
from .config_checks import LevelWidths, check_positive, check_probability
from .embeddings import LabelEmbedder, TimestepEmbedder
from .inputs import check_denoiser_input

__all__ = [
    "ResBlock",
    "AttentionBlock",
    "downsampler",
    "upsampler",
    "UNetConfig",
    "UNet",
    "UNET_PRESETS",
    "unet_config",
]

EMBED_MULT = 4  # conditioning width = 4 * base_channels (DDPM's choice)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice around a residual, conditioned by adaptive GroupNorm.

    Shapes: x (B, Cin, H, W), c (B, E) -> (B, Cout, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * out_channels))
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        same = in_channels == out_channels
        self.skip = nn.Identity() if same else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, Cout, H, W)
        scale, shift = rearrange(self.emb(c), "b c -> b c 1 1").chunk(2, dim=1)  # (B, Cout, 1, 1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class AttentionBlock(nn.Module):
    """Self-attention over the pixels of a feature map (each pixel a token), with a residual.

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, num_heads: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.attn = Attention(channels, num_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = rearrange(self.norm(x), "b c h w -> b (h w) c")
        out = rearrange(self.attn(tokens), "b (h w) c -> b c h w", h=x.shape[-2])
        return x + out


def downsampler(channels: int) -> nn.Module:
    """Halve the resolution with a stride-2 3x3 convolution. Shapes: -> (B, C, H/2, W/2)."""
    return nn.Conv2d(channels, channels, 3, stride=2, padding=1)


def upsampler(channels: int) -> nn.Module:
    """Double the resolution: nearest neighbour, then a 3x3 conv. Shapes: -> (B, C, 2H, 2W)."""
    return nn.Sequential(nn.Upsample(scale_factor=2.0), nn.Conv2d(channels, channels, 3, padding=1))


@dataclass(frozen=True)
class UNetConfig(LevelWidths):
    """Everything that defines a U-Net's architecture (not its training).

    Level i works at resolution input_size / 2**i with base_channels * channel_mults[i] channels.
    """

    input_size: int = 32
    in_channels: int = 3
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention: bool = True
    num_heads: int = 4
    norm_groups: int = 8
    num_classes: int = 10
    class_dropout_prob: float = 0.1
    learn_sigma: bool = False
    skip_connections: bool = True

    def __post_init__(self):
        check_positive(
            self,
            ("input_size", "in_channels", "base_channels", "num_res_blocks", "num_heads",
             "norm_groups"),
        )  # fmt: skip
        self.check_levels()
        if self.attention and self.widths[-1] % self.num_heads:
            raise ValueError(
                f"num_heads {self.num_heads} must divide the lowest level's width {self.widths[-1]}"
            )
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0; got {self.num_classes}")
        check_probability("class_dropout_prob", self.class_dropout_prob)

    @property
    def emb_dim(self) -> int:
        return EMBED_MULT * self.base_channels

    @property
    def out_channels(self) -> int:
        return 2 * self.in_channels if self.learn_sigma else self.in_channels

    @property
    def null_class(self) -> int | None:
        """Label id of the 'no class' token used by classifier-free guidance, if any."""
        return self.num_classes if self.class_dropout_prob > 0 and self.num_classes > 0 else None


class UNet(nn.Module):
    """Conditional U-Net denoiser with the same model contract as DiT.

    Fully convolutional: any H, W divisible by 2**(levels-1) work, not only config.input_size.

    Shapes: (B, C, H, W), (B,), (B,) or None -> (B, C_out, H, W), C_out = 2C when learn_sigma.
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        self.in_channels, self.out_channels = config.in_channels, config.out_channels
        self.num_classes = config.num_classes
        widths, E, g = config.widths, config.emb_dim, config.norm_groups
        self.t_embedder = TimestepEmbedder(E)
        if config.num_classes > 0:
            self.y_embedder = LabelEmbedder(config.num_classes, E, config.class_dropout_prob)
        self.conv_in = nn.Conv2d(config.in_channels, widths[0], 3, padding=1)
        ins = (widths[0], *widths[:-1])  # each level takes the previous level's width
        self.down = nn.ModuleList(self._stage(i, w, E, g) for i, w in zip(ins, widths))
        self.downsample = nn.ModuleList(downsampler(w) for w in widths[:-1])
        self.mid1 = ResBlock(widths[-1], widths[-1], E, g)
        heads = config.num_heads
        self.mid_attn = AttentionBlock(widths[-1], heads, g) if config.attention else nn.Identity()
        self.mid2 = ResBlock(widths[-1], widths[-1], E, g)
        self.upsample = nn.ModuleList(upsampler(w) for w in widths[1:])
        from_below = (*widths[1:], widths[-1])  # width arriving at level i from level i+1
        skip = widths if config.skip_connections else (0,) * len(widths)
        self.up = nn.ModuleList(
            self._stage(b + s, w, E, g) for b, s, w in zip(from_below, skip, widths)
        )
        self.norm_out = nn.GroupNorm(g, widths[0])
        self.conv_out = nn.Conv2d(widths[0], config.out_channels, 3, padding=1)
        self.initialize_weights()

    def _stage(self, in_ch: int, width: int, emb_dim: int, groups: int) -> nn.ModuleList:
        n = self.config.num_res_blocks
        ins = (in_ch, *[width] * (n - 1))  # the first block changes the width
        return nn.ModuleList(ResBlock(i, width, emb_dim, groups) for i in ins)

    @property
    def null_class(self) -> int | None:
        return self.config.null_class

    def initialize_weights(self) -> None:
        """PyTorch's default init everywhere, then a zero output convolution (output 0 at init)."""
        if self.num_classes > 0:
            nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def check_input(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> None:
        """Raise a ValueError that names the problem when inputs break the model contract."""
        config = self.config
        check_denoiser_input(
            x, t, y, in_channels=config.in_channels, multiple_of=config.downsample_factor,
            needs_y=config.num_classes > 0 and config.null_class is None,
            layout_hint=f"a U-Net with {len(config.channel_mults)} levels halves them each level; "
            f"resize the images (e.g. to {config.input_size}x{config.input_size}) or use fewer "
            "levels",
        )  # fmt: skip

    def embed_condition(self, t: torch.Tensor, y: torch.Tensor | None, batch: int) -> torch.Tensor:
        """c = emb(t) + emb(y); y None means the null class. Shapes: -> (B, E)."""
        c = self.t_embedder(t)
        if self.num_classes > 0:
            if y is None:
                y = torch.full((batch,), self.config.null_class, dtype=torch.long, device=t.device)
            c = c + self.y_embedder(y)
        return c

    def _run(self, x, t, y, features: dict | None) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device)
        t = t.expand(x.shape[0]) if t.dim() == 0 else t
        self.check_input(x, t, y)
        keep = features.__setitem__ if features is not None else lambda name, h: None
        c = self.embed_condition(t, y, x.shape[0])  # (B, E)
        h, skips = self.conv_in(x), []
        # 1. Contraction: residual blocks, remember the map for its skip, halve the resolution.
        for i, stage in enumerate(self.down):
            for block in stage:
                h = block(h, c)
            skips.append(h)
            keep(f"down{i}", h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        # 2. Bottleneck at the lowest resolution, where attention is cheapest.
        h = self.mid2(self.mid_attn(self.mid1(h, c)), c)
        keep("mid", h)
        # 3. Expansion: upsample, concatenate the skip from the same level, residual blocks.
        for i in reversed(range(len(self.up))):
            if i < len(self.upsample):
                h = self.upsample[i](h)
            if self.config.skip_connections:
                h = torch.cat([h, skips[i]], dim=1)  # (B, C_below + C_i, H_i, W_i)
            for block in self.up[i]:
                h = block(h, c)
            keep(f"up{i}", h)
        # 4. Back to image channels.
        return self.conv_out(F.silu(self.norm_out(h)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        return self._run(x, t, y, features=None)

    def feature_maps(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        """The feature map after each level, in the order computed, plus the output.

        Keys 'down0', 'down1', ..., 'mid', ..., 'up1', 'up0', 'out'.
        Shapes: 'down{i}' and 'up{i}' (B, base_channels * channel_mults[i], H / 2**i, W / 2**i).
        """
        features: dict[str, torch.Tensor] = {}
        features["out"] = self._run(x, t, y, features)
        return features


UNET_PRESETS: dict[str, dict] = {
    # CPU-sized U-Nets for 32x32 images.
    "unet-nano": dict(base_channels=16, channel_mults=(1, 2), num_res_blocks=1),
    "unet-tiny": dict(base_channels=32, channel_mults=(1, 2, 2), num_res_blocks=1),
    "unet-small": dict(base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2),
}


def unet_config(name: str = "unet-tiny", **overrides) -> UNetConfig:
    """The config of a named preset ('unet-nano', 'unet-tiny', 'unet-small'), fields overridable."""
    if name not in UNET_PRESETS:
        close = difflib.get_close_matches(name, UNET_PRESETS, n=3, cutoff=0.3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"unknown U-Net preset {name!r}{hint} Known presets: {sorted(UNET_PRESETS)}"
        )
    fields = set(UNetConfig.__dataclass_fields__)
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(
            f"unknown UNetConfig field(s) {sorted(unknown)}; valid fields: {sorted(fields)}"
        )
    return replace(UNetConfig(), **{**UNET_PRESETS[name], **overrides})
