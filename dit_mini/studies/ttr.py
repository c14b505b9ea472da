"""Time to recognizable: how many CPU minutes a training recipe needs before its samples are relics.

A recipe (model preset, diffusion objective, optimizer, EMA, sampler) is trained on Relics for a
wall-clock budget. Every `eval_every_s` seconds of training the clock stops, the EMA model draws
class-conditional samples and the relic classifier (`dit_mini.metrics.classifier`) grades them:
class
accuracy (did we get a sword when we asked for one?) and FID in the classifier's feature space,
beside the real-vs-real floor. The curves say which recipe becomes recognizable first.

`RECIPES` holds the candidates measured in assets/ttr/RESULTS.md; `quickstart` is the recipe that
`dit-mini quickstart` trains (`dit_mini.train.recipes.RECIPES`).

    python -m dit_mini.studies.ttr --recipe quickstart --minutes 5 --out runs/ttr-quickstart
    python -m dit_mini.studies.ttr --plot runs/a/ttr.json runs/b/ttr.json --out curves.png

Used by notebook 03 (clearing the fog) and notebook 09 (DPS), which compare recipes.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from matplotlib.figure import Figure

from ..data.datasets import load_dataset
from ..diffusion.losses import DiffusionConfig, generate, make_loss
from ..metrics.classifier import score_samples
from ..models.dit import DiT, dit_config
from ..models.pretrained import load_pretrained
from ..runtime import machine_info
from ..train.config import TrainConfig, derive_seed
from ..train.recipes import RECIPES as TRAIN_RECIPES
from ..train.recipes import Recipe
from ..train.trainer import fit
from ..viz import save_image_grid

__all__ = [
    "RECIPES",
    "get_recipe",
    "build_run",
    "evaluate",
    "train_and_grade",
    "run_ttr",
    "plot_ttr",
    "main",
]

ACCURACY_GOAL = 0.8  # "recognizable": 80 % of samples classified as the class asked for
_now = time.perf_counter  # the benchmark's clock (tests replace it with a fake one)


def _nano(diffusion: dict, sampler: str, lr: float = 3e-3, batch_size: int = 16) -> Recipe:
    """The nano DiT (width 96, depth 4, patch 4) with the short-budget training of the sweep."""
    return Recipe(
        preset="nano",
        n_images=20_000,
        diffusion=diffusion,
        train=TrainConfig(
            cfg_dropout=0.1,
            steps=10**6,
            batch_size=batch_size,
            lr=lr,
            warmup_steps=100,
            ema_decay=0.995,
        ),
        sampler=sampler,
        sample_steps=20,
        cfg_scale=3.0,
    )


FLOW = {"objective": "flow", "time_sampling": "logit_normal"}
RECIPES: dict[str, Recipe] = {
    "quickstart": TRAIN_RECIPES["quickstart"],
    # The recipe that still drew blobs after 30 CPU minutes (issue 4): eps, linear, low lr.
    "reference": Recipe(
        preset="tiny",
        diffusion={"objective": "eps", "schedule": "linear"},
        train=TrainConfig(cfg_dropout=0.1, steps=10**6, batch_size=64, lr=3e-4, ema_decay=0.999),
        sampler="ddim",
        sample_steps=50,
        cfg_scale=1.0,
    ),
    # The winner: flow matching with logit-normal times, a small model, a high learning rate.
    "nano-flow": _nano(FLOW, "euler"),
    # The same network and optimizer with the other objectives (each measured slower).
    "nano-v": _nano({"objective": "v", "schedule": "cosine", "weighting": "min_snr"}, "ddim"),
    "nano-eps": _nano({"objective": "eps", "schedule": "linear"}, "ddim"),
    # Flow matching on the bigger tiny DiT: learns more per image, costs about 3x per image.
    "tiny-flow": replace(_nano(FLOW, "euler", lr=1e-3, batch_size=32), preset="tiny"),
}


def get_recipe(recipe: str | Recipe) -> Recipe:
    """A recipe by name (from `RECIPES`), or the recipe itself."""
    if isinstance(recipe, Recipe):
        return recipe
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {sorted(RECIPES)}")
    return RECIPES[recipe]


def build_run(recipe: Recipe, seed: int = 0):
    """The recipe's model (seeded initial weights), diffusion config and training data."""
    data = load_dataset(recipe.data, train=True, n=recipe.n_images, size=recipe.image_size)
    config = dit_config(
        recipe.preset,
        input_size=recipe.image_size,
        num_classes=data.num_classes,
        class_dropout_prob=recipe.train.cfg_dropout,
    )
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, global RNG left alone
        torch.manual_seed(derive_seed(seed, "init"))
        model = DiT(config)
    return model, DiffusionConfig(**recipe.diffusion), data


