"""A small CNN that recognises relics, used to grade generated samples.

Two numbers say whether a class-conditional generator works:
- class accuracy: the fraction of samples asked for class k that the classifier calls class k;
- a Frechet distance (FID, Heusel et al., arXiv 1706.08500, eq. 6; see `dit_mini.metrics.fid`)
  between Gaussians fitted to the classifier's penultimate features of samples and of real relics.
  Finite sample sizes bias FID upwards, so every score also reports the real-vs-real floor: the
  distance between two disjoint real sets of the same size. A generator at the floor is as good
  as this ruler can tell.

The network is deliberately tiny (three conv stages, global average pooling, 95 k parameters),
so it trains in about two minutes on 2 CPU cores and scores hundreds of samples in a second;
`assets/relic_classifier.safetensors` holds the shipped weights (see its model card).

Used by notebook 12 (fidelity) and the time-to-recognizable benchmark (`dit_mini.studies.ttr`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.relics import make_relics
from .fid import frechet_distance, gaussian_stats

__all__ = [
    "ClassifierConfig",
    "RelicClassifier",
    "fit_supervised",
    "train_classifier",
    "classifier_accuracy",
    "real_feature_stats",
    "score_samples",
]

REAL_SEED = 20_000  # real relics for FID references: disjoint from train (0) and test (10_000)


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture of the relic classifier: one conv stage per width, each halving H and W."""

    widths: tuple[int, ...] = (32, 64, 128)
    num_classes: int = 10
    in_channels: int = 3
    groups: int = 8

    def __post_init__(self):
        if not self.widths or any(w < 1 or w % self.groups for w in self.widths):
            raise ValueError(
                f"widths {self.widths} must be non-empty multiples of groups={self.groups}"
            )
        if self.num_classes < 2 or self.in_channels < 1:
            raise ValueError(
                f"need num_classes >= 2 and in_channels >= 1; "
                f"got {self.num_classes}, {self.in_channels}"
            )

    @property
    def feature_dim(self) -> int:
        return self.widths[-1]


def _stage(c_in: int, c_out: int, groups: int) -> nn.Sequential:
    """A 3x3 conv with GroupNorm and SiLU, then 2x2 max pooling (halves H and W)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.GroupNorm(groups, c_out),
        nn.SiLU(),
        nn.MaxPool2d(2),
    )


class RelicClassifier(nn.Module):
    """Conv stages, global average pooling, a linear head.

    Shapes: x (B, C, H, W) in [-1, 1] -> logits (B, K); features(x) -> (B, widths[-1]).
    """

    def __init__(self, config: ClassifierConfig | None = None):
        super().__init__()
        self.config = config = config or ClassifierConfig()
        chans = (config.in_channels, *config.widths)
        self.stages = nn.Sequential(
            *(_stage(a, b, config.groups) for a, b in zip(chans[:-1], chans[1:]))
        )
        self.head = nn.Linear(config.feature_dim, config.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (the FID embedding). Shapes: (B, C, H, W) -> (B, D)."""
        return self.stages(x).mean(dim=(2, 3))  # (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def fit_supervised(
    make_model, inputs: torch.Tensor, batch_loss, epochs: int, batch_size: int, lr: float,
    seed: int,
):  # fmt: skip
    """The small supervised loop of the course's graders: AdamW, a one-cycle learning rate,
    shuffled full batches; same seed, same weights. `batch_loss(model, idx)` is the loss of the
    examples `idx`; `make_model()` builds the network (seeded here). Returns it in eval mode."""
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs={epochs}, batch_size={batch_size}: both must be >= 1")
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = make_model()
    per_epoch = len(inputs) // batch_size
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * per_epoch,
                                                pct_start=0.1)  # fmt: skip
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=gen)
        for i in range(per_epoch):
            loss = batch_loss(model, order[i * batch_size : (i + 1) * batch_size])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    config: ClassifierConfig | None = None,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
) -> RelicClassifier:
    """Train a classifier with AdamW and a one-cycle learning rate; same seed, same weights.

    Shapes: images (N, C, H, W) in [-1, 1], labels (N,) -> a trained RelicClassifier (eval mode).
    """

    def batch_loss(model, idx):
        return F.cross_entropy(model(images[idx]), labels[idx])

    return fit_supervised(
        lambda: RelicClassifier(config), images, batch_loss, epochs, batch_size, lr, seed
    )


@torch.no_grad()
def _run(model: RelicClassifier, images: torch.Tensor, fn: str, batch: int = 500):
    param = next(model.parameters())
    parts = [
        getattr(model, fn)(images[i : i + batch].to(param)) for i in range(0, len(images), batch)
    ]
    return torch.cat(parts).cpu()


def classifier_accuracy(model: RelicClassifier, images: torch.Tensor, labels: torch.Tensor):
    """Fraction of images whose predicted class equals the label. Shapes: (N, C, H, W), (N,)."""
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images (> 0); got {len(labels)}, {len(images)}")
    return (_run(model, images, "forward").argmax(1) == labels.cpu()).float().mean().item()


_REAL_CACHE: dict = {}


def real_feature_stats(model: RelicClassifier, n: int, seed: int = REAL_SEED):
    """Feature mean and covariance of n real relics from `seed`, memoised per weights and n."""
    weights = model.head.weight.detach().cpu().numpy().tobytes()
    key = (hashlib.sha1(weights).hexdigest(), n, seed)
    if key not in _REAL_CACHE:
        _REAL_CACHE[key] = gaussian_stats(_run(model, make_relics(n, seed).images, "features"))
    return _REAL_CACHE[key]


def score_samples(images: torch.Tensor, labels: torch.Tensor, model: RelicClassifier) -> dict:
    """Grade class-conditional samples against real relics.

    Returns {'class_accuracy', 'fid', 'fid_floor', 'n'}: FID against 5000 real relics, and the
    floor: the FID of n other real relics against the same reference (same n, same bias).

    Shapes: images (N, 3, 32, 32) in [-1, 1], labels (N,) the classes asked for.
    """
    n = len(images)
    ref = real_feature_stats(model, 5000)
    floor = frechet_distance(*real_feature_stats(model, n, REAL_SEED + 1), *ref)
    feats = _run(model, images.clamp(-1, 1), "features")
    return {
        "class_accuracy": classifier_accuracy(model, images.clamp(-1, 1), labels),
        "fid": frechet_distance(*gaussian_stats(feats), *ref),
        "fid_floor": floor,
        "n": n,
    }
