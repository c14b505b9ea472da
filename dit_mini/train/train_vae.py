"""Training the course's VAE: the loop (Adam on the negative ELBO, cosine decay) and its command.

The VAE is not a denoiser, so it has its own short loop instead of `dit_mini.train.trainer.fit`;
after training, its latent scale is measured and stored in the model (`dit_mini.models.latents`).
The command `python -m dit_mini.train.train_vae` trains the shipped `assets/vae.safetensors` (see
assets/vae.md) and reports held-out reconstruction MSE and PSNR.

The model and its loss: `dit_mini.models.vae`. Taught in notebooks 10 (dream factory) and
11 (forge).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch
from tqdm.auto import tqdm

from ..data.image_dataset import as_images
from ..data.relics import TEST_SEED_OFFSET, make_relics
from ..models.latents import measure_latent_scale, reconstruction_metrics
from ..models.vae import (
    VAE,
    VAE_PRESETS,
    VAEConfig,
    vae_config,
    vae_loss,
)
from ..registry import save_model
from ..runtime import cpu_name
from ..viz import save_image_grid

__all__ = ["train_vae", "main"]


def train_vae(
    vae: VAE,
    data,
    steps: int = 1000,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    quiet: bool = False,
    scale_images: int = 4096,
) -> dict[str, list[float]]:
    """Train `vae` with Adam on `vae_loss` (learning rate decayed to 0 along a half cosine),
    then measure and store its latent scale.

    A VAE is not a denoiser, so it has this loop instead of `dit_mini.train.trainer.fit`. One
    generator seeded from `seed` shuffles the data (a fresh permutation every epoch), another
    draws the reparameterisation noise: the same seed gives the same weights. The scale is
    measured on the first `scale_images` training images. Returns the per-step 'loss', 'recon'
    and 'kl'.

    Shapes: data images (N, C, H, W) in [-1, 1].
    """
    if steps < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"need steps >= 1, batch_size >= 1, lr > 0; got {steps}, {batch_size}, {lr}"
        )
    images, device = as_images(data), vae.latent_scale.device
    order = torch.Generator().manual_seed(seed)
    noise = torch.Generator(device).manual_seed(seed + 1)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    history: dict[str, list[float]] = {"loss": [], "recon": [], "kl": []}
    perm, pos = torch.randperm(len(images), generator=order), 0
    vae.train()
    for step in tqdm(range(steps), disable=quiet, desc="vae", unit="step"):
        # 1. Next batch of the shuffled epoch (a new permutation when it runs out).
        if pos + batch_size > len(perm):
            perm, pos = torch.randperm(len(images), generator=order), 0
        x = images[perm[pos : pos + batch_size]].to(device)  # (B, C, H, W)
        pos += batch_size
        # 2. Negative ELBO, backward, Adam step at this step's learning rate.
        loss, parts = vae_loss(vae, x, noise)
        opt.param_groups[0]["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / steps))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for key, value in (("loss", float(loss.detach())), *parts.items()):
            history[key].append(value)
    vae.eval()
    # 3. Latent scale from the trained encoder.
    vae.set_latent_scale(measure_latent_scale(vae, images[:scale_images]))
    return history


def main(argv: list[str] | None = None) -> dict:
    """Train the course's VAE on relics, report held-out MSE and PSNR, save weights and a grid."""
    p = argparse.ArgumentParser(prog="python -m dit_mini.train.train_vae", description=main.__doc__)
    p.add_argument("--preset", default="vae-nano", choices=sorted(VAE_PRESETS))
    p.add_argument("--kl-weight", type=float, default=VAEConfig.kl_weight)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--n-train", type=int, default=20_000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out", default="assets/vae.safetensors")
    p.add_argument("--grid", default="assets/vae_recon.png")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    # 1. Data: training relics from the seed, held-out relics from seed + TEST_SEED_OFFSET.
    train, test = (
        make_relics(args.n_train, args.seed),
        make_relics(args.n_test, args.seed + TEST_SEED_OFFSET),
    )
    torch.manual_seed(args.seed)  # the initial weights
    vae = VAE(vae_config(args.preset, kl_weight=args.kl_weight))
    # 2. Train, timing the loop alone.
    start = time.perf_counter()
    history = train_vae(vae, train, args.steps, args.batch_size, args.lr, args.seed)
    seconds = time.perf_counter() - start
    # 3. Measure on held-out relics; save weights, the record and a grid (originals above recons).
    record = {
        "command": "python -m dit_mini.train.train_vae "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "train": {
            **vars(args),
            "seconds": round(seconds, 1),
            "final_recon": history["recon"][-1],
            "final_kl": history["kl"][-1],
        },
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch "
        f"threads, torch {torch.__version__}",
        "test": {**reconstruction_metrics(vae, test.images), "n": args.n_test},
        "latent_scale": float(vae.latent_scale),
    }
    save_model(vae, args.out, extra=record)
    with torch.no_grad():
        x = test.images[:10]
        save_image_grid(torch.cat([x, vae.decode(vae.encode(x)[0])]), args.grid, nrow=10, zoom=3)
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
