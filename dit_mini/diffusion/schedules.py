"""Noise schedules and the forward process q(x_t | x0).

The forward process blurs an image into Gaussian noise in T small steps:
q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I). Because Gaussians compose, any step can be
reached in one jump (Ho et al., arXiv 2006.11239, eq. 4):

    x_t = sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * eps,   eps ~ N(0, I)

with alpha_t = 1 - beta_t and alpha_bar_t = prod_{s <= t} alpha_s. Two schedules are provided: the
linear betas of DDPM and DiT (1e-4 to 0.02 over 1000 steps) and the cosine alpha_bar of Nichol &
Dhariwal (arXiv 2102.09672, eq. 17), which destroys information more slowly at the start.

Taught in notebooks 01 (fog) and 02 (nameless king).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "NoiseSchedule",
    "linear_schedule",
    "cosine_schedule",
    "make_schedule",
    "SCHEDULES",
]

MAX_BETA = 0.999  # clip of Nichol & Dhariwal (sec. 3.2): keeps the last steps from being singular


class NoiseSchedule:
    """The tensors of a discrete noise schedule, indexed by integer timesteps t in [0, T).

    Holds float64 `betas`, `alphas`, `alpha_bar` on the CPU; lookups cast to the input's device and
    dtype, so one schedule serves models on any device.

    Shapes: betas, alphas, alpha_bar (T,).
    """

    def __init__(self, betas: torch.Tensor, name: str = "custom"):
        betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if betas.numel() < 1:
            raise ValueError("a noise schedule needs at least one step (got 0 betas)")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError(
                f"every beta must lie in (0, 1); got min {betas.min():g}, max {betas.max():g}"
            )
        self.name = name
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alpha_bar = torch.cumprod(self.alphas, dim=0)

    @property
    def num_timesteps(self) -> int:
        return self.betas.numel()

    def __len__(self) -> int:
        return self.num_timesteps

    def __repr__(self) -> str:
        return f"NoiseSchedule(name={self.name!r}, T={self.num_timesteps})"

    def _steps(self, t) -> torch.Tensor:
        """t as integer indices on the CPU, refused (not wrapped around) outside [0, T)."""
        t = torch.as_tensor(t)
        if t.is_floating_point():
            if not bool(torch.isfinite(t).all()) or not bool((t == t.round()).all()):
                raise ValueError(
                    f"timesteps of a discrete schedule are whole numbers in [0, "
                    f"{self.num_timesteps}); got {t.flatten()[:4].tolist()}...: pass integer "
                    "steps (flow times in [0, 1] belong to objective='flow')"
                )
        t = t.cpu().long()
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_timesteps):
            raise ValueError(
                f"timesteps must lie in [0, {self.num_timesteps}) for this "
                f"{self.num_timesteps}-step schedule; got {int(t.min())}..{int(t.max())}"
            )
        return t

    def gather(self, values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """values[t] reshaped to broadcast against `like`.

        Shapes: values (T,), t (B,), like (B, ...) -> (B, 1, ..., 1).
        """
        out = values[self._steps(t).reshape(-1)].to(device=like.device, dtype=like.dtype)
        return out.reshape(-1, *([1] * (like.dim() - 1)))  # (B, 1, ..., 1)

    def add_noise(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Sample q(x_t | x0) in closed form: sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps.

        Shapes: x0 (B, C, H, W), eps like x0, t (B,) -> (B, C, H, W).
        """
        a = self.gather(self.alpha_bar, t, x0)
        return a.sqrt() * x0 + (1.0 - a).sqrt() * eps

    def velocity(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The v-prediction target of Salimans & Ho (arXiv 2202.00512): sqrt(a) eps - sqrt(1-a) x0.

        Shapes: x0, eps (B, C, H, W), t (B,) -> (B, C, H, W).
        """
        a = self.gather(self.alpha_bar, t, x0)
        return a.sqrt() * eps - (1.0 - a).sqrt() * x0

    def snr(self, t: torch.Tensor | None = None) -> torch.Tensor:
        """Signal-to-noise ratio alpha_bar / (1 - alpha_bar), for all steps or for `t`.

        Shapes: t (B,) -> (B,); None -> (T,).
        """
        snr = self.alpha_bar / (1.0 - self.alpha_bar)
        return snr if t is None else snr[self._steps(t)]

    def to_eps_x0(
        self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, prediction_type: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Convert a network output of any prediction type into (eps, x0) estimates.

        Shapes: output, x_t (B, C, H, W), t (B,) -> two (B, C, H, W).
        """
        a = self.gather(self.alpha_bar, t, x_t)
        sa, s1a = a.sqrt(), (1.0 - a).sqrt()
        if prediction_type == "eps":
            eps = output
            x0 = (x_t - s1a * eps) / sa
        elif prediction_type == "x0":
            x0 = output
            eps = (x_t - sa * x0) / s1a
        elif prediction_type == "v":
            x0 = sa * x_t - s1a * output
            eps = s1a * x_t + sa * output
        else:
            raise ValueError(f"prediction_type must be 'eps', 'x0' or 'v'; got {prediction_type!r}")
        return eps, x0


def linear_schedule(
    num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
) -> NoiseSchedule:
    """DDPM's linear betas, scaled so that other step counts keep the same total noise."""
    if num_timesteps < 1:
        raise ValueError(f"num_timesteps must be >= 1; got {num_timesteps}")
    scale = 1000.0 / num_timesteps
    betas = torch.linspace(scale * beta_start, scale * beta_end, num_timesteps, dtype=torch.float64)
    return NoiseSchedule(betas.clamp(max=MAX_BETA), name="linear")


def cosine_schedule(num_timesteps: int = 1000, s: float = 0.008) -> NoiseSchedule:
    """Nichol & Dhariwal's cosine schedule: alpha_bar(t) = cos^2(((t/T + s) / (1 + s)) pi/2)."""
    if num_timesteps < 1:
        raise ValueError(f"num_timesteps must be >= 1; got {num_timesteps}")
    steps = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = 1.0 - alpha_bar[1:] / alpha_bar[:-1]
    return NoiseSchedule(betas.clamp(min=1e-8, max=MAX_BETA), name="cosine")


SCHEDULES = {"linear": linear_schedule, "cosine": cosine_schedule}


def make_schedule(name: str = "linear", num_timesteps: int = 1000) -> NoiseSchedule:
    """Build a schedule by name ('linear' or 'cosine')."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    return SCHEDULES[name](num_timesteps)
