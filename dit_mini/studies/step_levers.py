"""Which change makes a CPU training step faster: interleaved pairs in one process (issue 24).

On a shared machine a step time moves with everyone else's load, so two variants timed minutes
apart cannot be compared. Here each lever is measured as a ratio: two training sessions (the
package's step, `dit_mini.train.session.TrainingSession`, and the same step with one lever
changed) are built in the same process and timed in alternation, `steps` steps at a time, for
`rounds` rounds; the median of the per-round ratios is printed with the load average. A ratio
above 1 means the variant is faster than the package as it is.

Levers (`LEVERS`, each a change to the package's step): torch's own GELU(tanh) kernel instead
of the package's sigmoid form (`TanhGELU`), the explicit attention path instead of
`scaled_dot_product_attention`, the EMA as a Python loop instead of one for-each call, the data
order drawn every step instead of once per epoch, the for-each AdamW instead of the fused one,
gradient clipping off, and two threads instead of one. `compiled` measures `torch.compile`
(its compile time and the step after it); `against_reference` times the package's step against
the reference DiT's, from a models.py the user gives (nothing of it ships here), beside the
step's matrix products alone (`step_matmuls`, `time_matmuls`): the same products, on the same
shapes, timed without anything else, which no implementation of the same fp32 step can beat; so
reference / products bounds the speed-up any rewrite of the step could reach.

    python -m dit_mini.studies.step_levers --preset nano --batch 16 --threads 1
    python -m dit_mini.studies.step_levers --compile
    python -m dit_mini.studies.step_levers --reference ~/DiT/models.py --preset DiT-S/4 --batch 32

Printed figures only; nothing here asserts a time. Results: notebooks/MEASUREMENTS.md.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import math
import os
import resource
import statistics
import time
import types
from dataclasses import replace
from pathlib import Path

import torch

from ..diffusion.losses import DiffusionConfig, make_loss
from ..models.attention import Attention
from ..models.dit import DiT, dit_config
from ..train import config as train_config
from ..train.recipes import RECIPES
from ..train.session import TrainingSession

__all__ = [
    "LEVERS",
    "make_session",
    "interleave",
    "compiled",
    "load_reference",
    "step_matmuls",
    "time_matmuls",
    "against_reference",
    "main",
]


def _loop_ema(session: TrainingSession) -> None:
    """The EMA as it was: a Python loop over every tensor."""

    @torch.no_grad()
    def update(self) -> None:
        decay = self.config.ema_decay_at(self.step)
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p, 1.0 - decay)

    session._update_ema = types.MethodType(update, session)


def _order_every_step(session: TrainingSession) -> None:
    """The epoch's shuffled order drawn again at every step, as before issue 24."""
    batch = session.batch

    def fresh_batch():
        train_config._epoch_order.cache_clear()
        return batch()

    session.batch = fresh_batch


def _explicit_attention(session: TrainingSession) -> None:
    for m in session.model.modules():
        if isinstance(m, Attention):
            m.fused = False


def _foreach_adamw(session: TrainingSession) -> None:
    cfg = session.config
    session.opt = torch.optim.AdamW(
        session.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True
    )


def _no_clip(session: TrainingSession) -> None:
    session.config = replace(session.config, grad_clip=0.0)


def _aten_gelu(session: TrainingSession) -> None:
    """Every GELU(tanh) of the model computed by torch's own kernel."""
    for m in session.model.modules():
        if isinstance(m, torch.nn.GELU):
            m.forward = types.MethodType(
                lambda self, x: torch.nn.functional.gelu(x, approximate="tanh"), m
            )


# lever name -> a function that changes a freshly built session in place
LEVERS = {
    "aten-gelu": _aten_gelu,
    "explicit-attention": _explicit_attention,
    "loop-ema": _loop_ema,
    "order-every-step": _order_every_step,
    "foreach-adamw": _foreach_adamw,
    "no-clip": _no_clip,
}