@torch.no_grad()
def evaluate(model, diffusion, recipe: Recipe, n_eval: int, classifier, seed: int = 0):
    """Draw n_eval class-conditional samples (n_eval / K per class) and grade them.

    Returns (scores, images): the keys of `classifier.score_samples` plus 'sample_seconds'.
    Shapes: images (n_eval, C, H, W) in [-1, 1], ordered class by class.
    """
    K = classifier.config.num_classes
    if n_eval < K or n_eval % K:
        raise ValueError(f"n_eval={n_eval} must be a positive multiple of the {K} classes")
    y = torch.arange(K).repeat_interleave(n_eval // K)
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    images = generate(
        model,
        diffusion,
        y=y,
        sampler=recipe.sampler,
        steps=recipe.sample_steps,
        cfg_scale=recipe.cfg_scale,
        generator=torch.Generator().manual_seed(derive_seed(seed, "eval")),
    ).clamp(-1, 1)
    model.train(was_training)
    seconds = time.perf_counter() - start
    return {**score_samples(images.cpu(), y, classifier), "sample_seconds": seconds}, images


class _Clock:
    """fit's callback: keeps an EMA twin, stops the training clock to evaluate every interval,
    and ends training when the budget of training seconds is spent."""

    def __init__(self, model, recipe, budget_s, eval_every_s, evaluate_fn):
        self.model, self.train_cfg = model, recipe.train
        self.ema = _frozen_copy(model)
        self.budget_s, self.every = budget_s, eval_every_s
        self.evaluate_fn, self.points, self.losses = evaluate_fn, [], []
        self.paused, self.next_eval = 0.0, eval_every_s
        self.start = _now()

    def elapsed(self) -> float:
        return _now() - self.start - self.paused

    @torch.no_grad()
    def __call__(self, step: int, loss: float) -> bool:
        # 1. The same EMA as the trainer keeps (decay of step - 1, with warm-up).
        decay = self.train_cfg.ema_decay_at(step - 1)
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p.detach().to(e), 1.0 - decay)
        self.losses.append(loss)
        # 2. At each interval (and at the end of the budget) stop the clock and evaluate.
        seconds = self.elapsed()
        done = seconds >= self.budget_s
        if seconds >= self.next_eval or done:
            self.record(step, seconds)
            self.next_eval = (int(seconds / self.every) + 1) * self.every
        return done

    def record(self, step: int, seconds: float) -> None:
        paused = _now()
        scores = self.evaluate_fn(self.ema)
        recent = self.losses[-50:]
        self.points.append(
            dict(
                train_seconds=round(seconds, 2),
                minutes=round(seconds / 60, 3),
                step=step,
                images=step * self.train_cfg.batch_size,
                loss=sum(recent) / len(recent),
                **scores,
            )
        )
        self.paused += _now() - paused


def _frozen_copy(model):
    return copy.deepcopy(model).requires_grad_(False)


