"""The `dit-mini` command line: train, sample, quickstart, fid, gflops, bench and course tools.

    dit-mini quickstart                      # train the tiny DiT on Relics, write a sample grid
    dit-mini train --preset tiny --data relics --steps 2000 --out runs/tiny
    torchrun --nproc_per_node=2 --no-python dit-mini train ...   # same run, two processes
    dit-mini sample --checkpoint runs/tiny/checkpoint.pt --cfg-scale 2 --out grid.png
    dit-mini gflops --preset DiT-S/2 --preset tiny
    dit-mini bench                           # matmul rate, training and sampling speed
    dit-mini fid --checkpoint runs/tiny/checkpoint.pt --n 1000 --features relic --json
    dit-mini course student notebooks/ student/

Every subcommand explains its options with --help. Bad input ends with one line
"dit-mini: error: ..." naming the problem and the fix, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch

from .recipes import RECIPES, quickstart, sample_images, train_from_options
from .runtime import dist_info
from .train import EXPORT_NAME, TrainConfig, TrainingDiverged

__all__ = ["build_parser", "main"]


def _quickstart_cmd(args: argparse.Namespace) -> int:
    run = quickstart(args.out, args.minutes, args.steps, args.recipe, args.device, args.quiet)
    result, batch = run["result"], RECIPES[args.recipe].train.batch_size
    print(
        f"quickstart done in {run['seconds'] / 60:.1f} min: {result.step} steps of {batch} "
        f"images, {result.images_per_second:.0f} images/s of training\n"
        f"  samples (a row per class): {run['samples']}\n  loss curve: {run['loss_curve']}\n"
        f"  checkpoint: {run['checkpoint']}  (EMA weights: {run['weights']})\n"
        f"more samples: dit-mini sample --checkpoint {run['checkpoint']} --out grid.png"
    )
    return 0


def _bench_cmd(args: argparse.Namespace) -> int:
    if args.what == "ttr":
        from .ttr import main as ttr_main

        argv = ["--recipe", args.recipe, "--minutes", str(args.minutes), "--seed", str(args.seed)]
        argv += ["--eval-every", str(args.eval_every), "--n-eval", str(args.n_eval)]
        argv += ["--out", args.out] if args.out else []
        ttr_main(argv + (["--threads", str(args.threads)] if args.threads else []))
        return 0
    from .bench import format_report, run_benchmark

    presets = tuple(args.preset or ("tiny", "DiT-S/4"))
    result = run_benchmark(
        presets=presets,
        batch_size=args.batch_size,
        seconds=args.seconds,
        windows=args.windows,
        device=args.device,
        compile=args.compile,
        threads=args.threads,
        sample_presets=presets[:1],
        ddim_steps=args.ddim_steps,
        fused_optimizer=not args.no_fused,
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def _fid_cmd(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_samples, load_samples

    if (args.checkpoint is None) == (args.samples is None):
        raise ValueError("give exactly one of --checkpoint (draw samples) or --samples (a file)")
    if args.samples is not None:
        images, labels = load_samples(args.samples)
        images, labels = images[: args.n], None if labels is None else labels[: args.n]
    else:
        images, labels = sample_images(
            args.checkpoint, args.n, args.sampler, args.steps, args.cfg_scale, None, args.seed,
            args.device, args.batch_size,
        )  # fmt: skip
    result = evaluate_samples(images, args.features, args.dataset, args.n_reference, labels=labels)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"FID {result['fid']:.2f} (floor {result['fid_floor']:.2f}), KID "
            f"{result['kid']:.4f} +- {result['kid_std']:.4f} (floor {result['kid_floor']:.4f}); "
            f"{result['n']} samples against {result['n_reference']} real {result['dataset']}, "
            f"{result['features']} features"
        )
        if "class_accuracy" in result:
            print(f"class accuracy {100 * result['class_accuracy']:.1f}% (Relics classifier)")
    return 0


def _sample_cmd(args: argparse.Namespace) -> int:
    from .viz import save_image_grid

    images, y = sample_images(
        args.checkpoint, args.n, args.sampler, args.steps, args.cfg_scale, args.label, args.seed,
        args.device, args.batch_size,
    )  # fmt: skip
    nrow = args.nrow or (
        -(-args.n // int(y.max() + 1)) if y is not None and args.label is None else None
    )
    print(f"wrote {save_image_grid(images, args.out, nrow=nrow)}")
    if args.save_samples:
        Path(args.save_samples).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"images": images, "labels": y}, args.save_samples)
        print(f"wrote {args.save_samples} (images in [-1, 1], labels)")
    return 0


def _train_cmd(args: argparse.Namespace) -> int:
    if args.out is None:
        args.out = Path("runs") / re.sub(
            r"[^A-Za-z0-9_.-]+", "-", f"{args.preset}-{Path(args.data).name}"
        )
    budget = None if args.minutes is None else 60 * args.minutes
    result = train_from_options(args, budget_s=budget)
    if dist_info().is_main and not args.quiet:
        print(
            f"trained {result.step} steps in {result.seconds:.1f} s "
            f"({result.images_per_second:.0f} images/s); checkpoint {result.checkpoint}, "
            f"EMA weights {Path(args.out) / EXPORT_NAME}"
        )
    return 0


def _gflops_cmd(args: argparse.Namespace) -> int:
    from .flops import format_table, gflops_report

    overrides = dict(input_size=args.input_size, in_channels=args.in_channels)
    overrides.update(num_classes=args.num_classes, learn_sigma=args.learn_sigma)
    reports = [gflops_report(name, **overrides) for name in args.preset or ["tiny"]]
    print(json.dumps(reports, indent=2) if args.json else format_table(reports))
    return 0


def _course_cmd(args: argparse.Namespace) -> int:
    from .course import grade_notebook, make_student_notebooks

    if args.action == "student":
        for path in make_student_notebooks(args.src, args.dst):
            print(f"wrote {path}")
        return 0
    grade = grade_notebook(args.src, timeout=args.timeout)
    print(grade.summary())
    return 0 if grade.passed == grade.total else 1


_D = TrainConfig()
# fmt: off
# (flag, type, default, help); type bool makes an on/off switch.
TRAIN_OPTIONS = [
    ("--preset", str, "tiny", "model preset: a DiT ('nano', 'tiny', 'small', 'DiT-S/2' ... "
     "'DiT-XL/8') or a U-Net ('unet-nano', 'unet-tiny', 'unet-small')"),
    ("--data", str, "relics", "'relics' (generated offline), 'cifar10' (downloaded once, cached) "
     "or the path of a folder of images"),
    ("--n-images", int, None, "use the first N images (relics: generate N; default: all, "
     "50,000 relics)"),
    ("--image-size", int, 32, "image side in pixels; images are resized to it"),
    ("--patch-size", int, None, "override the DiT preset's patch size (e.g. 1 or 2 for 8x8 "
     "latents)"),
    ("--steps", int, _D.steps, "optimizer steps in total"),
    ("--batch-size", int, _D.batch_size, "GLOBAL batch size, split equally among the "
     "processes under torchrun"),
    ("--lr", float, _D.lr, "AdamW learning rate"),
    ("--weight-decay", float, _D.weight_decay, "AdamW weight decay"),
    ("--warmup-steps", int, _D.warmup_steps, "steps of linear learning-rate warm-up (0: none)"),
    ("--ema-decay", float, _D.ema_decay, "decay of the moving average of the weights (the EMA "
     "model is the one sampled)"),
    ("--grad-clip", float, _D.grad_clip, "clip the gradient norm to this value (0: no clipping)"),
    ("--cfg-dropout", float, _D.cfg_dropout, "probability of replacing a label by the null "
     "class, so the model learns classifier-free guidance (0: never)"),
    ("--objective", str, "eps", "what the network predicts: eps (noise), v (velocity), x0 (the "
     "image) or flow (flow-matching velocity)"),
    ("--schedule", str, "linear", "noise schedule of eps, v and x0 objectives: linear or cosine"),
    ("--time-sampling", str, "uniform", "how training draws flow times: uniform or logit_normal "
     "(more weight on the middle times; SD3)"),
    ("--weighting", str, "none", "loss weighting of eps, v and x0 objectives: none or min_snr"),
    ("--seed", int, _D.seed, "seed of the initial weights, data order and noise"),
    ("--out", Path, None, "folder for checkpoint.pt and ema.safetensors (default: "
     "runs/PRESET-DATA)"),
    ("--checkpoint-every", int, 500, "write a checkpoint every K steps (and at the end)"),
    ("--log-every", int, _D.log_every, "steps between loss updates on the progress bar"),
    ("--vae", str, None, "train a latent DiT on the latents of this VAE file (e.g. "
     "assets/vae.safetensors); its samples are decoded with it"),
    ("--minutes", float, None, "also stop after this many minutes of training (the checkpoint "
     "is written; --resume continues)"),
    ("--resume", bool, False, "continue the run saved in --out; it must have the same options, "
     "except --steps, --checkpoint-every and --log-every"),
]
DEVICE_OPTIONS = [
    ("--device", str, None, "cpu, cuda, cuda:1 or mps (default: the best available)"),
    ("--quiet", bool, False, "no progress bar and no summary"),
]
SAMPLE_OPTIONS = [
    ("--checkpoint", str, None, "a checkpoint.pt or ema.safetensors file", "required"),
    ("--n", int, 64, "number of samples"),
    ("--sampler", str, None, "ddim or ddpm (all steps) for eps/v/x0 models, euler or heun for "
     "flow models (default: ddim or euler)"),
    ("--steps", int, 50, "sampling steps (ddim, euler, heun)"),
    ("--cfg-scale", float, 1.0, "classifier-free guidance scale (1: none; 2 to 4 sharpen "
     "class features)"),
    ("--class", int, None, "sample only class K (default: every class, one grid row each)"),
    ("--seed", int, 0, "seed of the sampling noise"),
    ("--out", str, "samples.png", "PNG file for the grid of samples"),
    ("--nrow", int, None, "images per grid row"),
    ("--save-samples", str, None, "also save the raw samples (a .pt dict: images in [-1, 1], "
     "labels), e.g. for FID"),
    ("--batch-size", int, 256, "samples drawn at once"),
    ("--device", str, None, "cpu, cuda or mps (default: the best available)"),
]
FID_OPTIONS = [
    ("--checkpoint", str, None, "draw the samples from this checkpoint.pt or ema.safetensors"),
    ("--samples", str, None, "or read them from a file written by `dit-mini sample "
     "--save-samples`"),
    ("--n", int, 1000, "number of samples (FID is biased upward at small n: compare like n)"),
    ("--n-reference", int, None, "real images in the reference set (default: max(n, 2000))"),
    ("--features", str, "relic", "'inception' (standard FID, slow on a CPU) or 'relic' (the "
     "Relics classifier's features, fast)"),
    ("--dataset", str, "relics", "real data to compare with: relics or cifar10"),
    *SAMPLE_OPTIONS[2:5],  # --sampler --steps --cfg-scale
    ("--seed", int, 0, "seed of the sampling noise"),
    ("--batch-size", int, 256, "samples drawn at once"),
    ("--device", str, None, "cpu, cuda or mps (default: the best available)"),
    ("--json", bool, False, "print JSON: fid, kid, kid_std, n, n_reference, fid_floor, "
     "kid_floor, features, dataset (and class_accuracy for class-conditional relic models)"),
]
QUICKSTART_OPTIONS = [
    ("--out", str, "quickstart", "output folder (running again continues the run saved there)"),
    ("--minutes", float, None, "wall-clock training budget (default: the recipe's, "
     f"{RECIPES['quickstart'].minutes:g}); training stops at the budget or the recipe's steps"),
    ("--steps", int, None, "training steps (default: the recipe's, fewer in FAST mode)"),
    ("--recipe", str, "quickstart", f"named recipe, one of {sorted(RECIPES)}"),
    *DEVICE_OPTIONS,
]
BENCH_OPTIONS = [
    ("--preset", "append", None, "DiT preset to time; repeat for several (default: tiny and "
     "DiT-S/4; the first one is also timed sampling)"),
    ("--batch-size", int, 64, "batch size of the training and sampling steps"),
    ("--seconds", float, 2.0, "length of each timing window"),
    ("--windows", int, 3, "timing windows per measurement (the median is reported)"),
    ("--ddim-steps", int, 50, "DDIM steps of the sampling measurement (DDPM takes all 1000)"),
    ("--compile", bool, False, "torch.compile the model (the compile time is reported apart)"),
    ("--no-fused", bool, False, "plain for-each AdamW instead of the fused one"),
    ("--json", bool, False, "print the result as JSON"),
    ("--device", str, None, "cpu, cuda or mps (default: the best available)"),
    ("--recipe", str, "quickstart", "ttr: named recipe of dit_mini.ttr.RECIPES"),
    ("--minutes", float, 5.0, "ttr: minutes of training (evaluations not counted)"),
    ("--eval-every", float, 60.0, "ttr: seconds of training between evaluations"),
    ("--n-eval", int, 100, "ttr: samples per evaluation (10 per class)"),
    ("--seed", int, 0, "ttr: seed of the run"),
    ("--threads", int, None, "torch CPU threads (default: torch's)"),
    ("--out", str, None, "speed: also write the JSON result to this file; ttr: output folder "
     "(default: runs/ttr-RECIPE)"),
]
GFLOPS_OPTIONS = [
    ("--input-size", int, 32, "image or latent side in pixels"),
    ("--in-channels", int, 3, "input channels (3 for RGB, 4 for VAE latents)"),
    ("--num-classes", int, 10, "number of classes"),
    ("--learn-sigma", bool, False, "the model also predicts the variance (as the paper's models)"),
    ("--json", bool, False, "print JSON instead of a table"),
]
# fmt: on


def _add_options(parser: argparse.ArgumentParser, options: list) -> None:
    for flag, kind, default, text, *required in options:
        dest = "label" if flag == "--class" else None  # `args.class` would be a syntax error
        extra = {"dest": dest} if dest else {}
        if kind is bool:
            parser.add_argument(flag, action="store_true", help=text, **extra)
        elif kind == "append":
            parser.add_argument(flag, action="append", default=default, help=text, **extra)
        else:
            parser.add_argument(
                flag, type=kind, default=default, required=bool(required), help=text, **extra
            )


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of `dit-mini` and all its subcommands."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="dit-mini", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"dit-mini {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, func, summary, description, options):
        p = sub.add_parser(
            name,
            help=summary,
            description=description,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        _add_options(p, options)
        p.set_defaults(func=func)
        return p

    command(
        "train",
        _train_cmd,
        "train a model",
        "Train a model, with checkpoints and exact "
        "resume; under torchrun with one process per device.",
        TRAIN_OPTIONS + DEVICE_OPTIONS,
    )
    command(
        "sample",
        _sample_cmd,
        "draw samples from a checkpoint",
        "Sample images from a checkpoint or exported weights and save them as a PNG grid.",
        SAMPLE_OPTIONS,
    )
    command(
        "quickstart",
        _quickstart_cmd,
        "the first demo: train a tiny DiT and see its samples",
        "Train the tiny DiT on Relics for a few minutes, then write a sample grid (a row per "
        "class), a loss curve and the checkpoint.",
        QUICKSTART_OPTIONS,
    )
    p = command(
        "bench",
        _bench_cmd,
        "measure training speed, or time to recognizable relics",
        "'speed' (default) measures, in one run, this machine's fp32 matmul rate, the training "
        "images/s and achieved GFLOP/s of each preset with its fraction of the matmul rate, and "
        "DDPM/DDIM sampling images/s; 'ttr' trains a recipe on Relics for --minutes and records "
        "class accuracy and FID against wall-clock (ttr.json, ttr.png, samples.png).",
        BENCH_OPTIONS,
    )
    p.add_argument(
        "what", nargs="?", choices=("speed", "ttr"), default="speed", help="what to measure"
    )
    command(
        "fid",
        _fid_cmd,
        "FID and KID of samples against real data",
        "Draw samples from a checkpoint (or read saved ones) and print FID and KID against real "
        "images, beside the real-vs-real floor at the same sample count.",
        FID_OPTIONS,
    )
    p = command(
        "gflops",
        _gflops_cmd,
        "parameters and Gflops of model presets",
        "Count the Gflops of one forward pass, as in the DiT paper's table.",
        GFLOPS_OPTIONS,
    )
    p.add_argument(
        "--preset",
        action="append",
        help="a DiT or U-Net preset; repeat it for a table (default: tiny)",
    )
    p = command(
        "course",
        _course_cmd,
        "build student notebooks, grade notebooks",
        "'student SRC "
        "DST' removes the solutions from a notebook or a folder of notebooks; 'grade SRC' "
        "runs a notebook and counts its passed checks.",
        [],
    )
    p.add_argument("action", choices=("student", "grade"), help="what to do")
    p.add_argument("src", type=Path, help="solution notebook or folder (student); notebook (grade)")
    p.add_argument("dst", type=Path, nargs="?", help="output notebook or folder (student only)")
    p.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (grade)")
    return parser  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `dit-mini` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "course" and args.action == "student" and args.dst is None:
        parser.error("course student needs SRC and DST")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, NotADirectoryError) as error:  # incl. CheckpointError
        print(f"dit-mini: error: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"dit-mini: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dit-mini: interrupted; continue a training run with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
