"""The options of the `dit-mini` subcommands: tables that `dit_mini.cli.main` turns into argparse.

Each row is (flag, type, default, help[, "required"]); type bool makes an on/off switch,
"append" a repeatable option and "auto" a switch that also takes the word auto. The training and
diffusion options are generated from the fields of `TrainConfig` and `DiffusionConfig`
(`config_options`: name, type, default and the `help` text kept beside each field), so the
command line and the Python API cannot drift apart.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from ..diffusion.losses import DiffusionConfig
from ..models.dit import DiTConfig
from ..train.config import TrainConfig
from ..train.recipes import RECIPES

__all__ = [
    "TRAIN_OPTIONS",
    "DEVICE_OPTIONS",
    "SAMPLE_OPTIONS",
    "FID_OPTIONS",
    "QUICKSTART_OPTIONS",
    "BENCH_OPTIONS",
    "GFLOPS_OPTIONS",
    "DEPRECATED_FLAGS",
    "config_options",
    "add_options",
]

# Old spellings still accepted, each with a note naming the new flag: {old: new}.
DEPRECATED_FLAGS = {"--cfg-dropout": "--class-dropout-prob"}


def _option_type(f) -> type:
    """int, float or str from a field's annotation ('float | None' -> float)."""
    names = {"int": int, "float": float, "str": str}
    if f.type in names.values():
        return f.type
    parts = [getattr(p, "__name__", p) for p in getattr(f.type, "__args__", ())]
    parts = parts or [p.strip() for p in str(f.type).split("|")]  # a postponed annotation
    return next(names[p] for p in parts if p in names)


def config_options(config_cls: type, defaults: dict | None = None) -> list[tuple]:
    """Option rows generated from a config dataclass: one per field whose metadata has a
    `help` text, flag --field-name, the field's type and default (or `defaults[name]`)."""
    defaults = defaults or {}
    return [
        (f"--{f.name.replace('_', '-')}", _option_type(f), defaults.get(f.name, f.default),
         f.metadata["help"])
        for f in fields(config_cls)
        if "help" in f.metadata
    ]  # fmt: skip


