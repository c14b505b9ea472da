"""Training the course's two graders, the Relics classifier and the clip checker, and shipping
them: one command for both.

    python -m dit_mini.train.train_graders relic-classifier [--out PATH]
    python -m dit_mini.train.train_graders clip-checker [--out PATH]

Each trains with `dit_mini.metrics.classifier.fit_supervised`, measures itself on held-out data,
and writes a model file (`dit_mini.registry.save_model`) whose header carries that card. By
default the file goes to the shipped asset (assets/relic_classifier.safetensors,
assets/clip_checker.safetensors). Commands and scores are in the model cards.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from ..data.clips import make_clips
from ..data.relics import TEST_SEED_OFFSET, make_relics
from ..metrics.classifier import classifier_accuracy, train_classifier
from ..metrics.clip_checker import checker_accuracy, clip_targets, train_checker
from ..models.pretrained import PRETRAINED, assets_dir
from ..registry import save_model

__all__ = ["GRADERS", "train_relic_classifier", "train_clip_checker", "main"]


def train_relic_classifier(n_train: int, epochs: int, seed: int) -> tuple[torch.nn.Module, dict]:
    """The Relics classifier and its card (accuracy on 10,000 held-out relics)."""
    train = make_relics(n_train, seed=seed)
    start = time.perf_counter()
    model = train_classifier(train.images, train.labels, epochs=epochs, seed=seed)
    seconds = time.perf_counter() - start
    test = make_relics(10_000, seed=seed + TEST_SEED_OFFSET)
    card = {
        "train_seconds": round(seconds, 1),
        "test_accuracy": classifier_accuracy(model, test.images, test.labels),
        "test_set": f"make_relics(10_000, seed={seed + TEST_SEED_OFFSET})",
    }
    return model, card


def train_clip_checker(n_train: int, epochs: int, seed: int) -> tuple[torch.nn.Module, dict]:
    """The clip checker and its card (accuracies on test clips and held-out captions)."""
    train = make_clips(n_train, seed=seed, split="all")
    start = time.perf_counter()
    model = train_checker(train.clips, clip_targets(train), epochs=epochs, seed=seed)
    seconds = time.perf_counter() - start
    test = make_clips(2000, seed=seed + 1000, split="all")
    held = make_clips(500, seed=seed + 2000, split="held_out")
    card = {
        "train_seconds": round(seconds, 1),
        "test": checker_accuracy(model, test.clips, clip_targets(test)),
        "held_out": checker_accuracy(model, held.clips, clip_targets(held)),
    }
    return model, card


# grader -> (trainer, default n_train, default epochs, default seed)
GRADERS = {
    "relic-classifier": (train_relic_classifier, 10_000, 3, 0),
    "clip-checker": (train_clip_checker, 6000, 4, 1),
}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog=f"python -m {__name__}", description=__doc__.split("\n")[0])
    p.add_argument("grader", choices=sorted(GRADERS))
    p.add_argument("--out", default=None, help="default: the shipped file in assets/")
    p.add_argument("--n-train", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    trainer, n_train, epochs, seed = GRADERS[args.grader]
    args.n_train, args.epochs = args.n_train or n_train, args.epochs or epochs
    args.seed = seed if args.seed is None else args.seed
    torch.set_num_threads(args.threads)
    model, card = trainer(args.n_train, args.epochs, args.seed)
    card["args"] = vars(args)
    out = args.out or str(assets_dir() / PRETRAINED[args.grader][0])
    save_model(model, out, extra={"card": card})
    print(json.dumps(card))


if __name__ == "__main__":
    main()