def make_session(preset: str = "nano", batch: int = 16, seed: int = 0, n_images: int = 2048):
    """A quickstart-recipe training session on random images (speed does not depend on them)."""
    recipe = RECIPES["quickstart"]
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(n_images, 3, 32, 32, generator=gen) * 2 - 1
    data = (images, torch.arange(n_images) % 10)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DiT(dit_config(preset, num_classes=10, class_dropout_prob=0.1))
    cfg = replace(recipe.train, batch_size=batch, steps=10**9, checkpoint_every=0)
    loss = make_loss(DiffusionConfig(**recipe.diffusion))
    return TrainingSession(model, loss, data, cfg, None, "cpu", None)


def _timed(session: TrainingSession, steps: int, threads: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) per step."""
    torch.set_num_threads(threads)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        session.train_step()
    return (time.perf_counter() - start) / steps, (time.process_time() - cpu) / steps


def interleave(
    lever: str | None,
    preset: str = "nano",
    batch: int = 16,
    threads: int = 1,
    rounds: int = 7,
    steps: int = 10,
    variant_threads: int | None = None,
) -> dict:
    """Time the package's step (A) and the step with `lever` applied (B) in alternation.

    `lever` None with `variant_threads` compares thread counts instead. Returns the median
    seconds per step of each and the median of the per-round ratios A / B (> 1: B is faster).
    With one thread on both sides the ratio is taken on the process's CPU time, which waiting
    for a busy core does not inflate; with more threads, on wall time ('clock' says which).
    """
    if lever is not None and lever not in LEVERS:
        raise ValueError(f"unknown lever {lever!r}; choose one of {sorted(LEVERS)}")
    a, b = make_session(preset, batch), make_session(preset, batch)
    if lever is not None:
        LEVERS[lever](b)
    tb = variant_threads or threads
    _timed(a, 3, threads), _timed(b, 3, tb)  # warm-up
    clock = 1 if threads == tb == 1 else 0  # index into (wall, cpu)
    times_a, times_b, ratios = [], [], []
    for r in range(rounds):
        order = [(a, threads, times_a), (b, tb, times_b)]
        for session, n, times in order if r % 2 == 0 else order[::-1]:
            times.append(_timed(session, steps, n))
        ratios.append(times_a[-1][clock] / times_b[-1][clock])
    wall_a, cpu_a = zip(*times_a)
    wall_b, cpu_b = zip(*times_b)
    return {
        "clock": "cpu" if clock else "wall",
        "lever": lever or f"{tb} threads",
        "preset": preset,
        "batch": batch,
        "threads": threads,
        "a_step_s": statistics.median(wall_a),
        "b_step_s": statistics.median(wall_b),
        "a_cpu_s": statistics.median(cpu_a),
        "b_cpu_s": statistics.median(cpu_b),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _cpu_with_children() -> float:
    """CPU seconds of this process and its finished children (inductor's compiler runs)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def compiled(preset: str = "nano", batch: int = 16, rounds: int = 5, steps: int = 10) -> dict:
    """`torch.compile` (inductor, the machine's C compiler) on the model of a training session,
    against eager, one thread: the compile's cost (first steps, CPU seconds with the compiler's
    child processes, wall seconds) and the eager/compiled step-time ratio afterwards. A compile
    that fails is reported as such (the step then stays eager)."""
    eager, comp = make_session(preset, batch), make_session(preset, batch)
    torch.set_num_threads(1)
    cpu, wall = _cpu_with_children(), time.perf_counter()
    try:
        comp.net = torch.compile(comp.model)
        _timed(comp, 2, 1)  # forward and backward graphs compiled here
    except Exception as err:  # no compiler, unsupported op: eager it is
        return {"preset": preset, "batch": batch, "error": f"{type(err).__name__}: {err}"[:300]}
    compile_cpu, compile_wall = _cpu_with_children() - cpu, time.perf_counter() - wall
    _timed(eager, 2, 1)
    times_e, times_c, ratios = [], [], []
    for r in range(rounds):
        order = [(eager, times_e), (comp, times_c)]
        for session, times in order if r % 2 == 0 else order[::-1]:
            times.append(_timed(session, steps, 1))
        ratios.append(times_e[-1][1] / times_c[-1][1])
    return {
        "preset": preset,
        "batch": batch,
        "compile_cpu_s": compile_cpu,
        "compile_wall_s": compile_wall,
        "eager_cpu_s": statistics.median(t[1] for t in times_e),
        "compiled_cpu_s": statistics.median(t[1] for t in times_c),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def load_reference(models_py: str | Path):
    """The `DiT_models` table of the reference implementation's models.py, given by its path
    (facebookresearch/DiT; it needs timm). The file is the user's: nothing of it ships here."""
    path = Path(models_py)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is not a file; pass the path of the reference DiT's models.py "
            "(git clone https://github.com/facebookresearch/DiT)"
        )
    spec = importlib.util.spec_from_file_location("reference_dit_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DiT_models


def step_matmuls(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor):
    """The matrix products of one training step of `model` on (x, t, y), as (a_shape, b_shape)
    pairs of torch.mm / torch.bmm: for every nn.Linear its forward product and the two of its
    backward (input and weight gradients), for every self-attention layer the two batched
    products of its forward (q k^T, weights v) and the four of its backward."""
    products, hooks = [], []

    def on_linear(module, inputs, _out):
        m, k, n = inputs[0].numel() // module.in_features, module.in_features, module.out_features
        products.extend([((m, k), (k, n)), ((m, n), (n, k)), ((n, m), (m, k))])

    def on_attention(module, inputs, _out):
        b, length, width = inputs[0].shape
        bh, d = b * module.num_heads, width // module.num_heads
        qk, av = ((bh, length, d), (bh, d, length)), ((bh, length, length), (bh, length, d))
        products.extend([qk, av, qk, av, av, ((bh, d, length), (bh, length, length))])

    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            hooks.append(module.register_forward_hook(on_linear))
        elif isinstance(module, Attention):
            hooks.append(module.register_forward_hook(on_attention))
    try:
        with torch.no_grad():
            model(x, t, y)
    finally:
        for h in hooks:
            h.remove()
    return products


def time_matmuls(products, threads: int = 1, seed: int = 0) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of computing every product of `products` once, fp32."""
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(seed)
    pairs = [(torch.randn(a, generator=gen), torch.randn(b, generator=gen)) for a, b in products]
    start, cpu = time.perf_counter(), time.process_time()
    for a, b in pairs:
        torch.mm(a, b) if a.dim() == 2 else torch.bmm(a, b)
    return time.perf_counter() - start, time.process_time() - cpu


def against_reference(
    models_py: str | Path,
    preset: str = "DiT-S/4",
    batch: int = 32,
    threads: int = 1,
    rounds: int = 4,
    steps: int = 1,
    seed: int = 0,
) -> dict:
    """The package's training step against the reference DiT's, interleaved in one process.

    Both models start from the same weights (ours loaded into the reference layout with
    `strict=True`; 'max_weight_diff' must be 0.0) and see the same batch (32x32 RGB, 10 classes,
    fp32, eps loss). The package's step is `TrainingSession.train_step` (batch, loss, backward,
    gradient clipping, fused AdamW, for-each EMA); the reference's is its train.py loop (loss,
    backward, AdamW(lr=1e-4, weight_decay=0), EMA as a Python loop over named parameters).
    Ratio > 1: the package is faster (CPU time with one thread, else wall time).
    """
    loss_fn = make_loss(DiffusionConfig())
    ours = make_session(preset, batch, seed)
    ours.config, ours.loss_fn = replace(ours.config, lr=1e-4), loss_fn
    ref_model = load_reference(models_py)[preset](
        input_size=32, in_channels=3, num_classes=10, learn_sigma=False
    )
    ref_model.load_state_dict(ours.model.state_dict(), strict=True)
    diff = max(
        float((a - b).abs().max())
        for a, b in zip(ours.model.state_dict().values(), ref_model.state_dict().values())
    )
    ref_ema = copy.deepcopy(ref_model).requires_grad_(False)
    ref_opt = torch.optim.AdamW(ref_model.parameters(), lr=1e-4, weight_decay=0)
    gen = torch.Generator().manual_seed(seed)
    x0 = ours.images[:batch]
    y = ours.labels[:batch]

    @torch.no_grad()
    def update_ema(decay=0.9999):  # the reference train.py's update_ema
        ema_params = dict(ref_ema.named_parameters())
        for name, param in ref_model.named_parameters():
            ema_params[name].mul_(decay).add_(param.data, alpha=1 - decay)

    class _Reference:
        def train_step(self):
            loss = loss_fn(ref_model, x0, y, gen)
            ref_opt.zero_grad()
            loss.backward()
            ref_opt.step()
            update_ema()

    ref = _Reference()
    t = torch.rand(batch, generator=torch.Generator().manual_seed(seed)) * 999
    products = step_matmuls(ours.model, x0, t, y)  # the same products as the reference's
    flops = sum(2 * math.prod(a) * b[-1] for a, b in products)
    clock = 1 if threads == 1 else 0
    _timed(ours, 1, threads), _timed(ref, 1, threads), time_matmuls(products, threads)  # warm-up
    times_a, times_b, times_m, ratios = [], [], [], []
    for r in range(rounds):
        order = [(ref, times_b), (ours, times_a)]
        for session, times in order if r % 2 == 0 else order[::-1]:
            times.append(_timed(session, steps, threads))
        matmuls = [time_matmuls(products, threads, seed=r) for _ in range(steps)]
        times_m.append(tuple(sum(m[i] for m in matmuls) / steps for i in range(2)))
        ratios.append(times_b[-1][clock] / times_a[-1][clock])
    return {
        "preset": preset,
        "batch": batch,
        "threads": threads,
        "clock": "cpu" if clock else "wall",
        "max_weight_diff": diff,
        "ours_s": statistics.median(t[clock] for t in times_a),
        "reference_s": statistics.median(t[clock] for t in times_b),
        "matmuls_s": statistics.median(t[clock] for t in times_m),
        "matmul_gflop": flops / 1e9,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def main(argv=None) -> None:
    """Print one line per lever: A and B step times and the median ratio."""
    p = argparse.ArgumentParser(description="interleaved step-time ratios of training levers")
    p.add_argument("--preset", default="nano")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--lever", nargs="+", default=[*LEVERS, "threads"])
    p.add_argument(
        "--reference",
        default=None,
        help="path of the reference DiT's models.py: "
        "compare the package's step with it instead (DiT-S/4, batch 32 by default)",
    )
    p.add_argument("--compile", action="store_true", help="measure torch.compile instead")
    args = p.parse_args(argv)
    if args.compile:
        print(compiled(args.preset, args.batch, args.rounds, args.steps))
        return
    if args.reference:
        r = against_reference(args.reference, args.preset, args.batch, args.threads, args.rounds,
                              args.steps)  # fmt: skip
        print(
            f"{r['preset']} batch {r['batch']}, {r['threads']} thread(s), fp32: package "
            f"{r['ours_s']:.3f} s, reference {r['reference_s']:.3f} s per step ({r['clock']} "
            f"time); reference/package {r['ratio']:.3f} (rounds {min(r['ratios']):.2f}.."
            f"{max(r['ratios']):.2f}); weights loaded into the reference layout, max difference "
            f"{r['max_weight_diff']}; load {r['load_average']:.1f}\n"
            f"the step's {r['matmul_gflop']:.1f} GFLOP of matrix products alone: "
            f"{r['matmuls_s']:.3f} s ({r['matmul_gflop'] / r['matmuls_s']:.1f} GFLOP/s), so no "
            f"fp32 step can beat the reference by more than "
            f"{r['reference_s'] / r['matmuls_s']:.2f}x; the package's step is "
            f"{r['matmuls_s'] / r['ours_s']:.0%} products, the reference's "
            f"{r['matmuls_s'] / r['reference_s']:.0%}"
        )
        return
    for lever in args.lever:
        if lever == "threads":
            r = interleave(None, args.preset, args.batch, 1, args.rounds, args.steps, 2)
        else:
            r = interleave(lever, args.preset, args.batch, args.threads, args.rounds, args.steps)
        print(
            f"{r['lever']:<20} package {1e3 * r['a_step_s']:7.1f} ms wall {1e3 * r['a_cpu_s']:6.1f}"
            f" ms cpu | variant {1e3 * r['b_step_s']:7.1f} wall {1e3 * r['b_cpu_s']:6.1f} cpu | "
            f"package/variant ({r['clock']}) {r['ratio']:.3f} (rounds {min(r['ratios']):.2f}.."
            f"{max(r['ratios']):.2f})  load {r['load_average']:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
