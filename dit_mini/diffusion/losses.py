"""The diffusion process as a recipe: what the network predicts, how it trains, how it samples.

- Denoising objectives on a discrete schedule (DDPM, Ho et al., arXiv 2006.11239, eq. 14): the
  network sees x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps and predicts eps, x0 or
  v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x0 (Salimans & Ho, arXiv 2202.00512), with an
  optional min-SNR-gamma weighting (Hang et al., arXiv 2303.09556, eq. 10).
- Flow matching / rectified flow (Lipman et al., arXiv 2210.02747; Liu et al., arXiv 2209.03003),
  the objective of SiT and Stable Diffusion 3: x_t = (1 - t) x0 + t eps on a straight line and the
  network predicts the velocity v = eps - x0, with t drawn uniformly or logit-normally
  (SD3, sec. 3.1).

`make_loss` turns a `DiffusionConfig` into a loss function for the trainer; `generate` samples
from any model honouring the (x_t, t, y) contract with the matching sampler.

Taught in notebook 03 (clearing the fog).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .guidance import guided
from .samplers import FLOW_TIME_SCALE, FlowAsEps, ddim_sample, ddpm_sample, draw_noise, euler_sample
from .schedules import SCHEDULES, NoiseSchedule, make_schedule

__all__ = ["OBJECTIVES", "SAMPLERS", "DiffusionConfig", "DiffusionLoss", "make_loss", "generate"]

OBJECTIVES = ("eps", "v", "x0", "flow")
WEIGHTINGS = ("none", "min_snr")
TIME_SAMPLINGS = ("uniform", "logit_normal")
SAMPLERS = {
    "eps": ("ddim", "ddpm"),
    "v": ("ddim", "ddpm"),
    "x0": ("ddim", "ddpm"),
    "flow": ("euler", "heun", "ddim", "ddpm"),  # DDIM/DDPM through samplers.FlowAsEps
}


@dataclass(frozen=True)
class DiffusionConfig:
    """How a denoiser is trained and sampled (the network's architecture lives elsewhere)."""

    # `help` is the text of the matching `dit-mini train` option (dit_mini.cli.options).
    objective: str = field(
        default="eps",
        metadata={"help": "what the network predicts: eps (noise), v (velocity), x0 (the image) "
                  "or flow (flow-matching velocity)"},
    )  # fmt: skip
    schedule: str = field(
        default="linear",
        metadata={"help": "noise schedule of eps, v and x0 objectives: linear or cosine"},
    )
    num_timesteps: int = field(
        default=1000, metadata={"help": "steps of the discrete noise schedule (eps, v, x0)"}
    )
    weighting: str = field(
        default="none",
        metadata={"help": "loss weighting of eps, v and x0 objectives: none or min_snr"},
    )
    min_snr_gamma: float = field(
        default=5.0, metadata={"help": "the gamma of min-SNR weighting (Hang et al.)"}
    )
    time_sampling: str = field(
        default="uniform",
        metadata={"help": "how training draws flow times: uniform or logit_normal (more weight "
                  "on the middle times; SD3)"},
    )  # fmt: skip

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}; got {self.objective!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}; got {self.schedule!r}")
        if self.num_timesteps < 1:
            raise ValueError(f"num_timesteps must be >= 1; got {self.num_timesteps}")
        if not (isinstance(self.min_snr_gamma, (int, float)) and self.min_snr_gamma > 0) or (
            self.min_snr_gamma == float("inf")
        ):
            raise ValueError(
                f"min_snr_gamma must be a finite number > 0 (the paper uses 5); got "
                f"{self.min_snr_gamma!r}: a negative gamma makes the loss negative"
            )
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}; got {self.weighting!r}")
        if self.time_sampling not in TIME_SAMPLINGS:
            raise ValueError(
                f"time_sampling must be one of {TIME_SAMPLINGS}; got {self.time_sampling!r}"
            )
        if self.objective == "flow" and self.weighting != "none":
            raise ValueError("min-SNR weighting applies to eps/v/x0 objectives, not 'flow'")
        if self.objective != "flow" and self.time_sampling != "uniform":
            raise ValueError("logit-normal time sampling applies to the 'flow' objective only")

    @property
    def is_flow(self) -> bool:
        return self.objective == "flow"

    @property
    def default_sampler(self) -> str:
        return SAMPLERS[self.objective][0]

    def make_schedule(self) -> NoiseSchedule:
        return make_schedule(self.schedule, self.num_timesteps)


