"""Text to video with the video DiT: the training recipe, its command and its grading.

The recipe is the fast CPU recipe of the image models (see `assets/ttr/RESULTS.md`): flow
matching (x_t = (1 - t) x0 + t eps, predict v = eps - x0; Lipman et al., arXiv 2210.02747) with
logit-normal times (SD3, arXiv 2403.03206, sec. 3.1), AdamW at a high learning rate on small
batches, and an EMA of the weights. The package trainer `dit_mini.train.trainer.fit` runs it
unchanged:
clips travel as film strips and captions as caption ids, so its label dropout swaps a caption for
the empty caption (the "null class") 10 % of the time.

Sampling with caption guidance lives in `dit_mini.diffusion.text2video`.

Run `python -m dit_mini.train.text2video --help` to train; `assets/train_video.sh` holds the command
that trained the shipped model, and `--evaluate FILE` grades a model the way its card does
(`score_video_dit`: the clip checker on seen and held-out captions at several guidance scales;
`save_samples`: the sample strip and GIF). Taught in notebook 13 (mastering the art).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..data.clips import (
    CLIP_FRAMES,
    HELD_OUT,
    caption_combos,
    caption_id,
    make_clips,
    parse_caption,
)
from ..diffusion.losses import make_loss
from ..diffusion.text2video import VIDEO_DIFFUSION, sample_clips
from ..metrics.clip_checker import confusion, score_clips
from ..models.pretrained import load_pretrained
from ..models.video import VideoDiT, VideoDiTConfig
from ..registry import load_model, read_config, save_model
from ..runtime import cpu_name
from ..storage import load_checkpoint
from ..viz import clip_gif, clip_strips
from .config import TrainConfig
from .trainer import fit

__all__ = [
    "eval_combos",
    "evaluate_captions",
    "score_video_dit",
    "SAMPLE_CAPTIONS",
    "save_samples",
    "main",
]


def eval_combos(split: str, count: int = 20) -> torch.Tensor:
    """A fixed list of (item, colour, motion) rows to grade: every held-out combination, or
    `count` training combinations spread evenly over the list. Shapes: -> (count, 3) int64."""
    combos = torch.as_tensor(caption_combos("held_out" if split == "held_out" else "train"))
    if split == "held_out":
        return combos
    if split != "train":
        raise ValueError(f"split must be 'train' (seen captions) or 'held_out'; got {split!r}")
    return combos[torch.linspace(0, len(combos) - 1, count).round().long()]


def evaluate_captions(
    model: VideoDiT,
    checker,
    combos: torch.Tensor,
    per_caption: int = 1,
    steps: int = 20,
    cfg_scale: float = 3.0,
    seed: int = 0,
    n_ref: int = 2000,
    batch: int = 40,
) -> tuple[dict, torch.Tensor]:
    """Sample `per_caption` clips per (item, colour, motion) row and grade them with the checker
    (`dit_mini.metrics.clip_checker.score_clips`); returns the scores and the clips.

    Shapes: combos (K, 3) -> clips (K * per_caption, C, T, H, W).
    """
    targets = combos.repeat_interleave(per_caption, dim=0)  # (N, 3)
    ids = torch.as_tensor(caption_id(*targets.T.numpy()), dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    clips = torch.cat(
        [sample_clips(model, ids[i : i + batch], steps, cfg_scale, generator)
         for i in range(0, len(ids), batch)]
    )  # fmt: skip
    return score_clips(clips, targets, checker, n_ref=n_ref), clips


def score_video_dit(
    model: VideoDiT,
    checker,
    scales: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0),
    per_caption: int = 3,
    steps: int = 20,
    seed: int = 5,
    n_ref: int = 2000,
) -> dict:
    """The model card's tables: `evaluate_captions` on the 20 seen captions of
    `eval_combos('train')` and the 20 held-out ones, at each guidance scale, with the protocol
    and the seconds it took. Rows: {'guidance', 'captions', 'item', ..., 'fid', 'fid_floor',
    'motion_confusion'} (rows: motion asked, columns: motion read back, `CLIP_MOTIONS` order)."""
    start, rows = time.perf_counter(), []
    for scale in scales:
        for split in ("train", "held_out"):
            combos = eval_combos(split)
            scores, clips = evaluate_captions(
                model, checker, combos, per_caption, steps, scale, seed, n_ref
            )
            asked = combos.repeat_interleave(per_caption, dim=0)
            table = confusion(checker, clips, asked, "motion").tolist()
            rows.append({"guidance": scale, "captions": split, **scores, "motion_confusion": table})
    protocol = {"sampler": f"euler {steps}", "per_caption": per_caption, "seed": seed}
    protocol["n_ref"] = n_ref
    machine = f"{cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    seconds = round(time.perf_counter() - start, 1)
    return {"protocol": protocol, "rows": rows, "seconds": seconds, "machine": machine}


# The captions of the card's and the README's sample strip: four seen, then four held out.
SAMPLE_CAPTIONS = (
    "a gold ring growing",
    "an azure bow sliding right",
    "a violet key sliding right",
    "an emerald flask spinning right",
    "a crimson sword spinning left",
    "a violet helm spinning right",
    "an azure ring growing",
    "a crimson bow sliding right",
)


def save_samples(
    model: VideoDiT,
    path: str | Path,
    captions: tuple[str, ...] = SAMPLE_CAPTIONS,
    steps: int = 20,
    cfg_scale: float = 3.0,
    seed: int = 1,
) -> tuple[Path, Path]:
    """One clip per caption as a PNG strip (frames left to right, held-out captions marked) and
    an animated GIF of the same clips side by side, next to it (same name, .gif)."""
    generator = torch.Generator().manual_seed(seed)
    clips = sample_clips(model, list(captions), steps, cfg_scale, generator)
    labels = [c + ("  [held out]" if parse_caption(c) in HELD_OUT else "") for c in captions]
    title = f"video DiT samples (Euler {steps} steps, guidance {cfg_scale:g}, seed {seed})"
    png, gif = Path(path), Path(path).with_suffix(".gif")
    clip_strips(clips, labels, title).savefig(png, dpi=100)
    gif.write_bytes(clip_gif(clips, zoom=4))
    return png, gif


def _evaluate_command(path: str, out: str | None, samples: str | None = None) -> None:
    """Grade an exported video DiT, or a training checkpoint's EMA, with the shipped clip
    checker; print (and save) the scores."""
    if str(path).endswith(".safetensors"):
        cost = read_config(path).get("cost")
    else:  # a training checkpoint: its step and recent loss
        saved = load_checkpoint(path)
        cost = {"steps": saved["step"], "loss_last_250": float(saved["history"][-250:].mean())}
    model = load_model(path)
    checker = load_pretrained("clip-checker")
    result = {"model": str(path), "cost": cost, **score_video_dit(model, checker)}
    if samples:
        save_samples(model, samples)
    text = json.dumps(result, indent=1)
    if out:
        Path(out).write_text(text + "\n")
    print(text)


def _export(ema: VideoDiT, path: Path, run_config: dict) -> None:
    """float16 weights (the caption table stays int64) and the run config in the header."""
    extra = {k: v for k, v in run_config.items() if k != "model"}
    save_model(ema, path, extra=extra, dtype=torch.float16)


def _parser():
    p = argparse.ArgumentParser(prog=f"python -m {__name__}", description=main.__doc__)
    p.add_argument("--out-dir", default="runs/video_dit", help="checkpoints (resumable)")
    p.add_argument("--export", default=None, help="also write float16 EMA weights here")
    p.add_argument("--n-clips", type=int, default=32000)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--ema-decay", type=float, default=0.995)
    p.add_argument("--hidden-size", type=int, default=VideoDiTConfig.hidden_size)
    p.add_argument("--depth", type=int, default=VideoDiTConfig.depth)
    p.add_argument("--num-heads", type=int, default=VideoDiTConfig.num_heads)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--resume", action="store_true")
    p.add_argument(
        "--init", default=None, help="start from the EMA weights of this checkpoint (a second, "
        "lower-learning-rate stage)"
    )  # fmt: skip
    p.add_argument(
        "--evaluate", default=None, metavar="FILE", help="no training: grade this exported model "
        "or the EMA of this training checkpoint "
        "(seen and held-out captions, guidance 1, 2, 3 and 5) with the shipped clip checker"
    )  # fmt: skip
    p.add_argument("--scores-out", default=None, help="with --evaluate: also write the JSON here")
    p.add_argument(
        "--samples-out", default=None, metavar="PNG", help="with --evaluate: also draw the "
        "sample strip of SAMPLE_CAPTIONS here (and an animated .gif beside it)"
    )  # fmt: skip
    return p


def _initial_model(args) -> VideoDiT:
    """A fresh model of the requested shape, or one holding the EMA weights of --init."""
    arch = {"hidden_size": args.hidden_size, "depth": args.depth, "num_heads": args.num_heads}
    model = VideoDiT(VideoDiTConfig(**arch))
    if args.init:
        state = load_checkpoint(args.init)["ema"]
        if any(state[k].shape != v.shape for k, v in model.state_dict().items() if k in state):
            raise ValueError(
                f"{args.init} holds a model of another shape; pass the --hidden-size, --depth "
                "and --num-heads it was trained with"
            )
        model.load_state_dict(state)
    return model


def _train_command(args) -> None:
    torch.manual_seed(args.seed)
    model = _initial_model(args)  # before the data, so that a wrong --init fails at once
    data = make_clips(args.n_clips, seed=args.seed, split="train")
    train = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=0 if args.init else 100,
        ema_decay=args.ema_decay,
        seed=args.seed,
        checkpoint_every=250,
        log_every=50,
    )
    run_config = {"diffusion": asdict(VIDEO_DIFFUSION)}
    run_config["data"] = {"n_clips": args.n_clips, "seed": args.seed, "frames": CLIP_FRAMES}
    if args.init:
        run_config["init"] = args.init
    start = time.perf_counter()

    def report(step: int, loss: float) -> None:
        if step % 250 == 0:
            print(f"step {step} loss {loss:.4f} {time.perf_counter() - start:.0f}s", flush=True)

    result = fit(
        model, make_loss(VIDEO_DIFFUSION), data, train, args.out_dir, args.resume,
        quiet=True, callback=report, run_config=run_config,
    )  # fmt: skip
    cost = {"steps": result.step, "seconds_this_session": round(time.perf_counter() - start, 1)}
    if args.export:
        _export(result.ema, Path(args.export), {**run_config, "cost": cost})
    print(json.dumps({**cost, "final_loss_mean_last_100": sum(result.history[-100:]) / 100}))


def main(argv=None) -> None:
    """Train the text-to-video DiT on Animated Relics and export its EMA weights, or grade an
    exported one (--evaluate)."""
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.evaluate:
        _evaluate_command(args.evaluate, args.scores_out, args.samples_out)
    else:
        _train_command(args)


if __name__ == "__main__":
    main()
