"""Runs built from named options: the model presets, training from options, sampling from a
file, the quickstart demo and its recipe, and a training-speed benchmark.

`RECIPES` is the one place where the quickstart's parameters live. A `Recipe` names everything a
run needs (model preset, data, diffusion objective, `TrainConfig`, sampling settings), with
smaller `fast_*` values for FAST mode (see `dit_mini.runtime.fast_mode`).

Used by the `dit-mini` command line (`dit_mini.cli.main`) and notebook 00 (bonfire).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from ..data.datasets import load_dataset
from ..diffusion.losses import DiffusionConfig, generate, make_loss
from ..models.dit import DIT_PRESETS, DiT, DiTConfig, dit_config
from ..models.latents import decode_latents, encode_dataset
from ..models.pretrained import assets_dir
from ..models.unet import UNET_PRESETS, UNet, unet_config
from ..registry import load_model, read_config
from ..runtime import close_distributed, dist_info, fast_mode, init_distributed, pick_device
from ..threads import fastest_threads, requested_threads, thread_candidates
from ..viz import save_image_grid, save_loss_curve
from .config import TrainConfig, derive_seed
from .session import CHECKPOINT_NAME
from .trainer import EXPORT_NAME, fit

__all__ = [
    "Recipe",
    "RECIPES",
    "model_from_preset",
    "train_from_options",
    "sample_images",
    "quickstart",
    "measure_speed",
]


@dataclass(frozen=True)
class Recipe:
    """A named, complete training recipe (model preset, data, diffusion, training, sampling).

    `diffusion` holds `DiffusionConfig` fields; in FAST mode the `fast_*` values replace theirs.
    """

    preset: str = "tiny"
    data: str = "relics"
    image_size: int = 32
    n_images: int = 10_000
    diffusion: dict = field(default_factory=lambda: {"objective": "eps", "schedule": "linear"})
    train: TrainConfig = TrainConfig(
        steps=3000,
        batch_size=64,
        lr=3e-4,
        ema_decay=0.999,
        checkpoint_every=250,
        class_dropout_prob=0.1,
    )
    minutes: float = 5.0
    sampler: str = "ddim"
    sample_steps: int = 50
    cfg_scale: float = 2.0
    samples_per_class: int = 8
    fast_steps: int = 30
    fast_n_images: int = 512
    fast_sample_steps: int = 10
    fast_samples_per_class: int = 4


# The one place where the quickstart's parameters live, measured in assets/ttr/RESULTS.md (issue 4):
# flow matching with logit-normal times on the nano DiT, a high learning rate and a small batch
# reach about 90 % class accuracy after 48,000 training images, while the Recipe() defaults (tiny
# DiT, eps, linear schedule, lr 3e-4) are still at chance level after 96,000.
RECIPES: dict[str, Recipe] = {
    "quickstart": Recipe(
        preset="nano",
        n_images=20_000,
        diffusion={"objective": "flow", "schedule": "linear", "time_sampling": "logit_normal"},
        train=TrainConfig(
            steps=2600,
            batch_size=16,
            lr=4e-3,
            adam_beta2=0.95,
            warmup_steps=100,
            ema_decay=0.995,
            checkpoint_every=500,
            class_dropout_prob=0.1,
        ),
        minutes=2.3,
        sampler="euler",
        sample_steps=20,
        cfg_scale=3.0,
    ),
}


def model_from_preset(
    preset: str,
    image_size: int,
    num_classes: int,
    class_dropout_prob: float,
    in_channels: int = 3,
    patch_size: int | None = None,
):
    """A DiT ('tiny', 'DiT-S/2', ...) or U-Net ('unet-tiny', ...) preset for the data's shape;
    `patch_size` overrides a DiT preset's (e.g. 1 or 2 on 8x8 latents)."""
    kwargs = dict(
        input_size=image_size, num_classes=num_classes, class_dropout_prob=class_dropout_prob
    )
    kwargs["in_channels"] = in_channels
    if preset in UNET_PRESETS:
        return UNet(unet_config(preset, **kwargs))
    if preset not in DIT_PRESETS:
        known = sorted(DIT_PRESETS) + sorted(UNET_PRESETS)
        raise ValueError(f"unknown preset {preset!r}; choose one of {known}")
    if patch_size is not None:
        kwargs["patch_size"] = patch_size
    return DiT(dit_config(preset, **kwargs))


