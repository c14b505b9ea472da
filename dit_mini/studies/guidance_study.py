"""Measuring classifier-free guidance: fidelity against diversity as the guidance scale grows.

Guidance (Ho & Salimans, arXiv 2207.12598; `dit_mini.diffusion.guidance`) pushes each sampling step
further along cond - uncond. Its paper reports the trade-off as FID against Inception score:
larger scales make each sample look more like its class and the samples of a class look more
alike. Here the same trade-off is measured on relics, with the relic classifier as the ruler:

- fidelity: class accuracy (the classifier names the class that was asked for) and the FID of
  the classifier's features against real relics, beside the real-vs-real floor at the same n;
- diversity: `within_class_diversity`, the mean distance between the features of two samples of
  the same class, beside the same number for real relics.

`guidance_sweep` draws the same starting noise and labels at every scale, so the only thing that
changes between scales is the guidance. Taught in notebook 08 (summon signs).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from ..data.relics import make_relics
from ..diffusion.losses import generate
from ..diffusion.samplers import draw_noise
from ..metrics.classifier import REAL_SEED, classifier_accuracy, real_feature_stats
from ..metrics.fid import frechet_distance, gaussian_stats
from ..models.pretrained import load_pretrained

__all__ = ["within_class_diversity", "guidance_sweep", "score_sweep"]


def within_class_diversity(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean Euclidean distance between the features of two different samples of one class,
    averaged over the classes that have at least two samples.

    Shapes: features (N, D), labels (N,) -> a number.
    """
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows for {len(labels)} labels")
    per_class = []
    for k in labels.unique():
        f = features[labels == k].double()  # (n_k, D)
        n = len(f)
        if n >= 2:
            per_class.append(torch.cdist(f, f).sum() / (n * (n - 1)))  # the diagonal is 0
    if not per_class:
        raise ValueError("every class has fewer than 2 samples; draw at least 2 per class")
    return float(torch.stack(per_class).mean())


@torch.no_grad()
def guidance_sweep(
    model,
    diffusion_config,
    scales: Sequence[float],
    per_class: int,
    steps: int = 20,
    seed: int = 0,
    sampler: str | None = None,
) -> dict:
    """Samples of every class at every guidance scale, from one shared set of starting noise.

    Returns {'scales', 'labels' (n,), 'samples': {scale: (n, C, H, W)}, 'seconds': {scale: s}}
    with n = per_class * num_classes, labels in blocks of consecutive classes.
    """
    num_classes = model.config.num_classes
    if per_class < 1 or not num_classes:
        raise ValueError(
            f"need per_class >= 1 and a class-conditional model; got {per_class}, {num_classes}"
        )
    # 1. One batch of labels and starting noise, shared by every scale.
    labels = torch.arange(num_classes).repeat_interleave(per_class)  # (n,)
    config = model.config
    shape = (len(labels), config.in_channels, config.input_size, config.input_size)
    x_T = draw_noise(shape, torch.Generator().manual_seed(seed))
    # 2. Sample at each scale; a stochastic sampler gets the same seed at every scale. At w = 0
    #    the guided prediction is the null-class one alone, so one pass on null labels is the
    #    same sampler at half the cost of the two-pass guided network.
    null_class = getattr(model, "null_class", None)
    samples, seconds = {}, {}
    for scale in scales:
        tic = time.perf_counter()
        generator = torch.Generator().manual_seed(seed + 1)
        lone = float(scale) == 0.0 and null_class is not None
        y, w = (torch.full_like(labels, null_class), 1.0) if lone else (labels, float(scale))
        out = generate(
            model, diffusion_config, y=y, sampler=sampler, steps=steps,
            cfg_scale=w, generator=generator, x_T=x_T.clone(),
        )  # fmt: skip
        samples[float(scale)] = out.clamp(-1, 1).cpu()
        seconds[float(scale)] = time.perf_counter() - tic
    return {"scales": [float(s) for s in scales], "labels": labels, "samples": samples,
            "seconds": seconds}  # fmt: skip


@torch.no_grad()
def score_sweep(sweep: dict, classifier=None, n_reference: int = 1000) -> dict:
    """Fidelity and diversity of each scale of a sweep, and the same numbers for real relics.

    FID compares relic-classifier features with those of `n_reference` real relics. Returns
    lists over the scales: 'class_accuracy', 'fid', 'diversity'; and numbers: 'fid_floor' and
    'real_diversity' (n real relics never trained on, the same number of each class), 'n'.
    """
    classifier = classifier or load_pretrained("relic-classifier")
    labels, n = sweep["labels"], len(sweep["labels"])
    # 1. The reference Gaussian, and real relics at the sweep's n (the floor of both metrics).
    reference = real_feature_stats(classifier, n_reference)
    real = make_relics(n, seed=REAL_SEED + 1)  # balanced classes, disjoint from the reference
    real_features = classifier.features(real.images)
    scores = {
        "scales": list(sweep["scales"]),
        "fid_floor": frechet_distance(*gaussian_stats(real_features), *reference),
        "real_diversity": within_class_diversity(real_features, real.labels),
        "n": n,
    }
    # 2. The same three numbers for the samples of each scale.
    for key in ("class_accuracy", "fid", "diversity"):
        scores[key] = []
    for scale in sweep["scales"]:
        images = sweep["samples"][scale].clamp(-1, 1)
        features = classifier.features(images)
        scores["class_accuracy"].append(classifier_accuracy(classifier, images, labels))
        scores["fid"].append(frechet_distance(*gaussian_stats(features), *reference))
        scores["diversity"].append(within_class_diversity(features, labels))
    return scores
