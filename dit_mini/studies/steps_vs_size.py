"""Sampling steps against model size: can a small model with many steps match a big one with few?

The DiT paper (Peebles & Xie, arXiv 2212.09748, Fig. 10) sampled every DiT with more and more
steps and set FID against the total compute of sampling (Gflops per step times steps): at equal
sampling compute the bigger model with fewer steps wins, and no number of steps lets a small
model catch up with a big one. `steps_vs_size` repeats that measurement on relics with two
trained DiTs (the shipped `dit-tiny` and the `nano` of `assets/steps_vs_size/`): each model samples
the same labels from the same starting noise at several step counts, and each run is graded by
the relic classifier (class accuracy, FID in its features beside the real-vs-real floor) and
priced by `sampling_bill`; `halving_ratios` reads off what halving the steps did to FID (the
prediction exercise of notebook 09). Taught in notebook 09 (DPS).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import torch

from ..diffusion.losses import DiffusionConfig, generate
from ..metrics.classifier import score_samples
from ..metrics.flops import count_gflops
from ..models.pretrained import load_pretrained

__all__ = ["sampling_bill", "steps_vs_size", "halving_ratios"]


def sampling_bill(
    gflops_per_pass: float, steps: int, guidance: bool = True, decoder_gflops: float = 0.0
) -> float:
    """Gflops of one finished sample: `steps` network passes (two per step with classifier-free
    guidance: the conditional and the null-class pass), plus one decoder pass for a latent model.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    if gflops_per_pass <= 0:
        raise ValueError(f"gflops_per_pass must be > 0; got {gflops_per_pass}")
    return steps * (2 if guidance else 1) * gflops_per_pass + decoder_gflops


@torch.no_grad()
def steps_vs_size(
    models: Mapping[str, tuple[torch.nn.Module, DiffusionConfig]],
    step_counts: Mapping[str, Sequence[int]],
    per_class: int,
    num_classes: int = 10,
    cfg_scale: float = 3.0,
    sampler: str = "euler",
    seed: int = 0,
    classifier=None,
) -> list[dict]:
    """Sample every model at each of its step counts and grade each run.

    `models` maps a name to (model, its DiffusionConfig); `step_counts` maps the same names to
    the step counts to try. Every run draws `per_class` samples of every class from the same
    starting noise (seed `seed`); `classifier` grades them (default: the shipped relic
    classifier). Returns one row per run: {'name', 'steps', 'gflops_per_pass',
    'gflops_per_sample', 'seconds', 'class_accuracy', 'fid', 'fid_floor', 'n'}.
    """
    missing = sorted(set(models) - set(step_counts))
    if missing:
        raise ValueError(f"no step counts for {missing}; give step_counts an entry per model")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1; got {per_class}")
    if classifier is None:
        classifier = load_pretrained("relic-classifier")
    y = torch.arange(num_classes).repeat_interleave(per_class)  # (num_classes * per_class,)
    rows = []
    for name, (model, diffusion) in models.items():
        per_pass = count_gflops(model)
        for steps in step_counts[name]:
            tic = time.perf_counter()
            samples = generate(
                model,
                diffusion,
                y=y,
                sampler=sampler,
                steps=steps,
                cfg_scale=cfg_scale,
                generator=torch.Generator().manual_seed(seed),  # same noise for every run
            ).cpu()
            seconds = time.perf_counter() - tic
            rows.append(
                {
                    "name": name,
                    "steps": steps,
                    "gflops_per_pass": per_pass,
                    "gflops_per_sample": sampling_bill(per_pass, steps, cfg_scale != 1.0),
                    "seconds": seconds,
                    **score_samples(samples, y, classifier),
                }
            )
    return rows


def halving_ratios(rows: Sequence[Mapping], name: str, metric: str = "fid") -> dict[int, float]:
    """metric(S / 2) / metric(S) for every step count S of model `name` whose half also ran.

    A ratio above 1 means halving the steps made the score larger (worse, for FID). `rows` are
    `steps_vs_size`'s. Shapes: -> {S: ratio}, S in increasing order.
    """
    runs = {r["steps"]: float(r[metric]) for r in rows if r["name"] == name}
    if not runs:
        names = sorted({r["name"] for r in rows})
        raise ValueError(f"no runs of {name!r}; the rows hold {names}")
    ratios = {s: runs[s // 2] / runs[s] for s in sorted(runs) if s % 2 == 0 and s // 2 in runs}
    if not ratios:
        raise ValueError(f"{name!r} ran at {sorted(runs)} steps: no count and its half both ran")
    return ratios