class _StepGrader:
    """fit's callback: keeps an EMA twin and grades it every `every` steps and at `last`."""

    def __init__(self, model, train_cfg: TrainConfig, every: int, last: int, evaluate_fn):
        self.model, self.train_cfg, self.every, self.last = model, train_cfg, every, last
        self.ema, self.evaluate_fn = _frozen_copy(model), evaluate_fn
        self.points, self.losses = [], []

    @torch.no_grad()
    def __call__(self, step: int, loss: float) -> bool:
        decay = self.train_cfg.ema_decay_at(step - 1)  # the trainer's EMA, step for step
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p.detach().to(e), 1.0 - decay)
        self.losses.append(loss)
        if step % self.every == 0 or step == self.last:
            recent = self.losses[-50:]
            scores = self.evaluate_fn(self.ema)
            self.points.append(
                dict(
                    step=step,
                    images=step * self.train_cfg.batch_size,
                    loss=sum(recent) / len(recent),
                    **scores,
                )  # fmt: skip
            )
        return False


def train_and_grade(
    model,
    diffusion: DiffusionConfig,
    data,
    config: TrainConfig,
    every_steps: int,
    n_eval: int = 100,
    sampler: str | None = None,
    sample_steps: int = 20,
    cfg_scale: float = 3.0,
    classifier=None,
    seed: int = 0,
    quiet: bool = True,
    device: str | torch.device | None = None,
):
    """`fit` with the EMA graded every `every_steps` steps and at the end: n_eval guided samples
    (n_eval / 10 per class, the same noise every time) scored by the relic classifier.

    `device` goes to `fit` (None: CUDA, then MPS, then the CPU); the returned EMA lives there.

    Returns (the TrainResult, the points: dicts with 'step', 'images', 'loss' (mean of the last
    50 steps) and the keys of `score_samples`). Notebook 03 races eps against flow with it.
    """
    if every_steps < 1 or n_eval < 10 or n_eval % 10:
        raise ValueError(
            f"every_steps={every_steps} must be >= 1 and n_eval={n_eval} a positive multiple of 10"
        )
    classifier = classifier or load_pretrained("relic-classifier")
    y = torch.arange(10).repeat_interleave(n_eval // 10)

    @torch.no_grad()
    def grade(ema) -> dict:
        ema.eval()
        images = generate(
            ema, diffusion, y=y, sampler=sampler, steps=sample_steps, cfg_scale=cfg_scale,
            generator=torch.Generator().manual_seed(derive_seed(seed, "eval")),
        ).clamp(-1, 1)  # fmt: skip
        return score_samples(images.cpu(), y, classifier)

    grader = _StepGrader(model, config, every_steps, config.steps, grade)
    result = fit(
        model, make_loss(diffusion), data, config, device=device, quiet=quiet, callback=grader
    )
    return result, grader.points


def run_ttr(
    recipe_name: str | Recipe,
    minutes: float,
    out_dir: str | Path,
    eval_every_s: float = 60.0,
    n_eval: int = 100,
    seed: int = 0,
    quiet: bool = True,
) -> dict:
    """Train a recipe for `minutes` of training wall-clock, grading it every `eval_every_s`.

    Writes out_dir/ttr.json (recipe, machine, points), out_dir/ttr.png (the curves) and
    out_dir/samples.png (the last evaluation's samples, a row per class); returns the JSON dict.
    Evaluation time is not counted as training time.
    """
    if minutes <= 0 or eval_every_s <= 0:
        raise ValueError(f"minutes={minutes} and eval_every_s={eval_every_s} must be positive")
    recipe, out = get_recipe(recipe_name), Path(out_dir)
    machine = machine_info()
    # 1. Data, model, loss; a training run that only the clock stops.
    start = time.perf_counter()
    model, diffusion, data = build_run(recipe, seed)
    data_seconds = time.perf_counter() - start
    classifier, last = load_pretrained("relic-classifier"), {}

    def grade(ema):
        scores, last["images"] = evaluate(ema, diffusion, recipe, n_eval, classifier, seed)
        return scores

    clock = _Clock(model, recipe, 60.0 * minutes, eval_every_s, grade)
    config = replace(recipe.train, steps=10**9, seed=seed, checkpoint_every=0)
    fit(model, make_loss(diffusion), data, config, quiet=quiet, callback=clock)
    end = clock.points[-1]
    # 2. Write the record, the curves and the last samples.
    report = {
        "recipe": recipe_name if isinstance(recipe_name, str) else "custom",
        "config": _recipe_dict(recipe),
        "minutes": minutes,
        "seed": seed,
        "n_eval": n_eval,
        "machine": {**machine, "load_average_end": machine_info()["load_average"]},
        "data_seconds": round(data_seconds, 2),
        "images_per_second": end["images"] / max(end["train_seconds"], 1e-9),
        "goal_class_accuracy": ACCURACY_GOAL,
        "minutes_to_goal": next(
            (p["minutes"] for p in clock.points if p["class_accuracy"] >= ACCURACY_GOAL), None
        ),
        "points": clock.points,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "ttr.json").write_text(json.dumps(report, indent=1))
    plot_ttr([report], out / "ttr.png")
    per_class = n_eval // classifier.config.num_classes
    save_image_grid(last["images"], out / "samples.png", nrow=per_class, row_labels=data.classes)
    return report


def _recipe_dict(recipe: Recipe) -> dict:
    d = asdict(recipe)
    d["train"] = asdict(recipe.train)
    return d


def plot_ttr(reports: list[dict], path: str | Path) -> Path:
    """Class accuracy and FID against training minutes, one line per report, as a PNG."""
    if not reports:
        raise ValueError("no reports to plot; pass at least one run_ttr result")
    fig = Figure(figsize=(10, 3.8), dpi=100)
    acc_ax, fid_ax = fig.subplots(1, 2)
    for r in reports:
        minutes = [p["minutes"] for p in r["points"]]
        cfg, speed = r["config"], r["images_per_second"]
        objective = cfg["diffusion"]["objective"]
        label = f"{r['recipe']} ({cfg['preset']}, {objective}, {speed:.0f} img/s)"
        acc_ax.plot(minutes, [100 * p["class_accuracy"] for p in r["points"]], "o-", label=label)
        line = fid_ax.plot(minutes, [p["fid"] for p in r["points"]], "o-", label=label)[0]
        fid_ax.plot(
            minutes, [p["fid_floor"] for p in r["points"]], ":", color=line.get_color(), alpha=0.6
        )
    acc_ax.axhline(100 * ACCURACY_GOAL, color="gray", linestyle="--", linewidth=1)
    acc_ax.set(xlabel="training minutes", ylabel="class accuracy (%)", ylim=(0, 100))
    fid_ax.set(xlabel="training minutes", ylabel="FID (classifier features)", yscale="log")
    fid_ax.set_title("dotted: real-vs-real floor", fontsize=9)
    for ax in (acc_ax, fid_ax):
        ax.grid(alpha=0.3)
    acc_ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def main(argv=None) -> None:
    """python -m dit_mini.studies.ttr --recipe NAME --minutes M --out DIR (or --plot A B)."""
    p = argparse.ArgumentParser(description="time-to-recognizable benchmark")
    p.add_argument("--recipe", default="quickstart", help=f"one of {sorted(RECIPES)}")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--out", default=None, help="output folder (with --plot: the PNG file)")
    p.add_argument("--eval-every", type=float, default=60.0, help="seconds of training")
    p.add_argument("--n-eval", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--plot", nargs="+", default=None, help="ttr.json files to overlay")
    args = p.parse_args(argv)
    if args.plot:
        reports = [json.loads(Path(f).read_text()) for f in args.plot]
        print(plot_ttr(reports, args.out or "ttr.png"))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or f"runs/ttr-{args.recipe}"
    report = run_ttr(args.recipe, args.minutes, out, args.eval_every, args.n_eval, args.seed)
    for point in report["points"]:
        print(json.dumps({k: point[k] for k in ("minutes", "step", "class_accuracy", "fid")}))
    print(f"wrote {out}/ttr.json, ttr.png, samples.png")


if __name__ == "__main__":
    main()