# fmt: off
# (flag, type, default, help); type bool makes an on/off switch.
TRAIN_OPTIONS = [
    ("--preset", str, "tiny", "model preset: a DiT ('nano', 'tiny', 'small', 'DiT-S/2' ... "
     "'DiT-XL/8') or a U-Net ('unet-nano', 'unet-tiny', 'unet-small')"),
    ("--data", str, "relics", "'relics' (generated offline), 'cifar10' (downloaded once, cached) "
     "or the path of a folder of images"),
    ("--n-images", int, None, "use the first N images (relics: generate N; default: all, "
     "50,000 relics)"),
    ("--image-size", int, 32, "image side in pixels; images are resized to it"),
    ("--patch-size", int, None, "override the DiT preset's patch size (e.g. 1 or 2 for 8x8 "
     "latents)"),
    # the model's label dropout is set through --class-dropout-prob; checkpoints every 500
    *config_options(
        TrainConfig, {"class_dropout_prob": DiTConfig.class_dropout_prob, "checkpoint_every": 500}
    ),
    *config_options(DiffusionConfig),
    ("--out", Path, None, "folder for checkpoint.pt and ema.safetensors (default: "
     "runs/PRESET-DATA)"),
    ("--vae", str, None, "train a latent DiT on the latents of this VAE file (e.g. "
     "assets/vae.safetensors); its samples are decoded with it"),
    ("--minutes", float, None, "also stop after this many minutes of training (the checkpoint "
     "is written; --resume continues)"),
    ("--overwrite", bool, False, "start a new run even if --out holds an ema.safetensors of "
     "another run (it is replaced at the end)"),
    ("--resume", "auto", False, "continue the run saved in --out (it must have the same options, "
     "except --steps, --checkpoint-every and --log-every); '--resume auto' continues a run if "
     "there is one and starts one otherwise"),
]
DEVICE_OPTIONS = [
    ("--device", str, None, "cpu, cuda, cuda:1 or mps (default: the best available)"),
    ("--quiet", bool, False, "no progress bar and no summary"),
    ("--threads", int, None, "torch CPU threads; default: measured while it runs, the fastest "
     "count now (DIT_MINI_THREADS=N also fixes it)"),
]
SAMPLE_OPTIONS = [
    ("--checkpoint", str, None, "a checkpoint.pt or ema.safetensors file", "required"),
    ("--n", int, 64, "number of samples"),
    ("--sampler", str, None, "ddim or ddpm (all steps) for eps/v/x0 models, euler or heun for "
     "flow models (default: ddim or euler)"),
    ("--steps", int, 50, "sampling steps (ddim, euler, heun)"),
    ("--cfg-scale", float, 1.0, "classifier-free guidance scale (1: none; 2 to 4 sharpen "
     "class features)"),
    ("--class", int, None, "sample only class K (default: every class, one grid row each)"),
    ("--seed", int, 0, "seed of the sampling noise"),
    ("--out", str, "samples.png", "PNG file for the grid of samples"),
    ("--nrow", int, None, "images per grid row"),
    ("--save-samples", str, None, "also save the raw samples (a .pt dict: images in [-1, 1], "
     "labels), e.g. for FID"),
    ("--batch-size", int, 256, "samples drawn at once"),
    ("--device", str, None, "cpu, cuda or mps (default: the best available)"),
    ("--threads", int, None, "torch CPU threads; default: measured while it runs, the fastest "
     "count now (DIT_MINI_THREADS=N also fixes it)"),
]
FID_OPTIONS = [
    ("--checkpoint", str, None, "draw the samples from this checkpoint.pt or ema.safetensors"),
    ("--samples", str, None, "or read them from a file written by `dit-mini sample "
     "--save-samples`"),
    ("--n", int, 1000, "number of samples (FID is biased upward at small n: compare like n)"),
    ("--n-reference", int, None, "real images in the reference set (default: max(n, 2000))"),
    ("--features", str, "relic", "'inception' (standard FID, slow on a CPU) or 'relic' (the "
     "Relics classifier's features, fast)"),
    ("--dataset", str, "relics", "real data to compare with: relics or cifar10"),
    *SAMPLE_OPTIONS[2:5],  # --sampler --steps --cfg-scale
    ("--seed", int, 0, "seed of the sampling noise"),
    ("--batch-size", int, 256, "samples drawn at once"),
    ("--device", str, None, "cpu, cuda or mps (default: the best available)"),
    ("--threads", int, None, "torch CPU threads; default: measured while it runs, the fastest "
     "count now (DIT_MINI_THREADS=N also fixes it)"),
    ("--json", bool, False, "print JSON: fid, kid, kid_std, n, n_reference, fid_floor, "
     "kid_floor, features, dataset (and class_accuracy for class-conditional relic models)"),
]
QUICKSTART_OPTIONS = [
    ("--out", str, "quickstart", "output folder (running again continues the run saved there)"),
    ("--minutes", float, None, "wall-clock training budget (default: the recipe's, "
     f"{RECIPES['quickstart'].minutes:g}); training stops at the budget or the recipe's steps"),
    ("--steps", int, None, "training steps (default: the recipe's, fewer in FAST mode)"),
    ("--recipe", str, "quickstart", f"named recipe, one of {sorted(RECIPES)}"),
    *DEVICE_OPTIONS,
]
BENCH_OPTIONS = [
    ("--under-load", int, None, "speed: instead, train the quickstart recipe idle and with K busy "
     "processes beside it, with the trainer's thread choice and with fixed 1 and N threads"),
    ("--load-seconds", float, 20.0, "--under-load: seconds of training per row"),
    ("--preset", "append", None, "DiT preset to time; repeat for several (default: tiny and "
     "DiT-S/4; the first one is also timed sampling)"),
    ("--batch-size", int, 64, "batch size of the training and sampling steps"),
    ("--seconds", float, 2.0, "length of each timing window"),
    ("--windows", int, 3, "timing windows per measurement (the median is reported)"),
    ("--ddim-steps", int, 50, "DDIM steps of the sampling measurement (DDPM takes all 1000)"),
    ("--compile", bool, False, "torch.compile the model (the compile time is reported apart)"),
    ("--no-fused", bool, False, "plain for-each AdamW instead of the fused one"),
    ("--json", bool, False, "print the result as JSON"),
    ("--device", str, None, "cpu, cuda or mps (default: the best available)"),
    ("--recipe", str, "quickstart", "ttr: named recipe of dit_mini.studies.ttr.RECIPES"),
    ("--minutes", float, 5.0, "ttr: minutes of training (evaluations not counted)"),
    ("--eval-every", float, 60.0, "ttr: seconds of training between evaluations"),
    ("--n-eval", int, 100, "ttr: samples per evaluation (10 per class)"),
    ("--seed", int, 0, "ttr: seed of the run"),
    ("--threads", int, None, "torch CPU threads (default: torch's)"),
    ("--out", str, None, "speed: also write the JSON result to this file; ttr: output folder "
     "(default: runs/ttr-RECIPE)"),
]
GFLOPS_OPTIONS = [
    ("--input-size", int, 32, "image or latent side in pixels"),
    ("--in-channels", int, 3, "input channels (3 for RGB, 4 for VAE latents)"),
    ("--num-classes", int, 10, "number of classes"),
    ("--learn-sigma", bool, False, "the model also predicts the variance (as the paper's models)"),
    ("--json", bool, False, "print JSON instead of a table"),
]
# fmt: on


class _DeprecatedFlag(argparse.Action):
    """An old flag: stores into the new flag's destination and prints a deprecation note."""

    def __init__(self, option_strings, dest, new_flag: str, **kwargs):
        self.new_flag = new_flag
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(
            f"note: {option_string} is deprecated and will be removed; use {self.new_flag} "
            "(the same setting)",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def _add_deprecated_aliases(parser: argparse.ArgumentParser, flag: str, kind) -> None:
    for old, new in DEPRECATED_FLAGS.items():
        if new == flag:
            parser.add_argument(
                old, type=kind, dest=flag[2:].replace("-", "_"), action=_DeprecatedFlag,
                new_flag=new, default=argparse.SUPPRESS, help=argparse.SUPPRESS,
            )  # fmt: skip


def add_options(parser: argparse.ArgumentParser, options: list) -> None:
    """Add the options of one table to a parser (and the deprecated spellings of its flags)."""
    for flag, kind, default, text, *required in options:
        _add_deprecated_aliases(parser, flag, kind)
        dest = "label" if flag == "--class" else None  # `args.class` would be a syntax error
        extra = {"dest": dest} if dest else {}
        if kind is bool:
            parser.add_argument(flag, action="store_true", help=text, **extra)
        elif kind == "auto":  # --flag (True), --flag auto ("auto"), or absent (the default)
            parser.add_argument(
                flag, nargs="?", const=True, default=default, choices=(True, "auto"),
                metavar="auto", help=text, **extra,
            )  # fmt: skip
        elif kind == "append":
            parser.add_argument(flag, action="append", default=default, help=text, **extra)
        else:
            parser.add_argument(
                flag, type=kind, default=default, required=bool(required), help=text, **extra
            )