def train_from_options(args: argparse.Namespace, budget_s: float | None = None):
    """Load the data, build model and loss from the options, then `fit`; returns the TrainResult."""
    known = [f.name for f in fields(DiffusionConfig) if getattr(args, f.name, None) is not None]
    diffusion = DiffusionConfig(**{name: getattr(args, name) for name in known})
    names = [f.name for f in fields(TrainConfig) if hasattr(args, f.name)]
    config = TrainConfig(**{name: getattr(args, name) for name in names})
    data = load_dataset(args.data, train=True, n=args.n_images, size=args.image_size)
    run_config = {
        "diffusion": asdict(diffusion),
        "data": {"name": str(args.data), "n": len(data), "classes": list(data.classes)},
    }
    if getattr(args, "vae", None):  # latent diffusion: train on the VAE's (scaled) latents
        data, run_config["latent"] = _encode_for_latent_training(args.vae, data, args.device)
    C, size = data.images.shape[1], data.images.shape[-1]
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, global RNG left alone
        torch.manual_seed(derive_seed(args.seed, "init"))
        patch = getattr(args, "patch_size", None)
        dropout = args.class_dropout_prob
        model = model_from_preset(args.preset, size, data.num_classes, dropout, C, patch)
    info = dist_info()
    start = time.perf_counter()

    def out_of_time(step: int, loss: float) -> bool:
        return budget_s is not None and time.perf_counter() - start > budget_s

    device = pick_device(args.device)
    init_distributed(device)
    try:
        return fit(
            model,
            make_loss(diffusion),
            data,
            config,
            out_dir=args.out,
            resume=args.resume,
            device=device,
            quiet=args.quiet or not info.is_main,
            callback=out_of_time if budget_s is not None else None,
            run_config=run_config,
            threads=getattr(args, "threads", None),
            overwrite=getattr(args, "overwrite", False),
        )
    finally:
        close_distributed()


def _encode_for_latent_training(vae_path, data, device=None):
    """Encode a dataset with a VAE file; returns the latent dataset and the run-config entry."""
    vae = load_model(vae_path, device=pick_device(device))
    sha1 = hashlib.sha1(Path(vae_path).read_bytes()).hexdigest()
    latents = encode_dataset(vae, data)
    return latents, {"vae": str(vae_path), "vae_sha1": sha1, "image_size": data.images.shape[-1]}


def _decoder(config: dict, device, vae_path=None):
    """For a latent model, a function latents -> images (its VAE); None for a pixel model."""
    if "latent" not in config:
        return None

    path = Path(vae_path or config["latent"]["vae"])
    if not path.is_file() and not path.is_absolute():  # a shipped VAE, seen from another folder
        path = assets_dir() / path.name
    if not path.is_file():
        raise FileNotFoundError(
            f"this latent model decodes with the VAE {path}, which is missing; pass its path"
        )
    vae = load_model(path, device=device)
    return lambda z: decode_latents(vae, z)


def sample_images(
    checkpoint, n, sampler=None, steps=50, cfg_scale=1.0, label=None, seed=0, device=None,
    batch=256, vae=None, threads=None,
):  # fmt: skip
    """Draw n samples from a checkpoint or export, one class per grid row when conditional.

    A latent model's samples are decoded with the VAE it was trained with (or the file `vae`).

    Shapes: -> images (n, C, H, W) in [-1, 1], labels (n,) or None.
    """
    if int(n) < 1 or int(batch) < 1 or int(steps) < 1:
        raise ValueError(
            f"n={n}, batch={batch} and steps={steps} must all be >= 1 (--n, --batch-size, --steps)"
        )
    if not math.isfinite(cfg_scale) or cfg_scale < 0:
        raise ValueError(
            f"cfg_scale={cfg_scale} is not a usable guidance scale; use a finite number >= 0 "
            "(1 = no guidance, 2 to 4 sharpen class features)"
        )
    device = pick_device(device)
    config = read_config(checkpoint)
    model = load_model(checkpoint, device=device)
    decode = _decoder(config, device, vae)
    diffusion = DiffusionConfig(**config.get("diffusion", {}))
    num_classes = config["model"].get("num_classes", 0)
    y = None
    if num_classes and label is not None:
        if not 0 <= label < num_classes:
            raise ValueError(
                f"--class {label} is out of range; this model knows 0..{num_classes - 1}"
            )
        y = torch.full((n,), label, dtype=torch.long)
    elif num_classes:
        y = torch.arange(n) // -(-n // num_classes)  # equal blocks of consecutive classes
    generator = torch.Generator().manual_seed(seed)
    chunks, saved_threads = [], torch.get_num_threads()
    with torch.no_grad(), contextlib.ExitStack() as stack:
        if device.type == "cpu":
            stack.callback(torch.set_num_threads, saved_threads)
            _choose_sampling_threads(model, config["model"], min(batch, n), y, threads)
        for lo in range(0, n, batch):
            yb = None if y is None else y[lo : lo + batch]
            x = generate(
                model, diffusion, min(batch, n - lo), y=yb, sampler=sampler, steps=steps,
                cfg_scale=cfg_scale, generator=generator,
            )  # fmt: skip
            chunks.append((decode(x) if decode else x).cpu())
    return torch.cat(chunks).clamp(-1, 1), y


