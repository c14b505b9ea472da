"""Notebook 03's race of eps against flow: `fit` with its EMA graded every few steps.

`train_and_grade` trains with the package's trainer (`dit_mini.train.trainer.fit`) and, through
fit's callback, keeps the same EMA as the trainer (`dit_mini.train.step.ema_update` with the
trainer's warm-up) and grades it every `every_steps` steps: guided samples scored by the relic
classifier (`dit_mini.metrics.classifier.score_samples`), the ruler of `dit_mini.studies.ttr`.

Used by notebook 03 (clearing the fog) and by `dit_mini.studies.recipe_race`.
"""

from __future__ import annotations

import copy

import torch

from ..diffusion.losses import DiffusionConfig, generate, make_loss
from ..metrics.classifier import score_samples
from ..models.pretrained import load_pretrained
from ..train.config import TrainConfig, derive_seed
from ..train.step import ema_update
from ..train.trainer import fit

__all__ = ["train_and_grade"]


class _StepGrader:
    """fit's callback: keeps an EMA twin and grades it every `every` steps and at `last`."""

    def __init__(self, model, train_cfg: TrainConfig, every: int, last: int, evaluate_fn):
        self.model, self.train_cfg, self.every, self.last = model, train_cfg, every, last
        self.ema = copy.deepcopy(model).requires_grad_(False)
        self.evaluate_fn = evaluate_fn
        self.points, self.losses = [], []

    @torch.no_grad()
    def __call__(self, step: int, loss: float) -> bool:
        ema_update(self.ema, self.model, self.train_cfg.ema_decay_at(step - 1))  # the trainer's
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
