"""Samplers: from pure noise back to an image, for any model with the (x_t, t, y) contract.

- DDPM ancestral sampling (Ho et al., arXiv 2006.11239, eq. 6-7): each step draws x_{t-1} from the
  Gaussian posterior q(x_{t-1} | x_t, x0_hat), T network calls.
- DDIM (Song et al., arXiv 2010.02502, eq. 12): jumps along a subsequence of timesteps; eta = 0 is
  deterministic (an ODE solver), eta = 1 recovers DDPM-like noise. The speedrun of notebook 03.
- A flow-matching model also runs under DDPM/DDIM through `FlowAsEps`: the straight path
  x = (1 - s) x0 + s eps is the variance-preserving path rescaled, so every VP timestep has a flow
  time with the same signal-to-noise ratio (Kingma et al., arXiv 2107.00630, sec. 3-4).
- Euler / Heun for flow-matching models (Liu et al., arXiv 2209.03003; Esser et al.,
  arXiv 2403.03206):
  x moves along the predicted velocity from t = 1 (noise) to t = 0 (data).

Samplers are pure functions: the start noise and a `torch.Generator` go in, images come out;
no hidden step counters.

Taught in notebook 03 (clearing the fog).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from .schedules import NoiseSchedule

__all__ = [
    "FLOW_TIME_SCALE",
    "draw_noise",
    "denoising_steps",
    "ddim_timesteps",
    "ddpm_posterior",
    "ddpm_step",
    "ddpm_sample",
    "ddim_step",
    "ddim_sample",
    "flow_timesteps",
    "euler_sample",
    "FlowAsEps",
]

FLOW_TIME_SCALE = 1000.0  # flow time t in [0, 1] enters the timestep embedding as t * 1000
SPACINGS = ("trailing", "leading", "linspace")


def draw_noise(
    shape, generator: torch.Generator | None, like: torch.Tensor | None = None, device=None
):
    """Standard normal noise drawn on the generator's device (so a seeded run repeats on any
    device), then moved to `like`'s device and dtype (or to `device`)."""
    gen_device = generator.device if generator is not None else "cpu"
    z = torch.randn(shape, generator=generator, device=gen_device)
    if like is not None:
        return z.to(device=like.device, dtype=like.dtype)
    return z.to(device) if device is not None else z


def _split_output(model_out: torch.Tensor, channels: int):
    """Prediction channels and, if present, learned-variance channels."""
    if model_out.shape[1] == 2 * channels:
        return model_out[:, :channels], model_out[:, channels:]
    return model_out, None


def _batch_t(t: int | float, x: torch.Tensor) -> torch.Tensor:
    dtype = torch.long if isinstance(t, int) else torch.float32
    return torch.full((x.shape[0],), t, device=x.device, dtype=dtype)


