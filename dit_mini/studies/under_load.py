"""Training speed on a shared CPU: the trainer's thread choice against fixed counts, with K busy
processes beside it, and idle in the same run.

A learner's laptop always runs something else. Each row trains the quickstart's model and recipe
(`nano` DiT, flow matching, batch 16) with the real trainer (`dit_mini.train.trainer.fit`, so
the thread tuning of `dit_mini.threads` is included with its probing cost) for a fixed wall
time, while K processes spin on other cores, and reports training images per second.

    dit-mini bench --under-load 1          # idle and with one busy process: auto, 1 and N threads

The goal of issue 16: with one busy process the default keeps at least half of its idle speed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import torch

from ..data.relics import make_relics
from ..diffusion.losses import DiffusionConfig, make_loss
from ..runtime import machine_info
from ..threads import thread_candidates
from ..train.config import TrainConfig
from ..train.recipes import RECIPES, model_from_preset
from ..train.trainer import fit

__all__ = ["busy_processes", "train_speed", "under_load", "format_under_load"]

SPIN = "while True: pass"


@contextlib.contextmanager
def busy_processes(k: int) -> Iterator[list[subprocess.Popen]]:
    """K Python processes that keep one core each busy until the block ends."""
    if k < 0:
        raise ValueError(f"--under-load {k}: the number of busy processes must be >= 0")
    procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(k)]
    try:
        time.sleep(0.5 if k else 0)  # let them start spinning
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def train_speed(threads: int | None, seconds: float, seed: int = 0) -> dict:
    """Training images/s of the quickstart recipe for `seconds` of wall time (the first steps,
    including any thread probing, counted); threads None lets the trainer choose."""
    recipe = RECIPES["quickstart"]
    data = make_relics(1024, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_from_preset(recipe.preset, 32, 10, recipe.train.class_dropout_prob)
    config = TrainConfig(**{**recipe.train.__dict__, "steps": 10**6, "checkpoint_every": 0})
    start = time.perf_counter()

    def out_of_time(step: int, loss: float) -> bool:
        return time.perf_counter() - start > seconds

    result = fit(model, make_loss(DiffusionConfig(**recipe.diffusion)), data, config,
                 device="cpu", quiet=True, callback=out_of_time, threads=threads)  # fmt: skip
    return {
        "threads": "auto" if threads is None else threads,
        "chosen": result.threads,
        "steps": result.step,
        "images_per_s": result.images_per_second,
    }


def under_load(k: int, seconds: float = 20.0, most: int | None = None) -> dict:
    """Rows for 0 and `k` busy processes x (auto, 1 thread, all threads)."""
    if seconds <= 0:
        raise ValueError(f"seconds={seconds} must be positive")
    most = most or os.cpu_count() or 1
    policies = [None, *dict.fromkeys([1, thread_candidates(most)[-1]])]
    saved, env = torch.get_num_threads(), os.environ.pop("DIT_MINI_THREADS", None)
    rows = []
    try:
        for load in dict.fromkeys([0, k]):
            with busy_processes(load):
                for threads in policies:
                    torch.set_num_threads(most)
                    rows.append({"busy": load, **train_speed(threads, seconds)})
    finally:
        torch.set_num_threads(saved)
        if env is not None:
            os.environ["DIT_MINI_THREADS"] = env
    return {"machine": machine_info(), "seconds": seconds, "rows": rows}


def format_under_load(result: dict) -> str:
    """A table of `under_load`: img/s per load and thread policy, and the share of idle speed."""
    idle = {r["threads"]: r["images_per_s"] for r in result["rows"] if r["busy"] == 0}
    m = result["machine"]
    lines = [
        f"training speed (quickstart recipe, {result['seconds']:g} s per row) on {m['cpu']}, "
        f"{m['cpu_count']} cores, torch {m['torch']}",
        f"{'busy':>4} {'threads':>8} {'chosen':>6} {'img/s':>8} {'of idle':>8}",
    ]
    for r in result["rows"]:
        share = r["images_per_s"] / idle[r["threads"]] if idle.get(r["threads"]) else float("nan")
        lines.append(
            f"{r['busy']:>4} {r['threads']!s:>8} {r['chosen']!s:>6} {r['images_per_s']:>8.1f} "
            f"{share:>8.0%}"
        )
    return "\n".join(lines)
