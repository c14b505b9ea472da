"""The `dit-mini` command line: train, sample, quickstart, fid, gflops, bench and course tools.

    dit-mini quickstart                      # train the tiny DiT on Relics, write a sample grid
    dit-mini train --preset tiny --data relics --steps 2000 --out runs/tiny
    torchrun --nproc_per_node=2 --no-python dit-mini train ...   # same run, two processes
    dit-mini sample --checkpoint runs/tiny/checkpoint.pt --cfg-scale 2 --out grid.png
    dit-mini gflops --preset DiT-S/2 --preset tiny
    dit-mini bench                           # matmul rate, training and sampling speed
    dit-mini fid --checkpoint runs/tiny/checkpoint.pt --n 1000 --features relic --json
    dit-mini course student notebooks/ student/
    dit-mini course site site/                # the course as HTML pages with figures

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

from .. import __version__
from ..course.grading import NoSandboxError, grade_paths
from ..course.notebooks import make_student_notebooks, tag_notebooks
from ..course.site import build_site, check_site
from ..metrics.evaluation import evaluate_samples, load_samples
from ..metrics.flops import format_table, gflops_report
from ..runtime import dist_info
from ..storage import atomic_write, check_output_file, check_writable
from ..studies.bench import format_report, run_benchmark
from ..studies.ttr import main as ttr_main
from ..studies.under_load import format_under_load, under_load
from ..train.lock import run_lock
from ..train.recipes import RECIPES, quickstart, sample_images, train_from_options
from ..train.session import TrainingDiverged
from ..train.trainer import EXPORT_NAME, TrainingInterrupted
from ..viz import IMAGE_SUFFIXES, save_image_grid
from .options import (
    BENCH_OPTIONS,
    DEVICE_OPTIONS,
    FID_OPTIONS,
    GFLOPS_OPTIONS,
    QUICKSTART_OPTIONS,
    SAMPLE_OPTIONS,
    TRAIN_OPTIONS,
    add_options,
)

__all__ = ["build_parser", "main"]


def _quickstart_cmd(args: argparse.Namespace) -> int:
    run = quickstart(
        args.out, args.minutes, args.steps, args.recipe, args.device, args.quiet, args.threads
    )
    result, batch = run["result"], RECIPES[args.recipe].train.batch_size
    print(
        f"quickstart done in {run['seconds'] / 60:.1f} min: {result.step} steps of {batch} "
        f"images, {result.images_per_second:.0f} images/s of training\n"
        f"  samples (a row per class): {run['samples']}\n  loss curve: {run['loss_curve']}\n"
        f"  checkpoint: {run['checkpoint']}  (EMA weights: {run['weights']})\n"
        f"more samples: dit-mini sample --checkpoint {run['checkpoint']} --out grid.png"
    )
    if result.images_per_second == 0:  # the saved run had its steps already: nothing trained
        print(
            f"{args.out} already holds all {result.step} steps of this run, so nothing was "
            f"trained; to train longer: dit-mini quickstart --out {args.out} "
            f"--steps {2 * result.step} --minutes 10"
        )
    return 0


def _bench_cmd(args: argparse.Namespace) -> int:
    if args.what == "ttr":
        argv = ["--recipe", args.recipe, "--minutes", str(args.minutes), "--seed", str(args.seed)]
        argv += ["--eval-every", str(args.eval_every), "--n-eval", str(args.n_eval)]
        argv += ["--out", args.out] if args.out else []
        ttr_main(argv + (["--threads", str(args.threads)] if args.threads else []))
        return 0

    if args.under_load is not None:
        result = under_load(args.under_load, seconds=args.load_seconds)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2) if args.json else format_under_load(result))
        return 0
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
    if (args.checkpoint is None) == (args.samples is None):
        raise ValueError("give exactly one of --checkpoint (draw samples) or --samples (a file)")
    if args.samples is not None:
        images, labels = load_samples(args.samples)
        images, labels = images[: args.n], None if labels is None else labels[: args.n]
    else:
        images, labels = sample_images(
            args.checkpoint, args.n, args.sampler, args.steps, args.cfg_scale, None, args.seed,
            args.device, args.batch_size, threads=args.threads,
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
    # Outputs first: a bad path fails now, not after minutes of sampling.
    if args.nrow is not None and args.nrow < 1:
        raise ValueError(f"--nrow {args.nrow}: give the number of images per grid row, >= 1")
    check_output_file(args.out, IMAGE_SUFFIXES, "sample grid (--out)")
    if args.save_samples:
        check_output_file(args.save_samples, (".pt",), "samples file (--save-samples)")
    images, y = sample_images(
        args.checkpoint, args.n, args.sampler, args.steps, args.cfg_scale, args.label, args.seed,
        args.device, args.batch_size, threads=args.threads,
    )  # fmt: skip
    nrow = args.nrow or (
        -(-args.n // int(y.max() + 1)) if y is not None and args.label is None else None
    )
    print(f"wrote {save_image_grid(images, args.out, nrow=nrow)}")
    if args.save_samples:
        samples = {"images": images, "labels": y}
        atomic_write(args.save_samples, lambda f: torch.save(samples, f))
        print(f"wrote {args.save_samples} (images in [-1, 1], labels)")
    return 0


def _train_cmd(args: argparse.Namespace) -> int:
    if args.minutes is not None and not args.minutes > 0:
        raise ValueError(f"--minutes {args.minutes}: give a positive training budget in minutes")
    if args.checkpoint_every < 1:
        raise ValueError(
            f"--checkpoint-every {args.checkpoint_every}: write a checkpoint every K >= 1 steps "
            "(a checkpoint is always written at the end; a large K writes few)"
        )
    if args.out is None:
        args.out = Path("runs") / re.sub(
            r"[^A-Za-z0-9_.-]+", "-", f"{args.preset}-{Path(args.data).name}"
        )
    check_writable(args.out)  # before the data is built: a read-only --out fails at once
    budget = None if args.minutes is None else 60 * args.minutes
    with run_lock(args.out if dist_info().is_main else None):  # before the data is built
        result = train_from_options(args, budget_s=budget)
    if dist_info().is_main and not args.quiet:
        print(
            f"trained {result.step} steps in {result.seconds:.1f} s "
            f"({result.images_per_second:.0f} images/s); checkpoint {result.checkpoint}, "
            f"EMA weights {Path(args.out) / EXPORT_NAME}"
        )
    return 0


def _gflops_cmd(args: argparse.Namespace) -> int:
    overrides = dict(input_size=args.input_size, in_channels=args.in_channels)
    overrides.update(num_classes=args.num_classes, learn_sigma=args.learn_sigma)
    reports = [gflops_report(name, **overrides) for name in args.preset or ["tiny"]]
    print(json.dumps(reports, indent=2) if args.json else format_table(reports))
    return 0


def _course_cmd(args: argparse.Namespace) -> int:
    if args.action == "student":
        if len(args.paths) != 2:
            raise ValueError("course student needs SRC and DST")
        src, dst = args.paths
        if src.is_dir() and dst.exists() and not dst.is_dir():
            raise ValueError(
                f"{dst} is a file; the student copies of the folder {src} need a "
                "folder: pass a folder name as DST"
            )
        check_writable(dst if dst.suffix != ".ipynb" else dst.parent)
        for path in make_student_notebooks(src, dst):
            print(f"wrote {path}")
        return 0
    if args.action == "site":
        if len(args.paths) != 1:
            raise ValueError("course site needs one OUT folder")
        if args.paths[0].exists() and not args.paths[0].is_dir():
            raise ValueError(f"{args.paths[0]} is a file; the site needs a folder: pass a folder")
        check_writable(args.paths[0])
        try:
            warnings = build_site(
                args.paths[0], args.solutions, names=args.notebook, timeout=args.timeout or 600
            )
        except RuntimeError as error:  # a notebook raised or its kernel died: say which
            print(f"dit-mini: site: {error}".splitlines()[0], file=sys.stderr)
            return 1
        problems = [f"Sphinx: {w}" for w in warnings] + check_site(args.paths[0])
        for problem in problems:
            print(f"dit-mini: site: {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"open {args.paths[0] / 'index.html'} in a browser")
        return 0
    if args.action == "tag":
        for src in args.paths:
            for path in tag_notebooks(src):
                print(f"tagged {path}")
        return 0
    try:
        grades = grade_paths(
            args.paths, args.solutions, timeout=args.timeout or 300, progress=print,
            out=args.out, jobs=args.jobs, unsafe_no_sandbox=args.unsafe_no_sandbox,
            allow_package_answers=args.allow_package_answers,
        )  # fmt: skip
    except NoSandboxError as error:
        print(f"dit-mini: {error}", file=sys.stderr)
        return 2
    if args.out is not None:  # (grade_paths rewrote the report after every submission)
        for name in ("grades.csv", "summary.csv", "grades.json", "notebooks"):
            print(f"wrote {args.out / name}")
    print(f"{len(grades)} notebooks graded")
    return 0  # grading ran: scores, however low, are in the report, not in the exit status


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of `dit-mini` and all its subcommands."""
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
        add_options(p, options)
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
        "DDPM/DDIM sampling images/s (--under-load K: training speed with K busy processes "
        "beside it); 'ttr' trains a recipe on Relics for --minutes and records "
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
        "build student notebooks, grade notebooks, build the course website",
        "'student SRC DST' removes the solutions from a notebook or a folder of notebooks; "
        "'tag SRC' writes nbgrader metadata into solution notebooks; 'grade PATH...' runs "
        "each submission in its own bubblewrap sandbox, calls its answers on fresh inputs and "
        "compares them with the package's references outside the sandbox (points per "
        "exercise; report rewritten after each submission; a re-run resumes); "
        "'site OUT' runs every notebook in FAST mode and renders the course with Sphinx as a "
        "website (their figures, the five acts in a sidebar, search, the glossary, launch "
        "buttons), then checks its links. Exit status: 0 when grading ran (whatever the scores) "
        "or the site is sound, 1 for a notebook that fails, a Sphinx warning, a broken link or a "
        "page without an image, 2 for bad input.",
        [],
    )
    p.add_argument("action", choices=("student", "tag", "grade", "site"), help="what to do")
    p.add_argument(
        "paths",
        type=Path,
        nargs="+",
        metavar="PATH",
        help="student: SRC DST (notebook or folder); tag: solution notebooks or "
        "folders; grade: submitted notebooks, or class folders with one subfolder "
        "per student; site: the OUT folder",
    )
    p.add_argument(
        "--solutions",
        type=Path,
        default=None,
        help="grade: folder of solution notebooks (default: the checkout's notebooks/solutions); "
        "site: render this folder of solution notebooks instead of the learners' copies",
    )
    p.add_argument(
        "--notebook",
        action="append",
        default=None,
        metavar="NAME",
        help="site: only this notebook (a file name such as 01_fog.ipynb); repeat it for more",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="grade: folder for the report (grades.csv, summary.csv, grades.json, the executed "
        "notebooks), rewritten after each submission; the same command again resumes",
    )
    p.add_argument(
        "--timeout",
        type=int,
        default=None,
        help="seconds per cell (grade: per cell and per exercise, default 300; site: 600)",
    )
    p.add_argument("--jobs", type=int, default=1, help="grade: submissions graded at once")
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="grade: run the students' code without bubblewrap, as yourself (trusted work only)",
    )
    p.add_argument(
        "--allow-package-answers",
        action="store_true",
        help="grade: give points to answers that are the package's own (alias, subclass, wrapper)",
    )
    return parser  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `dit-mini` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "course" and args.action == "student" and len(args.paths) != 2:
        parser.error("course student needs SRC and DST")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, NotADirectoryError) as error:  # incl. CheckpointError
        print(f"dit-mini: error: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"dit-mini: error: {error}", file=sys.stderr)
        return 1
    except TrainingInterrupted as stop:
        print(f"dit-mini: {stop}", file=sys.stderr)
        print(f"dit-mini: continue with: {_resume_command(args, argv)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(
            "dit-mini: stopped at once; the last checkpoint written (if any) is intact and a "
            "training run continues from it with --resume",
            file=sys.stderr,
        )
        return 130
    except OSError as error:  # a read-only folder, a full disk, ...
        where = f" {error.filename}" if error.filename else ""
        print(
            f"dit-mini: error: cannot write{where}: {error.strerror or error}; choose a writable "
            "folder with free space",
            file=sys.stderr,
        )
        return 2


def _resume_command(args: argparse.Namespace, argv: list[str] | None) -> str:
    """The command line that continues the interrupted run."""
    words = list(sys.argv[1:] if argv is None else argv)
    if args.command == "quickstart":
        return "dit-mini " + " ".join(words)  # the quickstart resumes by itself
    after_resume = {i + 1 for i, w in enumerate(words) if w == "--resume"}
    kept = [
        w
        for i, w in enumerate(words)
        if w != "--resume" and not (i in after_resume and w == "auto")
    ]
    return "dit-mini " + " ".join(kept) + " --resume"


if __name__ == "__main__":
    sys.exit(main())