def ddim_timesteps(num_timesteps: int, steps: int, spacing: str = "trailing") -> list[int]:
    """Decreasing timesteps visited by a DDIM run of `steps` steps.

    'trailing' starts at T-1 (recommended: Lin et al., arXiv 2305.08891, table 2), 'leading' is
    the reference DiT / DDIM stride 0, T/S, 2T/S..., 'linspace' spreads evenly over [0, T-1].
    """
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must lie in [1, {num_timesteps}]; got {steps}")
    if spacing == "trailing":
        ts = [round(num_timesteps - 1 - i * num_timesteps / steps) for i in range(steps)]
    elif spacing == "leading":
        ts = [i * (num_timesteps // steps) for i in range(steps)][::-1]
    elif spacing == "linspace":
        ts = torch.linspace(0, num_timesteps - 1, steps).round().long().tolist()[::-1]
    else:
        raise ValueError(f"spacing must be one of {SPACINGS}; got {spacing!r}")
    return [int(t) for t in ts]


def ddpm_posterior(
    x0: torch.Tensor, x_t: torch.Tensor, t: int, schedule: NoiseSchedule
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the Gaussian posterior q(x_{t-1} | x_t, x0) (Ho et al., eq. 6-7).

    Bayes' rule on two Gaussians in x_{t-1}: the step q(x_t | x_{t-1}) and the jump
    q(x_{t-1} | x0); precisions add, means are precision-weighted. Derived in notebook 03.
    At t = 0 the previous level is the clean image (alpha_bar = 1): mean x0, variance 0.

    Shapes: x0, x_t (B, C, H, W); t an int -> mean (B, C, H, W), variance a 0-d float64 tensor.
    """
    beta, alpha = schedule.betas[t], schedule.alphas[t]
    ab = schedule.alpha_bar[t]
    ab_prev = schedule.alpha_bar[t - 1] if t > 0 else torch.ones((), dtype=ab.dtype)
    coef_x0 = beta * ab_prev.sqrt() / (1 - ab)
    coef_xt = (1 - ab_prev) * alpha.sqrt() / (1 - ab)
    return float(coef_x0) * x0 + float(coef_xt) * x_t, beta * (1 - ab_prev) / (1 - ab)


def ddpm_step(
    model_out: torch.Tensor,
    x_t: torch.Tensor,
    t: int,
    schedule: NoiseSchedule,
    prediction_type: str = "eps",
    generator: torch.Generator | None = None,
    clip_x0: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ancestral step x_t -> x_{t-1}; returns (x_{t-1}, x0_hat).

    Shapes: model_out (B, C or 2C, H, W), x_t (B, C, H, W) -> two (B, C, H, W).
    """
    pred, var_out = _split_output(model_out, x_t.shape[1])
    tt = _batch_t(t, x_t)
    # 1. Estimate x0 from the prediction (eq. 15 for eps), optionally clipped to the data range.
    _, x0 = schedule.to_eps_x0(pred, x_t, tt, prediction_type)
    if clip_x0:
        x0 = x0.clamp(-1, 1)
    # 2. Posterior q(x_{t-1} | x_t, x0): mean (eq. 7) and variance beta_tilde.
    mean, variance = ddpm_posterior(x0, x_t, t, schedule)
    if t == 0:
        return mean, x0
    # 3. Variance: beta_tilde, or the learned interpolation of Nichol & Dhariwal (eq. 15).
    beta = schedule.betas[t]
    log_var = torch.full_like(x_t, float(variance.log()))
    if var_out is not None:
        frac = (var_out + 1) / 2
        log_var = frac * float(beta.log()) + (1 - frac) * log_var
    # 4. Sample.
    return mean + (0.5 * log_var).exp() * draw_noise(x_t.shape, generator, like=x_t), x0


def denoising_steps(
    model: Callable,
    x_T: torch.Tensor,
    y: torch.Tensor | None,
    timesteps: list[int],
    step: Callable,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The loop of DDPM and DDIM: from x_T through the decreasing `timesteps`, one network call
    and one `step(model_out, x_t, t, t_prev) -> (x_prev, x0_hat)` each (t_prev = -1 after the
    last). Yields (t, x_t, x_prev, x0_hat) at every step: the samplers keep x_prev, a view of
    the sampling path can keep x_t and the guess x0_hat as well. No gradients.

    Shapes: x_T (B, C, H, W), y (B,) -> each yielded tensor (B, C, H, W).
    """
    x = x_T
    for t, t_prev in zip(timesteps, [*timesteps[1:], -1]):
        with torch.no_grad():
            x_prev, x0_hat = step(model(x, _batch_t(t, x), y), x, t, t_prev)
        yield t, x, x_prev, x0_hat
        x = x_prev


def _run(steps: Iterator, x_T: torch.Tensor, trajectory: bool):
    """The last x of a `denoising_steps` loop (and the list of every x, x_T first)."""
    x, path = x_T, [x_T]
    for _, _, x, _ in steps:
        if trajectory:
            path.append(x)
    return (x, path) if trajectory else x


def ddpm_sample(
    model: Callable,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    y: torch.Tensor | None = None,
    prediction_type: str = "eps",
    generator: torch.Generator | None = None,
    clip_x0: bool = True,
    trajectory: bool = False,
):
    """Run all T ancestral steps from x_T; returns x0 (and the list of x_t if `trajectory`).

    Shapes: x_T (B, C, H, W), y (B,) -> (B, C, H, W).
    """
    ts = list(range(schedule.num_timesteps - 1, -1, -1))

    def step(out, x, t, _):
        return ddpm_step(out, x, t, schedule, prediction_type, generator, clip_x0)

    return _run(denoising_steps(model, x_T, y, ts, step), x_T, trajectory)


def ddim_step(
    model_out: torch.Tensor,
    x_t: torch.Tensor,
    t: int,
    t_prev: int,
    schedule: NoiseSchedule,
    prediction_type: str = "eps",
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    clip_x0: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM jump x_t -> x_{t_prev} (t_prev = -1 means the clean image); returns (x, x0_hat).

    Shapes: model_out (B, C or 2C, H, W), x_t (B, C, H, W) -> two (B, C, H, W).
    """
    pred, _ = _split_output(model_out, x_t.shape[1])
    tt = _batch_t(t, x_t)
    # 1. Predicted eps and x0; when x0 is clipped, eps is recomputed to stay consistent.
    eps, x0 = schedule.to_eps_x0(pred, x_t, tt, prediction_type)
    if clip_x0:
        x0 = x0.clamp(-1, 1)
        eps, _ = schedule.to_eps_x0(x0, x_t, tt, "x0")
    # 2. sigma_t of eq. 16, then eq. 12: point at x0, re-noise towards t_prev.
    ab = float(schedule.alpha_bar[t])
    ab_prev = float(schedule.alpha_bar[t_prev]) if t_prev >= 0 else 1.0
    sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)) ** 0.5
    x_prev = ab_prev**0.5 * x0 + max(1 - ab_prev - sigma**2, 0.0) ** 0.5 * eps
    if sigma > 0:
        x_prev = x_prev + sigma * draw_noise(x_t.shape, generator, like=x_t)
    return x_prev, x0


def ddim_sample(
    model: Callable,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    y: torch.Tensor | None = None,
    steps: int = 50,
    eta: float = 0.0,
    spacing: str = "trailing",
    prediction_type: str = "eps",
    generator: torch.Generator | None = None,
    clip_x0: bool = True,
    trajectory: bool = False,
):
    """DDIM from x_T in `steps` network calls; eta = 0 is deterministic.

    Shapes: x_T (B, C, H, W), y (B,) -> (B, C, H, W).
    """
    ts = ddim_timesteps(schedule.num_timesteps, steps, spacing)

    def step(out, x, t, t_prev):
        return ddim_step(out, x, t, t_prev, schedule, prediction_type, eta, generator, clip_x0)

    return _run(denoising_steps(model, x_T, y, ts, step), x_T, trajectory)


def flow_timesteps(steps: int, shift: float = 1.0) -> list[float]:
    """Decreasing flow times from 1 to 0; shift > 1 spends more steps at high noise.

    The shift is SD3's timestep shift (Esser et al., arXiv 2403.03206, eq. 23).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    ts = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    ts = shift * ts / (1 + (shift - 1) * ts)
    return ts.tolist()


def euler_sample(
    model: Callable,
    x_T: torch.Tensor,
    y: torch.Tensor | None = None,
    steps: int = 50,
    heun: bool = False,
    shift: float = 1.0,
    trajectory: bool = False,
):
    """Integrate dx/dt = v(x, t) from t = 1 to t = 0 with Euler (or Heun's 2nd-order) steps.

    The velocity model follows x_t = (1 - t) x0 + t eps, v = eps - x0.

    Shapes: x_T (B, C, H, W), y (B,) -> (B, C, H, W).
    """
    ts = flow_timesteps(steps, shift)
    x, path = x_T, [x_T]
    C = x_T.shape[1]

    def velocity(x, t):
        return model(x, _batch_t(t * FLOW_TIME_SCALE, x), y)[:, :C]

    with torch.no_grad():
        for t, t_next in zip(ts[:-1], ts[1:]):
            v = velocity(x, t)
            x_next = x + (t_next - t) * v
            if heun and t_next > 0:
                x_next = x + (t_next - t) * 0.5 * (v + velocity(x_next, t_next))
            x = x_next
            if trajectory:
                path.append(x)
    return (x, path) if trajectory else x


class FlowAsEps:
    """A flow-matching velocity model seen as a variance-preserving eps model on `schedule`.

    At VP timestep t with alpha_bar = a, the flow time with the same signal-to-noise ratio is
    s = sqrt(1 - a) / (sqrt(a) + sqrt(1 - a)), and x_flow = x_vp / (sqrt(a) + sqrt(1 - a)).
    With v = model(x_flow, s), x_flow = (1 - s) x0 + s eps and v = eps - x0 give
    eps = x_flow + (1 - s) v. So DDPM and DDIM can sample a model trained with flow matching.

    Shapes: x_t (B, C, H, W), t (B,) integer VP timesteps, y (B,) -> eps (B, C, H, W).
    """

    def __init__(self, model: Callable, schedule: NoiseSchedule):
        self.model, self.schedule = model, schedule

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        C = x_t.shape[1]
        ab = self.schedule.alpha_bar.to(x_t.device)[t.long()].to(x_t.dtype).reshape(-1, 1, 1, 1)
        norm = ab.sqrt() + (1 - ab).sqrt()
        s = (1 - ab).sqrt() / norm  # (B, 1, 1, 1) flow time with the same SNR
        x_flow = x_t / norm
        v = self.model(x_flow, s.flatten() * FLOW_TIME_SCALE, y)[:, :C]
        return x_flow + (1 - s) * v
