"""A small variational autoencoder (VAE): the latent space that latent diffusion works in.

The encoder maps an image x to a diagonal Gaussian q(z | x) = N(mean, exp(logvar)) over a smaller
grid of latents z; the decoder maps z back to an image. Training maximises the evidence lower
bound (Kingma & Welling, arXiv 1312.6114, eq. 10): a reconstruction term plus
kl_weight * KL(q(z | x) || N(0, I)), the KL in closed form (appendix B). z is drawn with the
reparameterisation trick z = mean + exp(logvar / 2) * eps, so gradients reach mean and logvar.

Latent diffusion (Rombach et al., arXiv 2112.10752, sec. 3 and appendix G) runs the diffusion
model on z instead of pixels: 32 x 32 x 3 relics become 8 x 8 x 4 latents, 12 times fewer
numbers, so a DiT with the same patch size sees 16 times fewer tokens. The latents are divided by
their standard deviation so the diffusion model sees unit-variance data; Stable Diffusion's
constant 0.18215 is that number for its own VAE, here it is measured on our data and stored in
the model as the buffer `latent_scale`.

Training: `dit_mini.train.train_vae` (`python -m dit_mini.train.train_vae`). Working in the latent
space
(encode, decode, scale, interpolate, map): `dit_mini.models.latents`.

Taught in notebooks 10 (dream factory) and 11 (forge).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .config_checks import LevelWidths, check_positive

__all__ = [
    "VAEConfig",
    "VAE_PRESETS",
    "vae_config",
    "VAEResBlock",
    "VAE",
    "kl_divergence",
    "vae_loss",
]

LOGVAR_RANGE = (-30.0, 20.0)  # clamp of the encoder's log-variance (latent-diffusion's VAE)
RECON_LOSSES = ("mse", "l1")


def _randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like x, drawn on the generator's device, moved to x's."""
    device = generator.device if generator is not None else x.device
    eps = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
    return eps.to(x.device)


class VAEResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice around a residual (DDPM's block without conditioning).

    Shapes: (B, Cin, H, W) -> (B, Cout, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        same = in_channels == out_channels
        self.skip = nn.Identity() if same else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, Cout, H, W)
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


def _stage(in_ch: int, width: int, n: int, groups: int) -> nn.Sequential:
    """n residual blocks at one resolution; the first one changes the width."""
    return nn.Sequential(*(VAEResBlock(c, width, groups) for c in (in_ch, *[width] * (n - 1))))


@dataclass(frozen=True)
class VAEConfig(LevelWidths):
    """Architecture and loss weights of a VAE. Level i of the encoder works at resolution
    input_size / 2**i with base_channels * channel_mults[i] channels; the latents sit at the last
    level, so the downsample factor is 2**(len(channel_mults) - 1).

    Loss: recon (per pixel value, 'mse' or 'l1') + kl_weight * KL (nats per latent number).
    """

    in_channels: int = 3
    input_size: int = 32
    latent_channels: int = 4
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    norm_groups: int = 8
    kl_weight: float = 1e-3
    recon_loss: str = "mse"

    def __post_init__(self):
        check_positive(
            self,
            ("in_channels", "input_size", "latent_channels", "base_channels", "num_res_blocks",
             "norm_groups"),
        )  # fmt: skip
        self.check_levels()
        if not self.kl_weight >= 0:
            raise ValueError(
                f"kl_weight must be >= 0 (0: a plain autoencoder); got {self.kl_weight}"
            )
        if self.recon_loss not in RECON_LOSSES:
            raise ValueError(f"recon_loss must be one of {RECON_LOSSES}; got {self.recon_loss!r}")

    @property
    def latent_size(self) -> int:
        return self.input_size // self.downsample_factor

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.latent_size, self.latent_size)


