"""Working in a VAE's latent space: encode, decode, the latent scale, interpolation and a 2-D map.

Latent diffusion (Rombach et al., arXiv 2112.10752, sec. 3 and appendix G) trains and samples the
diffusion model on the VAE's latents z instead of pixels. The latents are multiplied by 1 / their
standard deviation (`measure_latent_scale`, stored in the VAE as `latent_scale`) so the diffusion
model sees unit-variance data; `encode_dataset` turns an image dataset into a latent one that
`dit_mini.train.trainer.fit` trains on unchanged, and `decode_latents` turns samples back into
pictures.
Walks between two latents go along a straight line or a great circle (slerp; Shoemake 1985),
and `latent_map_2d` draws the latent space on its first two principal axes.

The VAE itself: `dit_mini.models.vae`. Taught in notebooks 10 (dream factory) and 11 (forge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..data.image_dataset import ImageDataset, as_images
from .vae import VAE

__all__ = [
    "PEAK_TO_PEAK",
    "encode_latents",
    "decode_latents",
    "measure_latent_scale",
    "encode_dataset",
    "reconstruction_metrics",
    "interpolate_latents",
    "LatentMap",
    "latent_map_2d",
]

PEAK_TO_PEAK = 2.0  # images live in [-1, 1]; PSNR = 10 log10(PEAK_TO_PEAK**2 / MSE)


@torch.no_grad()
def _batched(fn, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """fn applied to x in batches on `device`; results concatenated on x's device."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size}")
    outs = [fn(x[i : i + batch_size].to(device)).to(x.device) for i in range(0, len(x), batch_size)]
    return torch.cat(outs)


def encode_latents(
    vae: VAE,
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    scale: bool = True,
    sample: bool = False,
    batch_size: int = 256,
) -> torch.Tensor:
    """Latents of images: the posterior mean, or a draw from q(z | x) when sample=True (then
    `generator` is used), multiplied by `vae.latent_scale` when scale=True (unit std on data).

    Shapes: (N, C, H, W) -> (N, C_z, H/f, W/f).
    """

    def one(x):
        mean, logvar = vae.encode(x)
        return vae.reparameterize(mean, logvar, generator) if sample else mean

    z = _batched(one, images, batch_size, vae.latent_scale.device)
    return z * vae.latent_scale.to(z.device) if scale else z


def decode_latents(vae: VAE, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Undo the latent scale, then decode. Shapes: (N, C_z, h, w) -> (N, C, f h, f w)."""
    scale = vae.latent_scale.to(z.device)
    return _batched(
        lambda b: vae.decode(b / scale.to(b.device)), z, batch_size, vae.latent_scale.device
    )


def measure_latent_scale(
    vae: VAE,
    images: torch.Tensor,
    sample: bool = False,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> float:
    """1 / std of the unscaled latents of `images` (posterior means, or draws if sample=True),
    over all their numbers: the factor that gives the diffusion model unit-variance data.

    Shapes: images (N, C, H, W) -> float.
    """
    z = encode_latents(vae, as_images(images), generator, False, sample, batch_size)
    return 1.0 / float(z.float().std())


def encode_dataset(
    vae: VAE,
    dataset,
    batch_size: int = 256,
    sample: bool = False,
    generator: torch.Generator | None = None,
):
    """The dataset with every image replaced by its scaled latents, labels and captions kept, so
    `dit_mini.train.trainer.fit` and `dit_mini.diffusion.losses.generate` train and sample a latent
    DiT as is.

    Shapes: images (N, C, H, W) -> (N, C_z, H/f, W/f).
    """
    z = encode_latents(vae, as_images(dataset), generator, True, sample, batch_size)
    labels = getattr(dataset, "labels", torch.zeros(len(z), dtype=torch.int64))
    classes = getattr(dataset, "classes", ("image",))
    return ImageDataset(z.float().contiguous(), labels, classes, getattr(dataset, "captions", None))


def reconstruction_metrics(vae: VAE, images: torch.Tensor, batch_size: int = 256) -> dict:
    """MSE and PSNR (dB) of decode(posterior mean), clamped to [-1, 1], against the images.
    PSNR = 10 log10(PEAK_TO_PEAK**2 / MSE) with the MSE over the whole set.

    Shapes: images (N, C, H, W) -> {'mse': float, 'psnr': float}.
    """
    images = as_images(images)
    recon = _batched(
        lambda x: vae.decode(vae.encode(x)[0]), images, batch_size, vae.latent_scale.device
    )
    mse = float((recon.clamp(-1, 1) - images).float().square().mean())
    return {"mse": mse, "psnr": 10 * math.log10(PEAK_TO_PEAK**2 / max(mse, 1e-12))}


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, n: int, mode: str = "linear"):
    """n latents from z0 to z1 (both ends included), along a straight line ('linear') or a great
    circle ('spherical', slerp: the norm stays typical of Gaussian noise).

    Shapes: z0, z1 (C, h, w) or (1, C, h, w) -> (n, C, h, w).
    """
    z0, z1 = z0.squeeze(0) if z0.dim() == 4 else z0, z1.squeeze(0) if z1.dim() == 4 else z1
    if z0.shape != z1.shape or n < 2 or mode not in ("linear", "spherical"):
        raise ValueError(
            f"need two latents of one shape, n >= 2 and mode 'linear' or 'spherical'; got "
            f"{tuple(z0.shape)}, {tuple(z1.shape)}, n={n}, mode={mode!r}"
        )
    t = torch.linspace(0, 1, n, dtype=z0.dtype, device=z0.device).view(n, 1)  # (n, 1)
    a, b = z0.reshape(1, -1), z1.reshape(1, -1)  # (1, D)
    cos = (a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))
    if mode == "linear" or float(omega.sin()) < 1e-6:  # (anti)parallel: slerp is undefined
        out = (1 - t) * a + t * b  # (n, D)
    else:
        out = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / omega.sin()
    return out.reshape(n, *z0.shape)


@dataclass
class LatentMap:
    """A 2-D map of latent space: the first two principal axes of the flattened latents.

    Shapes: coords (N, 2), labels (N,), mean (D,), components (D, 2), explained (2,) fractions.
    """

    coords: torch.Tensor
    labels: torch.Tensor
    mean: torch.Tensor
    components: torch.Tensor
    explained: torch.Tensor

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """Place latents (e.g. an interpolation path) on the map. Shapes: (M, C, h, w) -> (M, 2)."""
        return (z.reshape(len(z), -1).float() - self.mean) @ self.components


def latent_map_2d(vae: VAE, dataset, n: int = 1000, batch_size: int = 256) -> LatentMap:
    """PCA of the scaled latent means of the first n images (exact SVD, so no randomness).

    Each axis' sign is fixed so its largest loading is positive: the same data gives the same map.

    Shapes: dataset images (N, C, H, W) -> coords (min(n, N), 2).
    """
    images = as_images(dataset)[:n]
    labels = getattr(dataset, "labels", torch.zeros(len(as_images(dataset)), dtype=torch.int64))
    z = encode_latents(vae, images, batch_size=batch_size).reshape(len(images), -1).float()
    mean = z.mean(0)  # (D,)
    _, s, vh = torch.linalg.svd(z - mean, full_matrices=False)  # vh (K, D)
    comps = vh[:2].T  # (D, 2)
    comps = comps * comps.gather(0, comps.abs().argmax(0, keepdim=True)).sign()
    explained = s[:2].square() / s.square().sum()
    return LatentMap((z - mean) @ comps, labels[: len(images)], mean, comps, explained)
