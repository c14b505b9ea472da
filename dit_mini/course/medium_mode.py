"""Steps to recognizable for notebook 14's training: what medium mode's step budget rests on.

Notebook 14 trains the learner's own nano DiT with the package's references of its exercises
(`dit_mini.course.new_game_plus`: `train_step`, `train_loop`, `euler_sample_cfg`) on 20,000
relics, batch 16, AdamW 4e-3 with betas (0.9, 0.95) and 100 warm-up steps (the quickstart's
optimizer since issue 24; issue 4's was 3e-3 with betas (0.9, 0.999): `--lr 3e-3 --beta2 0.999`),
EMA 0.995. This benchmark runs exactly that recipe and, every `every` steps, stops the clock,
lets the EMA draw `per_class` relics per class (Euler 20 steps, guidance 3, fixed noise) and
grades them with the Relics classifier. It counts *steps* (images seen), which do not depend on
how busy the machine is, and reports the training time per step separately, so a step budget
converts into minutes on any machine:

    python -m dit_mini.course.medium_mode --steps 3000 --every 250 --threads 1
    python -m dit_mini.course.medium_mode --constant   # the target's mean, zero's loss

Used by notebook 14 (new game plus) through `dit_mini.runtime.MODES` (the medium budget) and
recorded in notebooks/MEASUREMENTS.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch

from ..data.relics import make_relics
from ..metrics.evaluation import evaluate_samples
from ..models.dit import DiT, dit_config
from ..runtime import machine_info
from ..train.memory import keep_freed_memory
from .new_game_plus import euler_sample_cfg, train_loop, train_step

__all__ = ["steps_to_recognizable", "constant_answers", "main"]


def steps_to_recognizable(
    steps: int = 3000,
    every: int = 250,
    per_class: int = 10,
    n_images: int = 20_000,
    threads: int | None = 1,
    config=None,
    log=print,
    lr: float = 4e-3,
    beta2: float = 0.95,
) -> dict:
    """Train notebook 14's recipe for `steps` steps and grade the EMA every `every` steps.

    Returns {'records': [{'step', 'images', 'train_s', 'class_accuracy', 'fid', 'fid_floor'}],
    'first_step_at_80', 'seconds_per_step', 'machine'}; `first_step_at_80` is the first graded
    step with class accuracy >= 80 % (None if never). `lr` and `beta2` are AdamW's (the notebook's).
    """
    keep_freed_memory()  # as notebook 14's training cell does
    if threads is not None:
        torch.set_num_threads(threads)
    relics = make_relics(n_images, seed=0)
    torch.manual_seed(0)  # the notebook's seeded initial weights
    model = DiT(config or dit_config("nano"))
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, beta2))
    eval_y = torch.arange(10).repeat_interleave(per_class)
    eval_noise = torch.randn(len(eval_y), 3, 32, 32, generator=torch.Generator().manual_seed(8))
    records, clock = [], {"train": 0.0, "since": time.perf_counter()}

    def on_step(step: int, loss: float) -> None:
        if (step + 1) % every and step + 1 != steps:
            return
        clock["train"] += time.perf_counter() - clock["since"]
        samples = euler_sample_cfg(ema, eval_noise, eval_y, steps=20, cfg_scale=3.0)
        scores = evaluate_samples(samples.clamp(-1, 1), labels=eval_y)  # as a picture shows it
        record = {
            "step": step + 1,
            "images": 16 * (step + 1),
            "train_s": round(clock["train"], 1),
            "loss": round(loss, 4),
            "class_accuracy": scores["class_accuracy"],
            "fid": round(scores["fid"], 2),
            "fid_floor": round(scores["fid_floor"], 2),
        }
        records.append(record)
        log(json.dumps(record))
        clock["since"] = time.perf_counter()

    train_loop(train_step, model, ema, optimizer, relics.images, relics.labels, steps=steps,
               batch_size=16, lr=lr, warmup=100, generator=torch.Generator().manual_seed(6),
               on_step=on_step)  # fmt: skip
    reached = [r["step"] for r in records if r["class_accuracy"] >= 0.8]
    return {
        "records": records,
        "first_step_at_80": reached[0] if reached else None,
        "seconds_per_step": clock["train"] / steps,
        "machine": machine_info(),
    }


def constant_answers(n_images: int = 20_000, seed: int = 0) -> dict:
    """What a DiT that ignores its input can do on the flow target eps - x0 of the relics: the
    mean target, and the loss of answering zero (a fresh adaLN-Zero DiT) against the loss of
    answering the mean target image (the best input-free answer)."""
    x0 = make_relics(n_images, seed=0).images
    target = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)) - x0
    mean_image = target.mean(0, keepdim=True)
    return {
        "mean_pixel": x0.mean().item(),
        "mean_target": target.mean().item(),
        "loss_of_zero": target.pow(2).mean().item(),
        "loss_of_mean_image": (target - mean_image).pow(2).mean().item(),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lr", type=float, default=4e-3, help="AdamW learning rate")
    parser.add_argument("--beta2", type=float, default=0.95, help="AdamW second-moment decay")
    parser.add_argument("--constant", action="store_true", help="only the input-free answers")
    args = parser.parse_args(argv)
    if args.constant:
        print(json.dumps(constant_answers()))
        return
    result = steps_to_recognizable(args.steps, args.every, args.per_class, threads=args.threads,
                                   lr=args.lr, beta2=args.beta2)  # fmt: skip
    print(json.dumps({k: v for k, v in result.items() if k != "records"}))


if __name__ == "__main__":
    main()
