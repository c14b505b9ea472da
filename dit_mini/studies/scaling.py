"""The scaling study: a grid of toy DiTs trained on the same images, graded against their Gflops.

The DiT paper (Peebles & Xie, arXiv 2212.09748, Sec. 5 and Figs. 2, 6, 8) trains twelve DiTs
(sizes S, B, L, XL; patch sizes 8, 4, 2) and finds that FID falls as forward-pass Gflops grow,
whether the Gflops come from a wider, deeper network or from more tokens (a smaller patch). Here
the same experiment runs at toy scale on 32x32 Relics: three sizes (`TOY_SIZES`) times three
patch sizes, each trained for the same number of images with the fast CPU recipe of
assets/ttr/RESULTS.md (`dit_mini.studies.ttr.RECIPES['nano-flow']`), then graded: final training
loss,
FID in relic-classifier features beside the real-vs-real floor, class accuracy, Gflops, params
and training speed. Each finished config is appended as one JSON line, so a killed run keeps its
rows and continues where it stopped.

    python -m dit_mini.studies.scaling --out runs/scaling.jsonl --images 5120

Notebook 09 (DPS) plots the shipped results (assets/scaling/); the block-cost formulas by hand
(`block_gflops`, `attention_gflops`) live with the counted ones in `dit_mini.metrics.flops`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from ..data.datasets import load_dataset
from ..diffusion.losses import DiffusionConfig, generate, make_loss
from ..metrics.evaluation import evaluate_samples, feature_extractor
from ..metrics.flops import gflops_report
from ..models.dit import DiT, DiTConfig, dit_config
from ..runtime import machine_info
from ..train.config import derive_seed
from ..train.trainer import fit
from .ttr import get_recipe

__all__ = [
    "TOY_SIZES",
    "PATCH_SIZES",
    "GRID",
    "FAST_GRID",
    "grid_config",
    "num_tokens",
    "run_scaling_study",
    "load_results",
    "format_results",
    "main",
]

# Toy counterparts of the paper's S/B/L sizes for 32x32 images; "M" is the `nano` preset.
TOY_SIZES: dict[str, dict] = {
    "S": dict(hidden_size=48, depth=2, num_heads=2),
    "M": dict(hidden_size=96, depth=4, num_heads=3),
    "L": dict(hidden_size=128, depth=6, num_heads=4),
}
PATCH_SIZES = (8, 4, 2)  # 16, 64 and 256 tokens on a 32x32 image
GRID = tuple(f"{size}/{p}" for size in TOY_SIZES for p in PATCH_SIZES)
FAST_GRID = ("S/8", "M/8")  # the two cheapest configs: what FAST mode re-runs
LOSS_CURVE_BLOCK = 10  # training steps averaged into one point of a row's loss curve
FINAL_LOSS_STEPS = 50  # the final loss is the mean over these last training steps


def grid_config(name: str, input_size: int = 32, **overrides) -> DiTConfig:
    """The DiTConfig of a grid name 'SIZE/PATCH' ('S/8', 'M/4', 'L/2', ...)."""
    size, _, patch = name.partition("/")
    if size not in TOY_SIZES or not patch.isdigit():
        raise ValueError(
            f"unknown grid config {name!r}; write SIZE/PATCH with SIZE in {sorted(TOY_SIZES)} "
            f"and PATCH a divisor of the image size, e.g. 'M/4'"
        )
    base = dict(TOY_SIZES[size], patch_size=int(patch), input_size=input_size)
    return dit_config("nano", **{**base, **overrides})


def num_tokens(input_size: int, patch_size: int) -> int:
    """Tokens of a square image cut into patch_size x patch_size patches: (H / P)^2."""
    if input_size % patch_size:
        raise ValueError(f"patch_size {patch_size} must divide input_size {input_size}")
    return (input_size // patch_size) ** 2


def _loss_curve(history: list[float], batch_size: int) -> list[list[float]]:
    """[images seen, mean loss] for each block of LOSS_CURVE_BLOCK steps."""
    curve = []
    for end in range(LOSS_CURVE_BLOCK, len(history) + 1, LOSS_CURVE_BLOCK):
        block = history[end - LOSS_CURVE_BLOCK : end]
        curve.append([end * batch_size, round(sum(block) / len(block), 5)])
    return curve


def _train_one(name, recipe, data, images, seed) -> tuple[dict, torch.nn.Module]:
    """Train one grid config for `images` training images; returns (row, EMA model)."""
    config = grid_config(
        name, recipe.image_size, num_classes=data.num_classes,
        class_dropout_prob=recipe.train.class_dropout_prob,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, global RNG left alone
        torch.manual_seed(derive_seed(seed, "init"))
        model = DiT(config)
    steps = images // recipe.train.batch_size
    train = replace(recipe.train, steps=steps, seed=seed, checkpoint_every=0)
    diffusion = DiffusionConfig(**recipe.diffusion)
    result = fit(model, make_loss(diffusion), data, train, quiet=True)
    cost = gflops_report(config, name=name)
    last = result.history[-FINAL_LOSS_STEPS:]
    row = dict(
        name=name, size=name.split("/")[0], patch_size=config.patch_size,
        hidden_size=config.hidden_size, depth=config.depth, num_heads=config.num_heads,
        tokens=cost["tokens"], params=cost["params"], gflops=cost["gflops"],
        images=steps * train.batch_size, steps=steps, batch_size=train.batch_size,
        final_loss=sum(last) / len(last), loss_curve=_loss_curve(result.history, train.batch_size),
        train_seconds=round(result.seconds, 2), images_per_second=result.images_per_second,
    )  # fmt: skip
    return row, result.ema


@torch.no_grad()
def _grade(ema, recipe, n_eval, seed, n_reference, extractor) -> dict:
    """Sample n_eval images from the EMA model (n_eval / K per class, the samples that
    `dit_mini.studies.ttr.evaluate` draws) and score them with `evaluation.evaluate_samples`."""
    K = ema.config.num_classes
    if n_eval < K or n_eval % K:
        raise ValueError(f"n_eval={n_eval} must be a positive multiple of the {K} classes")
    y = torch.arange(K).repeat_interleave(n_eval // K)
    start = time.perf_counter()
    images = generate(
        ema.eval(), DiffusionConfig(**recipe.diffusion), y=y, sampler=recipe.sampler,
        steps=recipe.sample_steps, cfg_scale=recipe.cfg_scale,
        generator=torch.Generator().manual_seed(derive_seed(seed, "eval")),
    ).clamp(-1, 1)  # fmt: skip
    seconds = time.perf_counter() - start
    scores = evaluate_samples(
        images, labels=y, n_reference=n_reference, seed=seed, extractor=extractor
    )
    keep = ("fid", "fid_floor", "kid", "kid_floor", "class_accuracy", "n", "n_reference")
    return {k: scores[k] for k in keep} | {"sample_seconds": round(seconds, 2)}


def load_results(path: str | Path) -> list[dict]:
    """The rows of a results file (one JSON object per line); [] if it does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def format_results(rows: list[dict]) -> str:
    """A fixed-width text table of study rows. 'GFLOP/s' is the arithmetic the training actually
    did per second: 3 x Gflops x images/s (a backward pass costs about two forward passes)."""
    head = (
        f"{'config':<6} {'params':>8} {'tokens':>6} {'Gflops':>8} {'img/s':>6} {'GFLOP/s':>7} "
        f"{'loss':>7} {'FID':>7} {'floor':>6} {'acc %':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        achieved = 3 * r["gflops"] * r["images_per_second"]
        lines.append(
            f"{r['name']:<6} {r['params'] / 1e6:>7.2f}M {r['tokens']:>6} {r['gflops']:>8.4f} "
            f"{r['images_per_second']:>6.0f} {achieved:>7.1f} {r['final_loss']:>7.4f} "
            f"{r['fid']:>7.2f} {r['fid_floor']:>6.2f} {100 * r['class_accuracy']:>6.0f}"
        )
    return "\n".join(lines)


def run_scaling_study(
    grid=GRID, images: int = 5120, out: str | Path | None = None, recipe="nano-flow",
    n_eval: int = 100, n_reference: int = 5000, seed: int = 0, data=None, quiet: bool = True,
) -> list[dict]:  # fmt: skip
    """Train every grid config for the same number of images and grade it; returns the rows.

    With `out` (a .jsonl file) each finished row is appended at once, and configs already in the
    file with the same images, recipe and seed are skipped (a killed run continues). `data`
    defaults to the recipe's training relics. `quiet=False` prints a line per finished config.
    """
    recipe_name = recipe if isinstance(recipe, str) else "custom"
    recipe = get_recipe(recipe)
    if images < recipe.train.batch_size:
        raise ValueError(f"images={images} is less than one batch of {recipe.train.batch_size}")
    for name in grid:
        grid_config(name)  # fail on a bad name before any training
    done = {r["name"]: r for r in load_results(out)} if out else {}
    for row in done.values():
        if (row["images"], row["recipe"], row["seed"]) != (images, recipe_name, seed):
            raise ValueError(
                f"{out} holds {row['name']} trained on {row['images']} images ({row['recipe']}, "
                f"seed {row['seed']}); write these runs to another --out file"
            )
    if data is None and any(name not in done for name in grid):
        data = load_dataset(recipe.data, train=True, n=recipe.n_images, size=recipe.image_size)

    extractor, rows = feature_extractor("relic"), []
    for name in grid:
        if name in done:
            rows.append(done[name])
            continue
        row, ema = _train_one(name, recipe, data, images, seed)
        row |= _grade(ema, recipe, n_eval, seed, n_reference, extractor)
        row |= dict(recipe=recipe_name, seed=seed, machine=machine_info(), finished=time.time())
        rows.append(row)
        if out:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")
        if not quiet:
            print(f"{name}: loss {row['final_loss']:.4f}, FID {row['fid']:.2f}", flush=True)
    return rows


def main(argv=None) -> None:
    """python -m dit_mini.studies.scaling --out FILE.jsonl --images N [--grid ...]

    The study writes data; `python -m dit_mini.course.viz_dps FILE.jsonl PNG` draws it."""
    p = argparse.ArgumentParser(description="DiT scaling study on Relics")
    p.add_argument("--out", required=True, help="results file (JSON lines), appended to")
    p.add_argument("--images", type=int, default=5120, help="training images per config")
    p.add_argument("--grid", nargs="+", default=list(GRID), help=f"default: {' '.join(GRID)}")
    p.add_argument("--recipe", default="nano-flow")
    p.add_argument("--n-eval", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run_scaling_study(
        args.grid, args.images, args.out, args.recipe, args.n_eval, seed=args.seed, quiet=False
    )
    print(format_results(rows))


if __name__ == "__main__":
    main()
