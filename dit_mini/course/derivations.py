"""References for the exercises that ask the learner to derive or predict before running.

Each function computes, in closed form or by a tiny measurement, what a derivation should give,
so that the exercise's check compares the learner's formula with something that was NOT written
from the same formula:

- Notebook 03 (clearing the fog), flow matching on a 2-D toy: `two_moons` data, the
  `marginal_velocity` of the straight road x_t = (1 - t) x0 + t eps for a finite data set (the
  posterior-weighted average of the conditional velocities (x - x0_i) / t, Lipman et al.,
  arXiv 2210.02747, eq. 8), `euler_trajectories` that follow it and `flow_figure` to draw them.
- Notebook 07 (legendary gear): `first_step_gradients`, the parameters of a model that receive a
  non-zero gradient from one loss (at adaLN-Zero's initialisation only the last layer does).
- Notebook 08 (summon signs), classifier-free guidance from Bayes' rule on a 1-D toy with two
  Gaussian classes: `two_class_scores` (the scores of p(x) and p(x | y)) and `tilted_score`, the
  score of p(x) p(y | x)^w taken by autograd from the densities, not from the guidance formula;
  `tilted_figure` draws the tilted densities.

No training anywhere: every function runs in milliseconds, so FAST mode stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from matplotlib.figure import Figure

__all__ = [
    "two_moons",
    "marginal_velocity",
    "euler_trajectories",
    "flow_figure",
    "first_step_gradients",
    "two_class_log_densities",
    "two_class_scores",
    "tilted_score",
    "tilted_density",
    "tilted_figure",
]

# ---- notebook 03: the marginal velocity of flow matching on a 2-D toy ----


def two_moons(
    n: int, noise: float = 0.06, generator: torch.Generator | None = None
) -> torch.Tensor:
    """`n` points on two interleaved half circles, scaled to about [-1, 1], with Gaussian jitter.

    Shapes: -> (n, 2) float32.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2 (one point per moon at least); got {n}")
    upper = n // 2
    angle = torch.rand(n, generator=generator) * math.pi
    x = torch.where(torch.arange(n) < upper, angle.cos(), 1 - angle.cos())
    y = torch.where(torch.arange(n) < upper, angle.sin(), 0.5 - angle.sin())
    points = torch.stack([x - 0.5, y - 0.25], dim=1) * 0.9  # centred on the origin
    return points + noise * torch.randn(n, 2, generator=generator)


def marginal_velocity(x: torch.Tensor, t: float, data: torch.Tensor) -> torch.Tensor:
    """The velocity of the straight-road flow at (x, t) when the data set is the points `data`.

    x_t = (1 - t) x0 + t eps: given x0 = data[i], the conditional velocity at x is
    (x - data[i]) / t; the marginal velocity averages them with the posterior weights
    p(i | x_t = x), proportional to exp(-|x - (1 - t) data[i]|^2 / (2 t^2)).

    Shapes: x (B, d), data (N, d), t a number in (0, 1] -> (B, d).
    """
    t = float(t)
    if not 0 < t <= 1:
        raise ValueError(f"t must be in (0, 1] (at t = 0 the velocity is undefined); got {t}")
    if x.shape[-1] != data.shape[-1]:
        raise ValueError(f"x has {x.shape[-1]} coordinates and data {data.shape[-1]}; match them")
    data = data.to(device=x.device, dtype=x.dtype)
    gap = x[:, None, :] - (1 - t) * data[None]  # (B, N, d): x against each shrunk point
    weights = torch.softmax(-gap.square().sum(-1) / (2 * t * t), dim=1)  # (B, N)
    velocities = (x[:, None, :] - data[None]) / t  # (B, N, d): one per data point
    return (weights[..., None] * velocities).sum(1)


