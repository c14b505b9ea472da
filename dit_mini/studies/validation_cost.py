"""What the input checks cost: a DiT forward pass and a training step, with and without them.

`DiT.forward` checks its inputs (`DiT._validate_inputs`: types, dtypes, devices and shapes
always; NaN, time range and label range on CPU tensors, or once per model on a GPU) and the
diffusion loss checks a given t and eps. This study times the same forward pass and the same
training step with the checks and with them bypassed (t made a (B,) tensor, nothing else),
alternating the two in interleaved repeats so that a changing machine load hits both alike,
and prints the medians and the difference; it also times the checks alone (best of several
runs), a figure that the load of a shared machine blurs much less than a whole step.

    python -m dit_mini.studies.validation_cost --preset tiny --batch-size 64 --repeats 15

Recorded in notebooks/MEASUREMENTS.md (issue 25).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import torch

from ..diffusion.losses import DiffusionLoss, make_loss
from ..models.dit import DiT, dit_config
from ..runtime import pick_device
from ..train.config import TrainConfig
from ..train.session import TrainingSession

__all__ = ["unchecked", "validation_cost", "format_cost", "main"]


@contextlib.contextmanager
def unchecked(model: DiT):
    """Within the block, `model` and the diffusion loss skip their input checks."""

    def bare(x, t, y):
        t = torch.as_tensor(t, device=x.device)
        return t.expand(x.shape[0]) if t.dim() == 0 else t

    saved = DiffusionLoss._check_given
    model._validate_inputs = bare  # an instance attribute shadows the method
    DiffusionLoss._check_given = lambda self, x0, t, eps: None
    try:
        yield
    finally:
        del model._validate_inputs
        DiffusionLoss._check_given = saved


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, calls: int, device: torch.device) -> float:
    """Seconds per call of `fn`, over `calls` calls."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / calls


def validation_cost(preset="tiny", batch_size=64, repeats=15, calls=5, device=None) -> dict:
    """Median ms per forward pass and per training step, checked and unchecked (interleaved)."""
    device = pick_device(device)
    torch.manual_seed(0)
    model = DiT(dit_config(preset, input_size=32, num_classes=10)).to(device)
    n = 4 * batch_size
    data = (torch.rand(n, 3, 32, 32) * 2 - 1, torch.arange(n) % 10)
    cfg = TrainConfig(steps=10**6, batch_size=batch_size, lr=1e-4, grad_clip=1.0)
    run = TrainingSession(model, make_loss(), data, cfg, None, device, None)
    x = torch.randn(batch_size, 3, 32, 32, device=device)
    t = torch.randint(0, 1000, (batch_size,), device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)

    @torch.no_grad()
    def forward():
        model(x, t, y)

    loss, x0 = make_loss(), x.clone()

    def checks_alone():  # the checks of one training step, without the work they guard
        model._validate_inputs(x, t, y)
        loss._check_given(x0, t, None)

    checks = 1000 * min(_time(checks_alone, 200, device) for _ in range(5))
    times = {k: [] for k in ("forward_checked", "forward_bare", "step_checked", "step_bare")}
    forward(), run.train_step()  # warm-up
    for _ in range(repeats):
        times["forward_checked"].append(_time(forward, calls, device))
        with unchecked(model):
            times["forward_bare"].append(_time(forward, calls, device))
        times["step_checked"].append(_time(run.train_step, calls, device))
        with unchecked(model):
            times["step_bare"].append(_time(run.train_step, calls, device))
    medians = {k: 1000 * statistics.median(v) for k, v in times.items()}
    return {
        "preset": preset, "batch_size": batch_size, "repeats": repeats, "calls": calls,
        "device": str(device), "threads": torch.get_num_threads(),
        "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        **{f"{k}_ms": round(v, 3) for k, v in medians.items()},
        "checks_alone_ms": round(checks, 4),
        "forward_overhead_pct": round(100 * (medians["forward_checked"] /
                                             medians["forward_bare"] - 1), 2),
        "step_overhead_pct": round(100 * (medians["step_checked"] / medians["step_bare"] - 1), 2),
    }  # fmt: skip


def format_cost(r: dict) -> str:
    return (
        f"{r['preset']} DiT, batch {r['batch_size']}, {r['device']}, {r['threads']} threads, "
        f"load {r['load']}: median of {r['repeats']} interleaved repeats x {r['calls']} calls\n"
        f"  forward: {r['forward_checked_ms']:.2f} ms checked, {r['forward_bare_ms']:.2f} ms "
        f"bare ({r['forward_overhead_pct']:+.1f} %)\n"
        f"  training step: {r['step_checked_ms']:.2f} ms checked, {r['step_bare_ms']:.2f} ms "
        f"bare ({r['step_overhead_pct']:+.1f} %)\n"
        f"  the checks alone (best of 5 x 200 calls): {r['checks_alone_ms']:.3f} ms per step, "
        f"{100 * r['checks_alone_ms'] / r['step_bare_ms']:.3f} % of a bare step"
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m dit_mini.studies.validation_cost",
                                description=__doc__.split("\n\n")[0])  # fmt: skip
    p.add_argument("--preset", default="tiny")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    r = validation_cost(args.preset, args.batch_size, args.repeats, args.calls, args.device)
    print(format_cost(r))


if __name__ == "__main__":
    main()