class VAE(nn.Module):
    """Convolutional VAE: encoder to a Gaussian over latents, decoder back to pixels.

    Encoder: conv, then per level residual blocks and a stride-2 conv (not after the last level),
    a middle block, GroupNorm-SiLU and a conv to 2 * latent_channels (mean and logvar).
    Decoder: the mirror image, with nearest-neighbour upsampling and a conv. Fully convolutional:
    any H, W divisible by the downsample factor work.

    Shapes: x (B, C, H, W) -> mean, logvar (B, C_z, H/f, W/f) -> recon (B, C, H, W).
    """

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        self.config = config = config or VAEConfig()
        self.in_channels, self.latent_channels = config.in_channels, config.latent_channels
        w, g, n = config.widths, config.norm_groups, config.num_res_blocks
        ins = (w[0], *w[:-1])  # each level takes the previous level's width
        self.encoder = nn.Sequential(nn.Conv2d(config.in_channels, w[0], 3, padding=1))
        for i, (c_in, width) in enumerate(zip(ins, w)):
            self.encoder.append(_stage(c_in, width, n, g))
            if i < len(w) - 1:
                self.encoder.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
        self.encoder.extend([VAEResBlock(w[-1], w[-1], g), nn.GroupNorm(g, w[-1]), nn.SiLU()])
        self.encoder.append(nn.Conv2d(w[-1], 2 * config.latent_channels, 3, padding=1))
        self.decoder = nn.Sequential(nn.Conv2d(config.latent_channels, w[-1], 3, padding=1))
        self.decoder.append(VAEResBlock(w[-1], w[-1], g))
        for i in reversed(range(len(w))):
            self.decoder.append(_stage(w[i], w[i], n, g))
            if i > 0:
                self.decoder.extend(
                    [nn.Upsample(scale_factor=2.0), nn.Conv2d(w[i], w[i - 1], 3, padding=1)]
                )
        self.decoder.extend([nn.GroupNorm(g, w[0]), nn.SiLU()])
        self.decoder.append(nn.Conv2d(w[0], config.in_channels, 3, padding=1))
        # 1 / std of the latents, measured on data by `measure_latent_scale`; saved with weights.
        self.register_buffer("latent_scale", torch.ones(()))

    def _check(self, x: torch.Tensor, channels: int, factor: int, what: str) -> None:
        if x.dim() != 4 or x.shape[1] != channels:
            raise ValueError(
                f"{what} must be (B, {channels}, H, W); got shape {tuple(x.shape)}: "
                f"pass a batch with {channels} channels (add a batch dimension with x[None])"
            )
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(
                f"{what} size {x.shape[-2]}x{x.shape[-1]} must be divisible by {factor}; resize "
                f"to {self.config.input_size}x{self.config.input_size}"
            )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z | x). Shapes: (B, C, H, W) -> mean, logvar (B, C_z, H/f, W/f)."""
        self._check(x, self.in_channels, self.config.downsample_factor, "images x")
        mean, logvar = self.encoder(x).chunk(2, dim=1)  # (B, C_z, H/f, W/f) each
        return mean, logvar.clamp(*LOGVAR_RANGE)

    @staticmethod
    def reparameterize(
        mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mean + exp(logvar / 2) * eps with eps ~ N(0, I) (arXiv 1312.6114, eq. 10).

        Shapes: mean, logvar (B, C_z, h, w) -> z (B, C_z, h, w).
        """
        return mean + torch.exp(0.5 * logvar) * _randn_like(mean, generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents back to images (unclamped). Shapes: (B, C_z, h, w) -> (B, C, f h, f w)."""
        self._check(z, self.latent_channels, 1, "latents z")
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Encode, draw z, decode. Shapes: x (B, C, H, W) -> (recon, mean, logvar)."""
        mean, logvar = self.encode(x)
        return self.decode(self.reparameterize(mean, logvar, generator)), mean, logvar

    @torch.no_grad()
    def set_latent_scale(self, value: float) -> None:
        """Store the latent scale (1 / std of the latents) in the buffer saved with the weights."""
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"latent scale must be a positive finite number; got {value}")
        self.latent_scale.fill_(value)


VAE_PRESETS: dict[str, dict] = {
    # CPU-sized VAEs with downsample factor 4 (the paper's "KL-f4"): 32x32x3 -> 8x8x4.
    "vae-nano": dict(base_channels=16, channel_mults=(1, 2, 2), norm_groups=8),
    "vae-tiny": dict(base_channels=32, channel_mults=(1, 2, 2)),
    "vae-small": dict(base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2),
}


def vae_config(name: str = "vae-tiny", **overrides) -> VAEConfig:
    """The config of a named preset ('vae-nano', 'vae-tiny', 'vae-small'), fields overridable."""
    if name not in VAE_PRESETS:
        close = difflib.get_close_matches(name, VAE_PRESETS, n=3, cutoff=0.3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown VAE preset {name!r}{hint} Known presets: {sorted(VAE_PRESETS)}")
    unknown = set(overrides) - set(VAEConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"unknown VAEConfig field(s) {sorted(unknown)}; valid fields: "
            f"{sorted(VAEConfig.__dataclass_fields__)}"
        )
    return replace(VAEConfig(), **{**VAE_PRESETS[name], **overrides})


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per number, in closed form (arXiv 1312.6114, app. B):
    0.5 * (mean^2 + var - 1 - logvar).

    Shapes: mean, logvar (B, C_z, h, w) -> (B, C_z, h, w), nats.
    """
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)


def vae_loss(model: VAE, x: torch.Tensor, generator: torch.Generator | None = None):
    """Negative ELBO of a batch: recon + kl_weight * KL, each averaged over its numbers.

    recon is the mean squared (or absolute) error per pixel value; kl the mean KL per latent
    number. Returns (loss, {'recon': float, 'kl': float}).

    Shapes: x (B, C, H, W) -> scalar loss.
    """
    # 1. Encode, draw z with the reparameterisation trick, decode.
    recon, mean, logvar = model(x, generator)
    # 2. Reconstruction term (the Gaussian or Laplace decoder's log-likelihood up to constants).
    err = F.mse_loss if model.config.recon_loss == "mse" else F.l1_loss
    rec = err(recon, x)
    # 3. KL of the posterior from the N(0, I) prior, in closed form.
    kl = kl_divergence(mean, logvar).mean()
    loss = rec + model.config.kl_weight * kl
    return loss, {"recon": float(rec.detach()), "kl": float(kl.detach())}
