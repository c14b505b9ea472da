"""Pictures of sampling: a trained model's samples, the Relics browser, denoising paths, speedruns.

- Notebook 00 (bonfire): the pretrained DiT's samples as one row per class (`boss_grid`), and a
  browser of the Relics dataset by class and seed with captions (`relic_browser`).
- Notebook 03 (clearing the fog): a sampler's path recorded with the model's guess of the clean
  image at every step, for DDPM ancestral sampling (Ho et al., arXiv 2006.11239, eq. 15 for the
  x0 guess, eq. 6-7 for the step) and for Euler steps of a flow-matching model (x0 guess
  x_t - t v on the straight path x_t = (1 - t) x0 + t eps, Liu et al., arXiv 2209.03003);
  `trajectory_view` draws one step of such a path, `speedrun_figure` the cost and quality of a
  sampler against its number of steps, `loss_figure` a training loss curve and
  `objective_race_figure` two training runs side by side (loss and class accuracy).

Every picture is a `matplotlib.figure.Figure` built without pyplot, like `dit_mini.course.widgets`,
so a notebook's sliders only wire controls to these functions and the pictures are tested.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from ..data.relics import RELIC_CLASSES, relic_captions, relic_params, render_relics
from ..diffusion.samplers import (
    FLOW_TIME_SCALE,
    ddpm_step,
    denoising_steps,
    euler_sample,
    flow_timesteps,
)
from ..diffusion.schedules import NoiseSchedule
from ..viz import smooth
from .widgets import image_rows

__all__ = [
    "boss_grid",
    "relic_browser",
    "SamplingPath",
    "ddpm_path",
    "flow_path",
    "trajectory_view",
    "speedrun_figure",
    "loss_figure",
    "objective_race_figure",
]

# ---- notebook 00: bonfire (the boss's samples, the Relics browser) ----


def boss_grid(
    images: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    title: str | None = None,
    panel: float = 0.9,
) -> Figure:
    """Samples sorted into one row per class (labelled with the class name), in the order given.

    Shapes: images (N, C, H, W) in [-1, 1], labels (N,) with the same count for every class.
    """
    labels = torch.as_tensor(labels).cpu()
    present = sorted(set(labels.tolist()))
    rows = {classes[k]: images[labels == k] for k in present}
    counts = {len(v) for v in rows.values()}
    if len(counts) != 1:
        raise ValueError(f"every class needs as many samples as the others; got counts {counts}")
    return image_rows(rows, title=title, panel=panel)


def relic_browser(cls: int | str, seed: int, n: int = 5, size: int = 32) -> Figure:
    """n relics of one class drawn from `relic_params(10 n, seed)`, each with its caption.

    The same (class, seed) always shows the same relics: they are the class's first n items of
    the dataset `make_relics(10 n, seed)`.
    """
    if isinstance(cls, str):
        if cls not in RELIC_CLASSES:
            raise ValueError(f"unknown relic class {cls!r}; choose from {', '.join(RELIC_CLASSES)}")
        cls = RELIC_CLASSES.index(cls)
    if n < 1:
        raise ValueError(f"n={n}: show at least one relic")
    params = relic_params(len(RELIC_CLASSES) * n, seed)
    mine = params[np.flatnonzero(params.cls == cls)[:n]]  # balanced classes: exactly n each
    pixels = render_relics(mine, size)  # (n, size, size, 3)
    fig = Figure(figsize=(2.0 * n, 3.1))
    axes = np.atleast_1d(fig.subplots(1, n))
    for ax, image, caption in zip(axes, pixels, relic_captions(mine)):
        ax.imshow(image)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_xlabel("\n".join(textwrap.wrap(caption, 18)), fontsize=9)
    fig.suptitle(f"{RELIC_CLASSES[cls]} relics, seed {seed}")
    fig.tight_layout()
    return fig


# ---- notebook 03: clearing the fog (DDPM and flow paths, the step-count speedrun) ----


@dataclass
class SamplingPath:
    """A sampler's recorded path: at each kept step, the image it holds and the model's guess of
    the clean image from it. The last frame is the finished sample (its own guess).

    Shapes: x_t, x0_hat (S, B, C, H, W); times S labels such as 't = 999'.
    """

    kind: str
    times: list[str]
    x_t: torch.Tensor
    x0_hat: torch.Tensor

    def __len__(self) -> int:
        return len(self.times)


def ddpm_path(
    model: Callable,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    y: torch.Tensor | None = None,
    every: int = 25,
    generator: torch.Generator | None = None,
) -> SamplingPath:
    """Run all T DDPM steps of an eps-prediction model from x_T, keeping x_t and x0_hat every
    `every` steps (and at t = 0): `ddpm_sample`'s own loop (`denoising_steps`), so the same
    draws and the same final image.

    Shapes: x_T (B, C, H, W), y (B,) -> frames (S, B, C, H, W).
    """
    if every < 1:
        raise ValueError(f"every={every}: keep a frame at least every 1 step")
    T = schedule.num_timesteps
    times, xs, guesses, x = [], [], [], x_T

    def step(out, x_t, t, _):
        return ddpm_step(out, x_t, t, schedule, "eps", generator)

    for t, x_t, x_prev, x0_hat in denoising_steps(model, x_T, y, list(range(T - 1, -1, -1)), step):
        x = x_prev  # the finished sample after the last step
        if (T - 1 - t) % every == 0 or t == 0:
            times.append(f"t = {t}")
            xs.append(x_t)
            guesses.append(x0_hat)
    times.append("done")
    return SamplingPath("DDPM", times, torch.stack(xs + [x]), torch.stack(guesses + [x]))


def flow_path(
    model: Callable, x_T: torch.Tensor, y: torch.Tensor | None = None, steps: int = 20
) -> SamplingPath:
    """Euler steps of a flow-matching (velocity) model with `euler_sample`, and at every step the
    clean-image guess x0_hat = x_t - t v(x_t, t), read off the straight path.

    Shapes: x_T (B, C, H, W), y (B,) -> frames (steps + 1, B, C, H, W).
    """
    _, path = euler_sample(model, x_T, y, steps, trajectory=True)
    ts = flow_timesteps(steps)
    guesses = []
    with torch.no_grad():
        for x, t in zip(path[:-1], ts[:-1]):
            tt = torch.full((x.shape[0],), t * FLOW_TIME_SCALE, device=x.device)
            guesses.append(x - t * model(x, tt, y)[:, : x.shape[1]])
    times = [f"t = {t:.2f}" for t in ts[:-1]] + ["done"]
    return SamplingPath("Euler", times, torch.stack(path), torch.stack(guesses + [path[-1]]))


def trajectory_view(path: SamplingPath, index: int, title: str | None = None) -> Figure:
    """Frame `index` of a path: x_t on the top row, the model's x0 guess below it."""
    if not 0 <= index < len(path):
        raise ValueError(f"index {index} is outside the path's {len(path)} frames")
    rows = {"x_t (held)": path.x_t[index], "guess of x0": path.x0_hat[index]}
    label = f"frame {index} of {len(path) - 1}: {path.times[index]}"
    return image_rows(rows, title=f"{title or path.kind}, {label}", panel=1.3)