class DiffusionLoss:
    """Training loss of a `DiffusionConfig`: loss(model, x0, y, generator) -> scalar.

    The random draws (t, eps) can be made separately with `draw` and passed in, so that a
    distributed trainer can draw them once for the global batch and give each rank its slice.
    """

    def __init__(self, config: DiffusionConfig):
        self.config = config
        self.schedule = None if config.is_flow else config.make_schedule()

    def draw(self, x0: torch.Tensor, generator: torch.Generator | None = None):
        """Random timesteps and noise for a batch.

        Shapes: x0 (B, C, H, W) -> t (B,), eps (B, C, H, W).
        """
        B = x0.shape[0]
        gen_device = generator.device if generator is not None else "cpu"
        if not self.config.is_flow:
            t = torch.randint(
                0, self.config.num_timesteps, (B,), generator=generator, device=gen_device
            )
        elif self.config.time_sampling == "logit_normal":
            t = torch.randn(B, generator=generator, device=gen_device).sigmoid()
        else:
            t = torch.rand(B, generator=generator, device=gen_device)
        return t.to(x0.device), draw_noise(x0.shape, generator, like=x0)

    def _check_given(self, x0: torch.Tensor, t, eps):
        """The caller's t and eps, checked: integer steps in [0, T) for a discrete schedule,
        float times in [0, 1] for flow, one per sample; eps shaped like x0. Values are read
        only from CPU tensors (no device synchronisation in a GPU training step)."""
        if not isinstance(x0, torch.Tensor) or x0.dim() < 2:
            raise ValueError(
                f"x0 must be a batch of images (B, C, H, W) or clips; got {type(x0).__name__} "
                f"{tuple(getattr(x0, 'shape', ()))}"
            )
        if eps is not None and (not isinstance(eps, torch.Tensor) or eps.shape != x0.shape):
            raise ValueError(
                f"eps must be noise shaped like x0 {tuple(x0.shape)}; got "
                f"{tuple(getattr(eps, 'shape', ()))}"
            )
        if t is None:
            return
        t = torch.as_tensor(t)
        if t.shape != (x0.shape[0],):
            raise ValueError(f"t must be (B,) = ({x0.shape[0]},); got shape {tuple(t.shape)}")
        T = self.config.num_timesteps
        if self.config.is_flow and not t.is_floating_point():
            raise TypeError(
                f"the flow objective takes continuous times t in [0, 1]; got integer {t.dtype}: "
                f"pass t.float() / {T} (or draw them with loss.draw)"
            )
        if not self.config.is_flow and t.is_floating_point():
            raise TypeError(
                f"the {self.config.objective!r} objective takes integer timesteps in [0, {T}); "
                f"got {t.dtype}: pass t.long() (continuous times belong to objective='flow')"
            )
        if t.device.type == "cpu" and t.numel():
            lo, hi = float(t.min()), float(t.max())
            top = 1.0 if self.config.is_flow else T - 1
            if not (0 <= lo and hi <= top):  # NaN fails too
                raise ValueError(f"t must lie in [0, {top:g}] for this objective; got {lo}..{hi}")

    def __call__(self, model, x0, y=None, generator=None, t=None, eps=None) -> torch.Tensor:
        self._check_given(x0, t, eps)
        if t is None or eps is None:  # draw what was not given; a given t or eps is kept
            t_drawn, eps_drawn = self.draw(x0, generator)
            t = t_drawn if t is None else torch.as_tensor(t, device=x0.device)
            eps = eps_drawn if eps is None else eps
        C = x0.shape[1]
        if getattr(model, "out_channels", C) != C:
            raise ValueError(
                "this loss cannot train a learned-variance model (learn_sigma=True); "
                "build the model with learn_sigma=False (sampling learned-sigma weights works)"
            )
        # 1. Flow matching: straight path, velocity target.
        if self.config.is_flow:
            tb = t.to(x0.dtype).reshape(-1, 1, 1, 1)
            x_t = (1 - tb) * x0 + tb * eps
            pred = model(x_t, t * FLOW_TIME_SCALE, y)
            return F.mse_loss(pred, eps - x0)
        # 2. Discrete diffusion: noised input, target by prediction type.
        s = self.schedule
        x_t = s.add_noise(x0, eps, t)
        target = {"eps": eps, "x0": x0, "v": s.velocity(x0, eps, t)}[self.config.objective]
        per_sample = (model(x_t, t, y) - target).pow(2).mean(dim=(1, 2, 3))  # (B,)
        # 3. Optional min-SNR-gamma weights, expressed for the chosen target (eq. 10 and table 1).
        if self.config.weighting == "min_snr":
            snr = s.snr(t.cpu()).to(per_sample)
            clipped = snr.clamp(max=self.config.min_snr_gamma)
            denom = {"eps": snr, "x0": torch.ones_like(snr), "v": snr + 1}[self.config.objective]
            per_sample = per_sample * clipped / denom
        return per_sample.mean()


