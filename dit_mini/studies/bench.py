"""Benchmark: how fast a DiT trains and samples here, measured against this machine's own matmuls.

A transformer's work is almost all matrix products, so the honest yardstick for a training step
is the rate this machine reaches on plain fp32 matrix products, measured in the same run. The
achieved rate of a step is the DiT paper's Gflops (forward multiply-adds per image, arXiv
2212.09748, Table 4) x 2 flops per multiply-add x 3 (forward, plus a backward that costs about
twice the forward) x images per second. Its fraction of the matmul rate says how much time goes
to everything that is not a matmul: layer norms, GELU, copies, the optimizer.

Sampling is timed per denoising step and converted to images per second for a full run (DDPM
takes all T steps, DDIM a few dozen); only a few steps are timed and the rest extrapolated.

Taught in notebook 07 (legendary gear); `dit-mini bench` prints `format_report(run_benchmark())`.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable

import torch

from ..diffusion.losses import DiffusionConfig, make_loss
from ..diffusion.samplers import ddim_sample, ddim_timesteps, ddpm_sample
from ..metrics.flops import count_gflops, count_params
from ..models.dit import DiT, dit_config
from ..runtime import cpu_name, machine_info, pick_device

__all__ = [
    "FLOPS_PER_MAC",
    "TRAIN_PASSES",
    "matmul_rate",
    "time_call",
    "train_rate",
    "sample_rate",
    "run_benchmark",
    "format_report",
]

FLOPS_PER_MAC = 2  # a multiply-add is two floating-point operations
TRAIN_PASSES = 3  # forward + backward ~ 3 forward passes (the backward computes two products)
NUM_CLASSES = 10  # the course's class-conditional setting (Relics, CIFAR-10)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    fn: Callable[[], object],
    device: torch.device,
    seconds: float = 1.0,
    windows: int = 3,
    warmup: int = 1,
) -> list[float]:
    """Seconds per call of `fn`, one number per timed window.

    Each window calls `fn` until at least `seconds` have passed (at least once), so a slow call
    is timed alone and a fast one is averaged over many. `warmup` calls run untimed first.
    """
    if windows < 1 or warmup < 0 or seconds < 0:
        raise ValueError(
            f"need windows >= 1, warmup >= 0 and seconds >= 0; got {windows}, {warmup}, {seconds}"
        )
    for _ in range(warmup):
        fn()
    per_call = []
    for _ in range(windows):
        _sync(device)
        calls, start = 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - start < seconds:
            fn()
            calls += 1
            _sync(device)
        per_call.append((time.perf_counter() - start) / calls)
    return per_call


def matmul_rate(
    sizes: tuple[int, ...] = (1024, 2048), repeats: int = 3, device: torch.device | None = None
) -> dict[str, float]:
    """fp32 GFLOP/s of square products n x n @ n x n (2 n^3 flops each), best of `repeats`.

    Returns {'n=1024': ..., 'n=2048': ..., 'best': max of them}.
    """
    device = torch.device(device or "cpu")
    rates = {}
    for n in sizes:
        gen = torch.Generator().manual_seed(n)
        a, b = (torch.randn(n, n, generator=gen).to(device) for _ in range(2))
        seconds = time_call(lambda a=a, b=b: a @ b, device, seconds=0.0, windows=repeats)
        rates[f"n={n}"] = FLOPS_PER_MAC * n**3 / min(seconds) / 1e9
    rates["best"] = max(rates.values())
    return rates


def _optimizer(model: torch.nn.Module, fused: bool) -> tuple[torch.optim.Optimizer, str]:
    """AdamW, fused into one kernel per tensor where this torch build supports it."""
    params = [p for p in model.parameters() if p.requires_grad]
    if fused:
        with contextlib.suppress(RuntimeError, TypeError, ValueError):
            return torch.optim.AdamW(params, lr=1e-4, fused=True), "AdamW(fused)"
    return torch.optim.AdamW(params, lr=1e-4), "AdamW"


def _model(preset: str, device: torch.device, seed: int) -> DiT:
    """A freshly initialised pixel-space DiT for 32x32 RGB images and 10 classes."""
    config = dit_config(preset, input_size=32, in_channels=3, num_classes=NUM_CLASSES)
    with torch.random.fork_rng(devices=[]):  # seeded init that leaves the global RNG alone
        torch.manual_seed(seed)
        return DiT(config).to(device)


def _compiled(model, step: Callable[[], object], device: torch.device):
    """torch.compile the model and run the first step (the compile); eager if it fails."""
    start = time.perf_counter()
    try:
        net = torch.compile(model)
        step(net)
        _sync(device)
    except Exception as err:  # whatever broke in the compiler, the eager model still runs
        return model, None, f"compile failed ({type(err).__name__}), eager used"
    return net, time.perf_counter() - start, "compiled"


def train_rate(
    preset: str = "DiT-S/4",
    batch_size: int = 64,
    device: torch.device | str | None = None,
    seconds: float = 1.0,
    windows: int = 3,
    warmup: int = 1,
    compile: bool = False,
    fused_optimizer: bool = True,
    seed: int = 0,
) -> dict:
    """Training images/s of a preset: forward, eps-prediction loss, backward and AdamW step, fp32.

    The model is the pixel-space DiT of the course (32x32 RGB, 10 classes); `compile` times the
    first step (the compilation) apart as 'compile_s'. 'step_s' is the median of the windows.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size}")
    device = torch.device(device or "cpu")
    # 1. Model, optimizer, loss and one fixed batch of images in [-1, 1] with labels.
    model = _model(preset, device, seed)
    opt, opt_name = _optimizer(model, fused_optimizer)
    loss_fn = make_loss(DiffusionConfig())
    gen = torch.Generator(device).manual_seed(seed)
    x0 = torch.rand(batch_size, 3, 32, 32, generator=gen, device=device) * 2 - 1
    y = torch.randint(0, NUM_CLASSES, (batch_size,), generator=gen, device=device)

    def step(net) -> None:
        loss = loss_fn(net, x0, y, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # 2. Optional compilation (its first step timed apart), then the timed windows.
    net, compile_s, mode = model, None, "eager"
    if compile:
        net, compile_s, mode = _compiled(model, step, device)
    per_step = time_call(lambda: step(net), device, seconds, windows, warmup)
    # 3. Paper Gflops x 2 flops per multiply-add x 3 passes x images/s.
    gflops = count_gflops(model)
    images_per_s = batch_size / statistics.median(per_step)
    return {
        "preset": preset,
        "batch_size": batch_size,
        "params": count_params(model),
        "gflops": gflops,
        "images_per_s": images_per_s,
        "step_s": statistics.median(per_step),
        "step_s_windows": per_step,
        "achieved_gflops": gflops * FLOPS_PER_MAC * TRAIN_PASSES * images_per_s,
        "mode": mode,
        "compile_s": compile_s,
        "optimizer": opt_name,
    }


def sample_rate(
    preset: str = "tiny",
    sampler: str = "ddim",
    steps: int = 50,
    batch_size: int = 64,
    measured_steps: int = 5,
    device: torch.device | str | None = None,
    seconds: float = 1.0,
    windows: int = 3,
    warmup: int = 1,
    seed: int = 0,
) -> dict:
    """Sampling images/s of a full run: 'ddim' with `steps` steps, or 'ddpm' (always all T).

    The real sampler runs `measured_steps` steps (DDPM on a schedule that long, DDIM with that
    many steps). A step costs the same there as in the full run, so images/s is extrapolated
    as batch_size / (seconds per step x steps); 'extrapolated' says whether it was.
    """
    diffusion = DiffusionConfig()
    if sampler not in ("ddpm", "ddim"):
        raise ValueError(f"sampler must be 'ddpm' or 'ddim'; got {sampler!r}")
    steps = diffusion.num_timesteps if sampler == "ddpm" else steps
    ddim_timesteps(diffusion.num_timesteps, steps)  # ValueError unless 1 <= steps <= T
    device = torch.device(device or "cpu")
    k = max(1, min(measured_steps, steps))
    # 1. An initialised model, start noise and labels (speed does not depend on the weights).
    model = _model(preset, device, seed).eval()
    gen = torch.Generator(device).manual_seed(seed)
    x_T = torch.randn(batch_size, 3, 32, 32, generator=gen, device=device)
    y = torch.randint(0, NUM_CLASSES, (batch_size,), generator=gen, device=device)
    short_schedule = DiffusionConfig(num_timesteps=k).make_schedule()
    schedule = diffusion.make_schedule()

    def run() -> None:
        if sampler == "ddpm":
            ddpm_sample(model, short_schedule, x_T, y, generator=gen)
        else:
            ddim_sample(model, schedule, x_T, y, steps=k)

    # 2. Seconds per step from the k-step runs, extrapolated to the full run.
    step_s = statistics.median(time_call(run, device, seconds, windows, warmup)) / k
    return {
        "preset": preset,
        "sampler": sampler,
        "steps": steps,
        "measured_steps": k,
        "extrapolated": k < steps,
        "batch_size": batch_size,
        "step_s": step_s,
        "images_per_s": batch_size / (step_s * steps),
    }


@contextlib.contextmanager
def _num_threads(threads: int | None):
    """Run the block with `threads` intra-op threads (None: leave torch's setting)."""
    saved = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be a positive integer or None; got {threads}")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(saved)


def _bench_machine(device: torch.device, threads: int) -> dict:
    """What ran the benchmark: processor or GPU, cores, threads, torch version, load."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    info = machine_info()
    return {
        "device": str(device),
        "name": name,
        "cpu_count": info["cpu_count"],
        "threads": threads,
        "torch": info["torch"],
        "load_avg_start": info["load_average"],
    }


def run_benchmark(
    presets: tuple[str, ...] = ("tiny", "DiT-S/4"),
    batch_size: int = 64,
    seconds: float = 2.0,
    windows: int = 3,
    warmup: int = 1,
    device: torch.device | str | None = None,
    compile: bool = False,
    threads: int | None = None,
    sample_presets: tuple[str, ...] = ("tiny",),
    ddim_steps: int = 50,
    measured_steps: int = 5,
    matmul_sizes: tuple[int, ...] = (1024, 2048),
    fused_optimizer: bool = True,
) -> dict:
    """Measure, in one run: the fp32 matmul rate; training images/s and achieved GFLOP/s of each
    preset and its fraction of the matmul rate; DDPM and DDIM sampling images/s.

    The matmul rate is measured before and after each training preset, and fractions are taken
    against the best of all those measurements, so a load spike cannot flatter them.
    Returns a JSON-serialisable dict ('machine', 'matmul', 'train', 'sample', 'settings').
    """
    settings = {k: v for k, v in locals().items() if k != "device"}
    device = pick_device(device)
    with _num_threads(threads) as n_threads:
        # 1. Machine and matmul rate, then each preset's training step between matmul rates.
        machine = _bench_machine(device, n_threads)
        matmul = [matmul_rate(matmul_sizes, device=device)]
        timing = dict(device=device, seconds=seconds, windows=windows, warmup=warmup)
        train = []
        for preset in presets:
            train.append(
                train_rate(
                    preset, batch_size, compile=compile, **timing, fused_optimizer=fused_optimizer
                )
            )
            matmul.append(matmul_rate(matmul_sizes, device=device))
        # 2. Fractions against the best matmul rate of the run.
        best = max(m["best"] for m in matmul)
        for r in train:
            r["fraction_of_matmul"] = r["achieved_gflops"] / best
        # 3. Sampling: DDPM (all T steps) and DDIM, extrapolated from a few timed steps.
        sample = [
            sample_rate(p, s, ddim_steps, batch_size, measured_steps, **timing)
            for p in sample_presets
            for s in ("ddpm", "ddim")
        ]
    machine["load_avg_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    settings["matmul_sizes"] = list(matmul_sizes)
    return {
        "machine": machine,
        "matmul": {"gflops": best, "runs": matmul},
        "train": train,
        "sample": sample,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
    }


def _load(machine: dict) -> str:
    start, end = machine.get("load_avg_start"), machine.get("load_avg_end")
    return "n/a" if start is None else f"{start:.1f} -> {end:.1f}"


def _train_table(train: list[dict]) -> list[str]:
    t0 = train[0]
    head = f"{'preset':<10} {'params M':>8} {'Gflops':>7} {'step s':>8} {'img/s':>8}"
    head += f" {'GFLOP/s':>8} {'of matmul':>9} {'mode':>8} {'compile s':>9}"
    lines = [
        f"training: batch {t0['batch_size']}, fp32, eps loss, {t0['optimizer']}, "
        f"median of {len(t0['step_s_windows'])} windows",
        head,
        "-" * len(head),
    ]
    for r in train:
        compile_s = "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        lines.append(
            f"{r['preset']:<10} {r['params'] / 1e6:>8.2f} {r['gflops']:>7.3f} "
            f"{r['step_s']:>8.3f} {r['images_per_s']:>8.1f} {r['achieved_gflops']:>8.1f} "
            f"{r['fraction_of_matmul']:>9.0%} {r['mode'][:8]:>8} {compile_s:>9}"
        )
    return [*lines, "achieved GFLOP/s = Gflops (multiply-adds per image) x 2 x 3 x img/s", ""]


def _sample_table(rows: list[dict]) -> list[str]:
    head = f"{'sampler':<8} {'steps':>6} {'s/step':>8} {'img/s':>9}"
    lines = [f"sampling {rows[0]['preset']}, batch {rows[0]['batch_size']}:", head, "-" * len(head)]
    for s in rows:
        note = f"  (extrapolated from {s['measured_steps']} steps)" if s["extrapolated"] else ""
        lines.append(
            f"{s['sampler']:<8} {s['steps']:>6} {s['step_s']:>8.4f} {s['images_per_s']:>9.3f}{note}"
        )
    return [*lines, ""]


def format_report(result: dict) -> str:
    """A readable table of a `run_benchmark` result."""
    m, mm = result["machine"], result["matmul"]
    sizes = ", ".join(f"{k}: {v:.1f}" for k, v in mm["runs"][0].items() if k != "best")
    lines = [
        f"dit-mini bench on {m['name']} ({m['device']}, {m['cpu_count']} cores, "
        f"{m['threads']} threads), torch {m['torch']}, load average {_load(m)}",
        f"fp32 matmul: {mm['gflops']:.1f} GFLOP/s (best of {len(mm['runs'])} measurements "
        f"in this run; first: {sizes})",
        "",
    ]
    if result["train"]:
        lines += _train_table(result["train"])
    for preset in dict.fromkeys(s["preset"] for s in result["sample"]):
        lines += _sample_table([s for s in result["sample"] if s["preset"] == preset])
    return "\n".join(lines).rstrip()
