"""A small 3-D CNN that reads a clip and names its item, colour and motion: the text-to-video judge.

A generated clip follows its caption when the checker, trained on real Animated Relics, reads the
caption's three words back from it. The scores:
- item, colour and motion accuracy, and the fraction of clips with all three right;
- a clip-level Frechet distance (FID, Heusel et al., arXiv 1706.08500, eq. 6) between Gaussians
  fitted to the checker's penultimate features of generated and of real clips, with the
  real-vs-real floor at the same sample count (see `dit_mini.metrics.classifier` for why a floor).
These features are the checker's own, not Inception's: the numbers compare models on this data set
only.

Three 3-D convolution stages (the last two also halve time) see motion directly: spinning left
and spinning right differ only in the order of the frames. Global average pooling then one linear
head per question. `assets/clip_checker.safetensors` holds the shipped weights (see its card).

Used by notebook 13 (mastering the art).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.clips import CLIP_COLOURS, CLIP_MOTIONS, ClipDataset, make_clips
from ..data.relics import RELIC_CLASSES
from .classifier import fit_supervised
from .fid import frechet_distance, gaussian_stats

__all__ = [
    "QUESTIONS",
    "CheckerConfig",
    "ClipChecker",
    "clip_targets",
    "train_checker",
    "predict",
    "checker_accuracy",
    "confusion",
    "score_clips",
]

QUESTIONS = {"item": RELIC_CLASSES, "colour": CLIP_COLOURS, "motion": CLIP_MOTIONS}
REAL_SEED = 30_000  # real clips for the FID reference: disjoint from training seeds


@dataclass(frozen=True)
class CheckerConfig:
    """Architecture: one 3-D conv stage per width; stage 1 halves H and W, later ones T, H, W."""

    widths: tuple[int, ...] = (16, 32, 64)
    in_channels: int = 3
    groups: int = 8

    def __post_init__(self):
        if not self.widths or any(w < 1 or w % self.groups for w in self.widths):
            raise ValueError(
                f"widths {self.widths} must be non-empty multiples of groups={self.groups}"
            )


def _stage(c_in: int, c_out: int, groups: int, pool: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, 3, padding=1),
        nn.GroupNorm(groups, c_out),
        nn.SiLU(),
        nn.MaxPool3d(pool),
    )


class ClipChecker(nn.Module):
    """3-D conv stages, global average pooling, one linear head per question.

    Shapes: clips (B, C, T, H, W) in [-1, 1] -> {'item': (B, 10), 'colour': (B, 5),
    'motion': (B, 4)} logits; features(clips) -> (B, widths[-1]).
    """

    def __init__(self, config: CheckerConfig | None = None):
        super().__init__()
        self.config = config = config or CheckerConfig()
        chans = (config.in_channels, *config.widths)
        pools = [(1, 2, 2)] + [(2, 2, 2)] * (len(config.widths) - 1)
        self.stages = nn.Sequential(
            *(_stage(a, b, config.groups, p) for a, b, p in zip(chans[:-1], chans[1:], pools))
        )
        self.heads = nn.ModuleDict(
            {name: nn.Linear(config.widths[-1], len(words)) for name, words in QUESTIONS.items()}
        )

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        return self.stages(clips).mean(dim=(2, 3, 4))  # (B, D)

    def forward(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(clips)
        return {name: head(h) for name, head in self.heads.items()}


def clip_targets(data: ClipDataset) -> torch.Tensor:
    """The (item, colour, motion) ids of every clip. Shapes: -> (N, 3) int64."""
    p = data.params
    return torch.stack(
        [torch.as_tensor(v, dtype=torch.long) for v in (p.cls, p.colour, p.motion)], 1
    )


def train_checker(
    clips: torch.Tensor,
    targets: torch.Tensor,
    config: CheckerConfig | None = None,
    epochs: int = 4,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
) -> ClipChecker:
    """Train with the sum of the three cross-entropies, AdamW and a one-cycle schedule.

    Shapes: clips (N, C, T, H, W), targets (N, 3) -> a trained ClipChecker (eval mode).
    """

    def batch_loss(model, idx):
        logits = model(clips[idx])
        return sum(F.cross_entropy(logits[q], targets[idx, j]) for j, q in enumerate(QUESTIONS))

    return fit_supervised(
        lambda: ClipChecker(config), clips, batch_loss, epochs, batch_size, lr, seed
    )


@torch.no_grad()
def _batched(model: ClipChecker, clips: torch.Tensor, fn, batch: int = 256) -> torch.Tensor:
    param = next(model.parameters())
    parts = [fn(clips[i : i + batch].to(param)) for i in range(0, len(clips), batch)]
    return torch.cat(parts).cpu()


def predict(model: ClipChecker, clips: torch.Tensor) -> torch.Tensor:
    """(item, colour, motion) ids the checker reads. Shapes: (N, C, T, H, W) -> (N, 3)."""

    def ids(x):
        logits = model(x.clamp(-1, 1))
        return torch.stack([logits[q].argmax(1) for q in QUESTIONS], 1)

    return _batched(model, clips, ids)


def checker_accuracy(model: ClipChecker, clips: torch.Tensor, targets: torch.Tensor) -> dict:
    """Accuracy per question and for all three at once. Shapes: (N, C, T, H, W), (N, 3)."""
    if len(clips) != len(targets) or len(clips) == 0:
        raise ValueError(f"need one target row per clip (> 0); got {len(targets)}, {len(clips)}")
    right = predict(model, clips) == targets.cpu()  # (N, 3)
    scores = {q: right[:, j].float().mean().item() for j, q in enumerate(QUESTIONS)}
    return {**scores, "all": right.all(1).float().mean().item(), "n": len(clips)}


def confusion(
    model: ClipChecker, clips: torch.Tensor, targets: torch.Tensor, question: str = "motion"
) -> torch.Tensor:
    """How often each asked word (row) is read back as each word (column), for one question.

    Shapes: clips (N, C, T, H, W), targets (N, 3) -> (K, K) int64, K words of the question.
    """
    if question not in QUESTIONS:
        raise ValueError(f"question must be one of {list(QUESTIONS)}; got {question!r}")
    if len(clips) != len(targets):
        raise ValueError(f"need one target row per clip; got {len(targets)}, {len(clips)}")
    j, k = list(QUESTIONS).index(question), len(QUESTIONS[question])
    pairs = targets[:, j].cpu() * k + predict(model, clips)[:, j]  # (N,) asked * K + read
    return torch.bincount(pairs, minlength=k * k).reshape(k, k)


def _real_stats(model: ClipChecker, n: int, seed: int):
    """Feature mean and covariance of n real clips, cached on the checker itself."""
    cache = model.__dict__.setdefault("_real_stats_cache", {})
    if (n, seed) not in cache:
        clips = make_clips(n, seed, split="all").clips
        cache[(n, seed)] = gaussian_stats(_batched(model, clips, model.features))
    return cache[(n, seed)]


def score_clips(
    clips: torch.Tensor, targets: torch.Tensor, model: ClipChecker, n_ref: int = 2000
) -> dict:
    """Checker accuracies, clip FID against `n_ref` real clips, and the floor (n other real clips
    against the same reference). Shapes: clips (N, C, T, H, W), targets (N, 3)."""
    ref = _real_stats(model, n_ref, REAL_SEED)
    floor = frechet_distance(*_real_stats(model, len(clips), REAL_SEED + 1), *ref)
    feats = _batched(model, clips.clamp(-1, 1), model.features)
    fid = frechet_distance(*gaussian_stats(feats), *ref)
    return {**checker_accuracy(model, clips, targets), "fid": fid, "fid_floor": floor}
