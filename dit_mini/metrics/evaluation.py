"""Grading generated pictures: FID and KID against real data, beside the real-vs-real floor.

A score alone says little at small sample counts (FID is biased upward when n is small), so every
evaluation reports n and the floor: the same metric for n *real* images that the model never saw,
against the same reference set. A model can at best reach the floor.

Feature spaces:
- 'inception': InceptionV3 pool3 (2048-d), the standard FID features (`dit_mini.metrics.fid`); about
  5 images/s on 2 CPU cores, fast on a GPU.
- 'relic': the penultimate layer of the small Relics classifier (`dit_mini.metrics.classifier`),
  thousands of images per second on a CPU; the fast features of FAST mode.

Reference features of real data are cached on disk (`dit_mini.data.datasets.cache_dir`).
Taught in notebook 12 (fidelity); used by `dit-mini fid`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch

from ..data.datasets import load_cifar10
from ..data.relics import RELIC_CLASSES, RELICS_VERSION, make_relics
from ..models.pretrained import asset_path, load_pretrained
from ..storage import atomic_write, cache_dir
from .classifier import classifier_accuracy
from .fid import fid_from_features, inception_features, kid_from_features, load_inception

__all__ = [
    "FEATURES",
    "REFERENCE_SEED",
    "feature_extractor",
    "real_images",
    "reference_features",
    "check_samples",
    "evaluate_samples",
    "load_samples",
]

FEATURES = ("inception", "relic")
REFERENCE_SEED = (
    20_000  # real relics for references: disjoint from train (seed 0) and test (10_000)
)
FLOOR_SEED = REFERENCE_SEED + 1  # the floor's real images: disjoint from the reference


def feature_extractor(name: str = "relic", device=None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function images (N, 3, H, W) in [-1, 1] -> features (N, d), float64 on the CPU."""
    if name == "inception":
        network = load_inception(device=device or "cpu")
        return lambda images: inception_features(images, network)
    if name == "relic":
        model = load_pretrained("relic-classifier", device=device)

        @torch.no_grad()
        def relic_features(images: torch.Tensor) -> torch.Tensor:
            param = next(model.parameters())
            out = [
                model.features(b.to(param)).double().cpu() for b in images.clamp(-1, 1).split(500)
            ]
            return torch.cat(out)

        return relic_features
    raise ValueError(f"unknown features {name!r}; choose one of {FEATURES}")


def _features_tag(features: str) -> str:
    """Cache key of a feature space: the relic features change whenever the classifier does."""
    if features != "relic":
        return features

    digest = hashlib.sha1(asset_path("relic-classifier").read_bytes()).hexdigest()[:10]
    return f"relic{RELICS_VERSION}-{digest}"


def real_images(dataset: str, n: int, seed: int) -> torch.Tensor:
    """n real images of 'relics' (made from `seed`) or 'cifar10' (a half of its test split)."""
    if dataset == "relics":
        return make_relics(n, seed=seed).images
    if dataset == "cifar10":
        images = load_cifar10(train=False).images
        if n > len(images) // 2:
            raise ValueError(f"n={n} is too large: CIFAR-10's test split holds two sets of 5000")
        start = 0 if seed == REFERENCE_SEED else len(images) // 2
        return images[start : start + n]
    raise ValueError(f"unknown reference dataset {dataset!r}; choose 'relics' or 'cifar10'")


def reference_features(
    dataset: str, features: str, n: int, seed: int = REFERENCE_SEED, extractor=None, cache=True
) -> torch.Tensor:
    """Features of n real images, cached as a tensor file (loaded with weights_only=True)."""
    path = cache_dir() / "fid" / f"{dataset}-{_features_tag(features)}-n{n}-seed{seed}.pt"
    if cache and path.is_file():
        return torch.load(path, weights_only=True)
    extractor = extractor or feature_extractor(features)
    feats = extractor(real_images(dataset, n, seed))
    if cache:
        atomic_write(path, lambda f: torch.save(feats, f))
    return feats