def euler_trajectories(
    velocity: Callable[[torch.Tensor, float], torch.Tensor], x1: torch.Tensor, steps: int = 40
) -> torch.Tensor:
    """Euler steps from t = 1 (the noise x1) to t = 0 along `velocity(x, t)`, every position kept.

    Shapes: x1 (B, d) -> (steps + 1, B, d).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    path, x = [x1], x1
    for k in range(steps):
        t, t_next = 1 - k / steps, 1 - (k + 1) / steps
        x = x + (t_next - t) * velocity(x, t)
        path.append(x)
    return torch.stack(path)


def flow_figure(
    data: torch.Tensor, paths: torch.Tensor, title: str = "the flow from noise to two moons"
) -> Figure:
    """Data points, and each trajectory from its noise start (hollow) to its end (filled).

    Shapes: data (N, 2), paths (steps + 1, B, 2).
    """
    data, paths = data.detach().cpu(), paths.detach().cpu()
    fig = Figure(figsize=(5.2, 4.6))
    ax = fig.add_subplot()
    ax.scatter(data[:, 0], data[:, 1], s=6, c="0.6", label="data (t = 0)")
    for b in range(paths.shape[1]):
        ax.plot(paths[:, b, 0], paths[:, b, 1], lw=0.8, c="tab:blue", alpha=0.6)
    ax.scatter(paths[0, :, 0], paths[0, :, 1], s=14, facecolors="none", edgecolors="tab:blue",
               label="noise (t = 1)")  # fmt: skip
    ax.scatter(paths[-1, :, 0], paths[-1, :, 1], s=14, c="tab:red", label="end of the flow")
    ax.set(title=title, xlabel="first coordinate", ylabel="second coordinate", aspect="equal")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


# ---- notebook 07: who learns first under adaLN-Zero ----


def first_step_gradients(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, y=None):
    """Names of the parameters that get a non-zero gradient from one squared-error loss.

    The loss is the mean squared difference between model(x, t, y) and a fixed non-zero target
    (ones), the shape of any diffusion loss. The gradients are cleared afterwards.

    Shapes: x (B, C, H, W), t (B,), y (B,) or None -> a sorted list of parameter names.
    """
    model.zero_grad(set_to_none=True)
    out = model(x, t, y)
    (out - torch.ones_like(out)).square().mean().backward()
    names = [
        name
        for name, p in model.named_parameters()
        if p.grad is not None and bool(p.grad.abs().max() > 0)
    ]
    model.zero_grad(set_to_none=True)
    return sorted(names)


# ---- notebook 08: guidance from Bayes' rule, on two Gaussian classes in 1-D ----

MEANS = (-1.0, 1.0)  # class 0 and class 1
STD = 0.7


def two_class_log_densities(
    x: torch.Tensor, means: Sequence[float] = MEANS, std: float = STD
) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(x) and log p(x | y) for two equally likely Gaussian classes N(means[y], std^2).

    Shapes: x (B,) -> log p(x) (B,), log p(x | y) (B, 2).
    """
    m = torch.as_tensor(means, dtype=x.dtype, device=x.device)  # (2,)
    log_cond = (
        -0.5 * ((x[:, None] - m[None]) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
    )
    return torch.logsumexp(log_cond, dim=1) - math.log(len(means)), log_cond


def _grad(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():
        leaf = x.detach().clone().requires_grad_()
        return torch.autograd.grad(fn(leaf).sum(), leaf)[0]


def two_class_scores(
    x: torch.Tensor, y: torch.Tensor, means: Sequence[float] = MEANS, std: float = STD
) -> tuple[torch.Tensor, torch.Tensor]:
    """The scores d/dx log p(x) and d/dx log p(x | y): what an unconditional and a conditional
    model know (an eps model predicts -sqrt(1 - alpha_bar) times the score).

    Shapes: x (B,), y (B,) class ids in {0, 1} -> two (B,).
    """
    y = torch.as_tensor(y, device=x.device).long()
    uncond = _grad(lambda v: two_class_log_densities(v, means, std)[0], x)
    cond = _grad(lambda v: two_class_log_densities(v, means, std)[1].gather(1, y[:, None]), x)
    return uncond, cond


def tilted_score(
    x: torch.Tensor, y: torch.Tensor, w: float, means: Sequence[float] = MEANS, std: float = STD
) -> torch.Tensor:
    """d/dx of log p(x) + w log p(y | x), with p(y | x) from its definition p(x, y) / p(x).

    Autograd on the densities, so it checks a guidance formula without containing one.
    Shapes: x (B,), y (B,) -> (B,).
    """
    y = torch.as_tensor(y, device=x.device).long()

    def log_tilted(v):
        log_p, log_cond = two_class_log_densities(v, means, std)
        log_joint = log_cond.gather(1, y[:, None])[:, 0] - math.log(len(means))
        return log_p + w * (log_joint - log_p)

    return _grad(log_tilted, x)


def tilted_density(
    y: int, w: float, means: Sequence[float] = MEANS, std: float = STD
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The density proportional to p(x) p(y | x)^w on a grid, normalised, and its peak, mean
    and standard deviation. Shapes: -> grid (701,), density (701,), a dict of three floats."""
    grid = torch.linspace(-3.5, 3.5, 701, dtype=torch.float64)
    log_p, log_cond = two_class_log_densities(grid, means, std)
    log_post = log_cond[:, y] - math.log(len(means)) - log_p  # log p(y | x)
    density = (log_p + w * log_post).exp()
    density = density / (density.sum() * (grid[1] - grid[0]))
    weights = density / density.sum()
    mean = float((weights * grid).sum())
    spread = float((weights * (grid - mean) ** 2).sum().sqrt())
    return grid, density, {"peak": float(grid[density.argmax()]), "mean": mean, "std": spread}


def tilted_figure(
    y: int = 1, scales: Sequence[float] = (0.0, 1.0, 3.0), means=MEANS, std: float = STD
) -> Figure:
    """The normalised densities proportional to p(x) p(y | x)^w for each guidance scale w."""
    fig = Figure(figsize=(6.0, 3.2))
    ax = fig.add_subplot()
    for w in scales:
        grid, density, _ = tilted_density(y, w, means, std)
        ax.plot(grid, density, label=f"w = {w:g}")
    ax.set(title=f"p(x) p(y = {y} | x)^w, normalised", xlabel="x", ylabel="density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