def make_loss(config: DiffusionConfig | None = None) -> DiffusionLoss:
    """The trainer's loss function for a diffusion config (default: DDPM eps-prediction)."""
    return DiffusionLoss(config or DiffusionConfig())


def _model_shape(model) -> tuple[int, int, int]:
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "input_size"):
        raise ValueError("cannot infer the sample shape from this model; pass shape=(C, H, W)")
    return (config.in_channels, config.input_size, config.input_size)


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return value if math.isfinite(value) else None


def _check_sampling(cfg_scale, steps, eta) -> None:
    """Refuse guidance scales, step counts and eta that would give non-finite images."""
    scale = _finite(cfg_scale)
    if scale is None or scale < 0:
        raise ValueError(
            f"cfg_scale={cfg_scale!r} is not a usable guidance scale; use a finite number >= 0 "
            "(1 = no guidance, 2 to 4 sharpen class features)"
        )
    if _finite(steps) is None or steps < 1 or int(steps) != steps:
        raise ValueError(f"steps={steps!r} must be a whole number >= 1 (sampling steps)")
    if _finite(eta) is None or eta < 0:
        raise ValueError(f"eta={eta!r} must be a finite number >= 0 (0: deterministic DDIM)")


def generate(
    model,
    config: DiffusionConfig | None = None,
    n: int | None = None,
    y: torch.Tensor | None = None,
    sampler: str | None = None,
    steps: int = 50,
    cfg_scale: float = 1.0,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    shape: tuple[int, int, int] | None = None,
    x_T: torch.Tensor | None = None,
    trajectory: bool = False,
):
    """Sample n images (class labels y, optional guidance) with the sampler that fits the objective.

    Samplers: 'ddim' (steps, eta) or 'ddpm' (all T steps) for eps/v/x0; 'euler' or 'heun' for flow,
    which also runs under 'ddim'/'ddpm' on the config's VP schedule through `FlowAsEps`.

    Shapes: y (n,) -> (n, C, H, W), values roughly in [-1, 1].
    """
    config = config or DiffusionConfig()
    sampler = sampler or config.default_sampler
    if sampler not in SAMPLERS[config.objective]:
        raise ValueError(
            f"sampler {sampler!r} does not fit objective {config.objective!r}; "
            f"choose one of {SAMPLERS[config.objective]}"
        )
    if n is None:
        n = y.shape[0] if y is not None else (x_T.shape[0] if x_T is not None else None)
    if n is None or n < 1:
        raise ValueError("say how many samples to draw: pass n >= 1, labels y or a start noise x_T")
    _check_sampling(cfg_scale, steps, eta)
    param = next(model.parameters(), None) if hasattr(model, "parameters") else None
    device = param.device if param is not None else torch.device("cpu")
    if x_T is None:
        x_T = draw_noise((n, *(shape or _model_shape(model))), generator, device=device)
    if y is not None:
        y = torch.as_tensor(y, device=device).long().reshape(-1)
    net = guided(model, cfg_scale) if cfg_scale != 1.0 else model
    pred = "eps" if config.is_flow else config.objective
    if config.is_flow and sampler in ("ddim", "ddpm"):
        net = FlowAsEps(net, config.make_schedule())
    if sampler == "ddpm":
        return ddpm_sample(
            net, config.make_schedule(), x_T, y, pred, generator, trajectory=trajectory
        )
    if sampler == "ddim":
        schedule = config.make_schedule()
        return ddim_sample(
            net,
            schedule,
            x_T,
            y,
            steps,
            eta,
            prediction_type=pred,
            generator=generator,
            trajectory=trajectory,
        )
    return euler_sample(net, x_T, y, steps, heun=sampler == "heun", trajectory=trajectory)