def check_samples(samples, labels=None, num_classes: int | None = None) -> None:
    """Refuse samples that would give a silently wrong score: not (n, 3, H, W), NaN or infinite
    pixels, values in [0, 255] or [0, 1] instead of [-1, 1], labels that are not integers in
    [0, num_classes). Each message names the problem and the conversion that fixes it.

    Shapes: samples (n, 3, H, W) in [-1, 1], labels (n,) or None.
    """
    if not isinstance(samples, torch.Tensor) or samples.dim() != 4:
        raise ValueError(
            f"samples must be an (n, 3, H, W) image tensor; got {type(samples).__name__} "
            f"{tuple(getattr(samples, 'shape', ()))}"
        )
    if samples.shape[1] != 3:
        fix = "repeat grey images with x.repeat(1, 3, 1, 1)" if samples.shape[1] == 1 else (
            "drop the alpha channel with x[:, :3]" if samples.shape[1] == 4 else
            "decode latents with their VAE first"
        )  # fmt: skip
        raise ValueError(
            f"samples have {samples.shape[1]} channels; FID features need RGB (3): {fix}"
        )
    x = samples.detach().float()
    finite = torch.isfinite(x).flatten(1).all(1)
    if not bool(finite.all()):
        raise ValueError(
            f"{int((~finite).sum())} of {len(x)} samples hold NaN or infinite pixels (the "
            "sampler diverged?); drop them (samples[torch.isfinite(samples).flatten(1).all(1)])"
        )
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0 and hi > 1.5:
        raise ValueError(
            f"samples lie in [{lo:g}, {hi:g}], like 0..255 pixels; FID expects [-1, 1]: "
            "convert them with x / 127.5 - 1"
        )
    if lo >= 0 and hi > 0.5:
        raise ValueError(
            f"samples lie in [{lo:g}, {hi:g}], like [0, 1] pixels (no negative value at all); "
            "FID expects [-1, 1]: convert them with x * 2 - 1"
        )
    if max(-lo, hi) > 2:
        raise ValueError(
            f"samples lie in [{lo:g}, {hi:g}], far outside [-1, 1]: are they undecoded latents "
            "or unscaled values? FID expects images in [-1, 1]"
        )
    if labels is None:
        return
    labels = torch.as_tensor(labels)
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.shape != (len(x),):
        raise ValueError(
            f"labels must be {len(x)} integer class ids (one per sample); got "
            f"{labels.dtype} {tuple(labels.shape)}"
        )
    if num_classes is not None and len(labels):
        lo_y, hi_y = int(labels.min()), int(labels.max())
        if lo_y < 0 or hi_y >= num_classes:
            raise ValueError(
                f"labels lie in {lo_y}..{hi_y} but the classifier knows classes "
                f"0..{num_classes - 1}; pass the class ids the samples were drawn with"
            )


def evaluate_samples(
    samples: torch.Tensor,
    features: str = "relic",
    dataset: str = "relics",
    n_reference: int | None = None,
    kid_subsets: int = 100,
    seed: int = 0,
    extractor=None,
    labels: torch.Tensor | None = None,
) -> dict:
    """FID and KID of samples against real data, with the real-vs-real floor at the same n.

    Returns {'fid', 'kid', 'kid_std', 'n', 'n_reference', 'fid_floor', 'kid_floor', 'features',
    'dataset'}, plus 'class_accuracy' (by the Relics classifier) when relic `labels` are given.

    Shapes: samples (n, 3, H, W) in [-1, 1].
    """
    classes = len(RELIC_CLASSES) if dataset == "relics" else None
    check_samples(samples, labels, classes)
    n = samples.shape[0]
    if n < 2:
        raise ValueError(f"FID needs at least 2 samples; got {n}")
    n_reference = n_reference or max(n, 2000)
    extractor = extractor or feature_extractor(features)
    ref = reference_features(dataset, features, n_reference, REFERENCE_SEED, extractor)
    floor = reference_features(dataset, features, n, FLOOR_SEED, extractor)
    fake = extractor(samples.clamp(-1, 1))
    g = torch.Generator().manual_seed(seed)
    subset = min(1000, n, n_reference)
    kid, kid_std = kid_from_features(ref, fake, kid_subsets, subset, g)
    kid_floor, _ = kid_from_features(ref, floor, kid_subsets, subset, g)
    scores = {}
    if labels is not None and dataset == "relics":
        scores["class_accuracy"] = classifier_accuracy(
            load_pretrained("relic-classifier"), samples, labels
        )
    return scores | {
        "fid": fid_from_features(ref, fake),
        "kid": kid,
        "kid_std": kid_std,
        "n": n,
        "n_reference": n_reference,
        "fid_floor": fid_from_features(ref, floor),
        "kid_floor": kid_floor,
        "features": features,
        "dataset": dataset,
    }


def load_samples(path: str | Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images and labels (or None) saved by `dit-mini sample --save-samples`, or a bare tensor."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no samples file at {path}; write one with `dit-mini sample --save-samples`"
        )
    try:
        obj = torch.load(path, weights_only=True)
    except Exception as error:  # text, images, a damaged file: all fail somewhere in torch.load
        raise ValueError(
            f"{path} is not a samples file (torch.load says: {str(error).splitlines()[0][:120]}); "
            "write one with `dit-mini sample --save-samples FILE.pt`"
        ) from error
    images = obj.get("images") if isinstance(obj, dict) else obj
    labels = obj.get("labels") if isinstance(obj, dict) else None
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(
            f"{path} holds no (N, C, H, W) image tensor; expected the 'images' of a samples file"
        )
    return images.float(), labels
