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

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data.clips import CLIP_COLOURS, CLIP_MOTIONS, ClipDataset, make_clips
from ..data.relics import RELIC_CLASSES
from .classifier import fit_supervised
from .fid import frechet_distance, gaussian_stats

__all__ = [
    "CHECKER_FILE",
    "QUESTIONS",
    "CheckerConfig",
    "ClipChecker",
    "clip_targets",
    "train_checker",
    "save_checker",
    "load_checker",
    "predict",
    "checker_accuracy",
    "confusion",
    "score_clips",
]

CHECKER_FILE = "clip_checker.safetensors"  # in assets/ (see dit_mini.models.pretrained)
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


def save_checker(model: ClipChecker, path: str | Path, card: dict | None = None) -> None:
    """safetensors weights with the config (and an optional card) in the metadata."""
    from safetensors.torch import save_file

    meta = {"config": json.dumps(asdict(model.config)), "card": json.dumps(card or {})}
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path), meta)


def load_checker(path: str | Path | None = None, device=None) -> ClipChecker:
    """Load a checker written by `save_checker` (default: the shipped one), in eval mode."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    if path is None:
        from ..models.pretrained import assets_dir

        path = assets_dir() / CHECKER_FILE
    if not Path(path).is_file():
        raise FileNotFoundError(f"no clip checker at {path}; train one with python -m {__name__}")
    with safe_open(str(path), framework="pt") as f:
        cfg = json.loads(f.metadata()["config"])
    model = ClipChecker(CheckerConfig(**{**cfg, "widths": tuple(cfg["widths"])}))
    model.load_state_dict(load_file(str(path)))
    return model.to(device or "cpu").eval()


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


def main(argv=None) -> None:
    """Train the shipped clip checker: python -m dit_mini.metrics.clip_checker [--out PATH]."""
    import argparse

    p = argparse.ArgumentParser(prog=f"python -m {__name__}", description=main.__doc__)
    p.add_argument("--out", default=None, help=f"default: assets/{CHECKER_FILE}")
    p.add_argument("--n-train", type=int, default=6000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    train = make_clips(args.n_train, seed=args.seed, split="all")
    start = time.perf_counter()
    model = train_checker(train.clips, clip_targets(train), epochs=args.epochs, seed=args.seed)
    seconds = time.perf_counter() - start
    test = make_clips(2000, seed=args.seed + 1000, split="all")
    held = make_clips(500, seed=args.seed + 2000, split="held_out")
    card = {
        "train_seconds": round(seconds, 1),
        "test": checker_accuracy(model, test.clips, clip_targets(test)),
        "held_out": checker_accuracy(model, held.clips, clip_targets(held)),
        "args": vars(args),
    }
    if args.out is None:
        from ..models.pretrained import assets_dir

        args.out = str(assets_dir() / CHECKER_FILE)
    save_checker(model, args.out, card)
    print(json.dumps(card))


if __name__ == "__main__":
    main()
