"""The pretrained relic models shipped in `assets/`, found the same way in a checkout and a wheel.

Each file is a dit-mini model file (`dit_mini.registry`: safetensors with a JSON header and a
checksum) and has a model card beside it (`assets/<name>.md`) with the exact command that trained
it, its cost and its measured scores. FAST mode in the notebooks loads these instead of training.

Used by notebooks 00 (bonfire), 03, 06, 07, 08, 11, 12 and 13.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

import torch
from torch import nn

from ..registry import load_model

__all__ = ["PRETRAINED", "assets_dir", "asset_path", "load_pretrained"]

ASSETS_ENV = "DIT_MINI_ASSETS"  # optional override of the assets folder

# name -> (file in assets/, what it is)
PRETRAINED = {
    "dit-tiny": ("dit_tiny.safetensors", "tiny pixel DiT, class-conditional, flow matching"),
    "unet-tiny": ("unet_tiny.safetensors", "U-Net with the tiny DiT's Gflops, same budget"),
    "latent-dit-tiny": ("latent_dit_tiny.safetensors", "tiny DiT on the VAE's 8x8x4 latents"),
    "vae": ("vae.safetensors", "the VAE of notebooks 10 and 11 (32x32x3 <-> 8x8x4)"),
    "relic-classifier": ("relic_classifier.safetensors", "the Relics classifier (scores, FID)"),
    "video-dit": ("video_dit.safetensors", "the text-to-video DiT of notebook 13"),
    "clip-checker": ("clip_checker.safetensors", "names item, colour and motion of a clip"),
}


def assets_dir() -> Path:
    """$DIT_MINI_ASSETS, else the checkout's assets/ folder, else the copy inside the wheel."""
    if os.environ.get(ASSETS_ENV):
        return Path(os.environ[ASSETS_ENV])
    checkout = Path(__file__).resolve().parents[2] / "assets"
    if checkout.is_dir():
        return checkout
    return Path(str(importlib.resources.files("dit_mini.assets")))


def asset_path(name: str) -> Path:
    """Path of a shipped file, by model name ('dit-tiny', ...) or file name ('vae.md')."""
    filename = PRETRAINED[name][0] if name in PRETRAINED else name
    path = assets_dir() / filename
    if not path.is_file():
        known = ", ".join(sorted(PRETRAINED))
        raise FileNotFoundError(
            f"no asset {filename!r} in {assets_dir()}; known models: {known}. In a checkout, "
            "check out the full repository or reinstall the package"
        )
    return path


def load_pretrained(name: str, device: str | torch.device | None = None) -> nn.Module:
    """Load a shipped model by name, in eval mode (safetensors, checksum verified)."""
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained model {name!r}; choose one of {sorted(PRETRAINED)}")
    return load_model(asset_path(name), device=device or "cpu")