def _log_steps_axis(ax, steps: Sequence[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(steps), [str(s) for s in steps])
    ax.minorticks_off()
    ax.grid(alpha=0.3)


def speedrun_figure(rows: Sequence[Mapping[str, float]], title: str | None = None) -> Figure:
    """Cost and quality against the number of sampling steps, one point per row: seconds per
    image; distance (RMS, pixels in [-1, 1]) to the run with the most steps from the same noise;
    class accuracy; FID with its real-vs-real floor.

    Each row holds 'steps', 'seconds_per_image', 'rms_to_finest', 'class_accuracy', 'fid' and
    'fid_floor'.
    """
    if not rows:
        raise ValueError("no rows to plot: measure at least one step count")
    steps = [int(r["steps"]) for r in rows]
    fig = Figure(figsize=(10, 6.2))
    axes = fig.subplots(2, 2).flatten()
    panels = [
        ("seconds_per_image", "seconds per image", "cost (wall clock)"),
        ("rms_to_finest", "RMS distance", f"distance to the {max(steps)}-step image"),
        ("class_accuracy", "class accuracy", "recognizable? (relic classifier)"),
        ("fid", "FID (relic features)", "fidelity (lower is better)"),
    ]
    for ax, (key, ylabel, panel_title) in zip(axes, panels):
        ax.plot(steps, [float(r[key]) for r in rows], "o-", color="tab:purple")
        _log_steps_axis(ax, steps)
        ax.set(xlabel="sampling steps (log scale)", ylabel=ylabel, title=panel_title)
    axes[2].set_ylim(0, 1.02)
    floor = float(rows[0]["fid_floor"])
    axes[3].axhline(floor, color="grey", linestyle="--", label=f"real vs real: {floor:.2f}")
    axes[3].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def loss_figure(history: Sequence[float], title: str = "training loss") -> Figure:
    """The per-step loss (faint) and its moving average against the step, log-scaled loss."""
    if len(history) == 0:
        raise ValueError("the loss history is empty: train at least one step before plotting it")
    steps = np.arange(1, len(history) + 1)
    window = max(1, len(history) // 25)
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.subplots()
    ax.plot(steps, history, color="tab:blue", alpha=0.3, linewidth=0.8, label="one batch")
    ax.plot(steps, smooth(list(history), window), color="tab:blue", label=f"mean of {window}")
    ax.set_yscale("log")
    ax.set(xlabel="training step", ylabel="loss (MSE, log scale)", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def objective_race_figure(runs: Mapping[str, tuple[Sequence[float], Sequence[Mapping]]]) -> Figure:
    """Training runs side by side: each run's loss (moving average, log scale) against the step,
    and its class accuracy at the graded steps (the points of `studies.ttr.train_and_grade`)."""
    if not runs:
        raise ValueError("no runs to draw: pass {name: (loss history, graded points)}")
    fig = Figure(figsize=(10, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for (name, (history, points)), colour in zip(runs.items(), ["tab:orange", "tab:blue"] * 4):
        if len(history) == 0:
            raise ValueError(f"run {name!r} has an empty loss history")
        steps = np.arange(1, len(history) + 1)
        window = max(1, len(history) // 25)
        ax_loss.plot(steps, smooth(list(history), window), color=colour, label=name)
        ax_acc.plot([p["step"] for p in points], [p["class_accuracy"] for p in points], "o-",
                    color=colour, label=name)  # fmt: skip
    ax_loss.set(xlabel="training step", ylabel="loss (moving average, log)", yscale="log",
                title="each run's own loss (different targets)")  # fmt: skip
    ax_acc.axhline(0.1, color="grey", linestyle="--", label="chance (10 classes)")
    ax_acc.set(xlabel="training step", ylabel="class accuracy of samples", ylim=(0, 1.02),
               title="did it draw the class asked for?")  # fmt: skip
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