def _choose_sampling_threads(model, described: dict, batch: int, y, threads) -> None:
    """The fixed thread count, or the fastest one for this model and batch right now."""
    fixed = requested_threads(threads)
    if fixed is not None:
        torch.set_num_threads(fixed)
        return
    size, channels = described.get("input_size", 32), described.get("in_channels", 3)
    x = torch.zeros(batch, channels, size, size)
    t = torch.full((batch,), 500, dtype=torch.long)
    yb = None if y is None else y[:batch]
    fastest_threads(lambda: model(x, t, yb), thread_candidates(torch.get_num_threads()), repeats=1)


def quickstart(
    out: str | Path = "quickstart",
    minutes: float | None = None,
    steps: int | None = None,
    recipe: str = "quickstart",
    device: str | None = None,
    quiet: bool = False,
    threads: int | None = None,
) -> dict:
    """Train a recipe's model for a few minutes (continuing a run saved in `out`), then write a
    sample grid with a row per class, a loss curve and the checkpoint; returns their paths."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {sorted(RECIPES)}")
    recipe, fast = RECIPES[recipe], fast_mode()
    config, out = recipe.train, Path(out)
    train_args = argparse.Namespace(
        **asdict(config),
        **recipe.diffusion,
        preset=recipe.preset,
        data=recipe.data,
        n_images=recipe.fast_n_images if fast else recipe.n_images,
        image_size=recipe.image_size,
        out=out,
        resume="auto",
        device=device,
        quiet=quiet,
        threads=threads,
    )
    if steps is not None and steps < 1:
        raise ValueError(f"steps={steps}: train at least 1 step (or leave it out for the recipe's)")
    if minutes is not None and not minutes > 0:
        raise ValueError(f"minutes={minutes}: give a positive training budget in minutes")
    train_args.steps = steps if steps is not None else (recipe.fast_steps if fast else config.steps)
    start = time.perf_counter()
    minutes = minutes if minutes is not None else recipe.minutes
    result = train_from_options(train_args, budget_s=60 * minutes)
    classes = read_config(out / CHECKPOINT_NAME)["data"]["classes"]
    per_class = recipe.fast_samples_per_class if fast else recipe.samples_per_class
    images, _ = sample_images(
        out / CHECKPOINT_NAME, per_class * len(classes), recipe.sampler,
        recipe.fast_sample_steps if fast else recipe.sample_steps, recipe.cfg_scale,
        seed=config.seed, device=device, threads=threads,
    )  # fmt: skip
    grid = save_image_grid(images, out / "samples.png", nrow=per_class, row_labels=classes)
    curve = save_loss_curve(
        result.history, out / "loss.png", title=f"{recipe.preset} on {recipe.data}"
    )
    return dict(
        seconds=time.perf_counter() - start, result=result, samples=grid, loss_curve=curve,
        checkpoint=out / CHECKPOINT_NAME, weights=out / EXPORT_NAME,
    )  # fmt: skip


def measure_speed(preset="tiny", batch_size=64, steps=20, warmup=3, device=None, image_size=32):
    """Training speed of a preset in images per second, on random data, after `warmup` steps."""
    n = 4 * batch_size
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(n, 3, image_size, image_size, generator=g) * 2 - 1, torch.arange(n) % 10)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model_from_preset(preset, image_size, 10, DiTConfig.class_dropout_prob)
    marks = {}

    def clock(step: int, loss: float) -> None:
        if step == warmup:
            marks["start"] = time.perf_counter()

    config = TrainConfig(steps=warmup + steps, batch_size=batch_size)
    result = fit(model, make_loss(), data, config, device=device, quiet=True, callback=clock)
    seconds = time.perf_counter() - marks["start"]
    device = next(result.model.parameters()).device
    speed = steps * batch_size / seconds
    return dict(preset=preset, batch_size=batch_size, images_per_second=speed, device=str(device),
                threads=torch.get_num_threads())  # fmt: skip
