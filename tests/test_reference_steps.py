"""The sampler and loss code against independent float64 references (issue 13, item 4).

Every reference below is written from the papers and from the reference DiT repository's
`diffusion/gaussian_diffusion.py` (facebookresearch/DiT: `GaussianDiffusion.__init__`,
`p_mean_variance`, `p_sample`, `ddim_sample`), in numpy float64, without calling dit_mini:

- DDPM ancestral step with learned variance (Nichol & Dhariwal, arXiv 2102.09672, eq. 15):
  frac = (v + 1) / 2, log_var = frac * log(beta_t) + (1 - frac) * log(beta_tilde_t).
- DDIM step with eta > 0 (Song et al., arXiv 2010.02502, eq. 12 and 16).
- min-SNR-gamma weights per objective (Hang et al., arXiv 2303.09556, eq. 10 and table 1).
- The logit-normal time distribution of SD3 (Esser et al., arXiv 2403.03206, sec. 3.1).
- Heun's method against the closed-form solution of a linear ODE.

The package's samplers draw their noise from a `torch.Generator`; the references redraw the same
numbers from a generator with the same seed (float32 standard normals, as the package draws them),
so the comparisons are exact up to float64 rounding.

Mutation check (run by hand on a scratch copy of dit_mini with tests/test_reference_steps.py,
test_guidance.py, test_samplers.py, test_diffusion.py and test_schedules.py; never committed): each
one-line bug below makes the named tests fail; all 105 of those tests pass on the real code.

- DDIM without its eta noise (`x_prev + 0.0 * randn(...)`, or sigma = 0 * ...):
  test_ddim_step_matches_reference (its 24 eta > 0 cases), test_ddim_sample_loop_matches_reference.
- min-SNR weight for v-prediction min(SNR, gamma) / SNR instead of / (SNR + 1):
  test_min_snr_weights_match_formulas[v-*] (2 cases).
- logit-normal flow times without the sigmoid: test_logit_normal_times_quantiles
  (and test_diffusion.py::test_loss_is_seeded_scalar_and_trains[flow]).
- learned-variance interpolation flipped, (1 - frac) log(beta) + frac log(beta_tilde):
  test_ddpm_step_matches_reference (the 12 learned-sigma cases),
  test_ddpm_sample_loop_matches_reference.
- Heun without its second stage: test_heun_is_second_order.
- (guidance, test_guidance.py) cond and uncond halves of the batched pass swapped:
  test_guided_output_is_uncond_plus_scale_times_the_difference (4 scales),
  test_scale_one_equals_conditional_output,
  test_guides_all_channels_and_passes_learned_sigma.
"""

import math
from statistics import NormalDist

import numpy as np
import pytest
import torch

from dit_mini.diffusion.losses import DiffusionConfig, DiffusionLoss
from dit_mini.diffusion.samplers import (
    ddim_sample,
    ddim_step,
    ddim_timesteps,
    ddpm_sample,
    ddpm_step,
    euler_sample,
)
from dit_mini.diffusion.schedules import make_schedule

SHAPE = (3, 2, 4, 4)  # (B, C, H, W) of the random states


# ---------------------------------------------------------------------------------------------
# The reference: gaussian_diffusion.py in float64 numpy.


def ref_betas(name: str, T: int) -> np.ndarray:
    """get_named_beta_schedule of the reference: 'linear' and 'squaredcos_cap_v2' (cosine)."""
    if name == "linear":
        scale = 1000 / T
        return np.linspace(scale * 0.0001, scale * 0.02, T, dtype=np.float64)

    def alpha_bar(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    return np.array([min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), 0.999) for i in range(T)])


class RefDiffusion:
    """The arrays of GaussianDiffusion.__init__ and its two sampling steps."""

    def __init__(self, betas: np.ndarray):
        self.betas = betas
        alphas = 1.0 - betas
        self.alphas = alphas
        self.ab = np.cumprod(alphas)
        self.ab_prev = np.append(1.0, self.ab[:-1])
        self.post_var = betas * (1.0 - self.ab_prev) / (1.0 - self.ab)
        self.post_log_var_clipped = np.log(np.append(self.post_var[1], self.post_var[1:]))
        self.coef1 = betas * np.sqrt(self.ab_prev) / (1.0 - self.ab)
        self.coef2 = (1.0 - self.ab_prev) * np.sqrt(alphas) / (1.0 - self.ab)

    def pred_x0(self, out, x, ab, kind):
        """_predict_xstart_from_eps (eps), START_X (x0); v from Salimans & Ho (2202.00512)."""
        if kind == "eps":
            return np.sqrt(1.0 / ab) * x - np.sqrt(1.0 / ab - 1) * out
        if kind == "x0":
            return out
        return np.sqrt(ab) * x - np.sqrt(1 - ab) * out

    def p_sample(self, model_output, x, t, noise, kind="eps", clip=True):
        """p_mean_variance + p_sample for one integer t (LEARNED_RANGE when 2C channels)."""
        C = x.shape[1]
        if model_output.shape[1] == 2 * C:
            model_output, var_values = model_output[:, :C], model_output[:, C:]
            min_log = self.post_log_var_clipped[t]
            max_log = np.log(self.betas[t])
            frac = (var_values + 1) / 2
            log_var = frac * max_log + (1 - frac) * min_log
        else:  # FIXED_SMALL
            log_var = np.full_like(x, self.post_log_var_clipped[t])
        x0 = self.pred_x0(model_output, x, self.ab[t], kind)
        if clip:
            x0 = np.clip(x0, -1, 1)
        mean = self.coef1[t] * x0 + self.coef2[t] * x
        nonzero = float(t != 0)
        return mean + nonzero * np.exp(0.5 * log_var) * noise, x0

    def ddim_sample(self, model_output, x, t, t_prev, noise, eta, kind="eps", clip=True):
        """ddim_sample for one jump t -> t_prev; t_prev = -1 is the clean image.

        The reference reaches strided jumps through SpacedDiffusion, whose respaced
        alphas_cumprod_prev at t is the original alpha_bar[t_prev] (1.0 for the last jump).
        """
        model_output = model_output[:, : x.shape[1]]
        ab = self.ab[t]
        ab_prev = self.ab[t_prev] if t_prev >= 0 else 1.0
        x0 = self.pred_x0(model_output, x, ab, kind)
        if clip:
            x0 = np.clip(x0, -1, 1)
        eps = (np.sqrt(1.0 / ab) * x - x0) / np.sqrt(1.0 / ab - 1)  # _predict_eps_from_xstart
        sigma = eta * np.sqrt((1 - ab_prev) / (1 - ab)) * np.sqrt(1 - ab / ab_prev)
        mean_pred = x0 * np.sqrt(ab_prev) + np.sqrt(1 - ab_prev - sigma**2) * eps
        nonzero = float(t_prev >= 0)
        return mean_pred + nonzero * sigma * noise, x0


def drawn_noise(seed: int, shape=SHAPE) -> np.ndarray:
    """The standard normals a sampler step draws from torch.Generator().manual_seed(seed)."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).double().numpy()


def random_state(seed: int, channels_out: int):
    """Random x_t (B, C, H, W) and a model output with `channels_out` channels, float64.

    Learned-variance channels lie in [-1, 1], as DiT's interpolation expects.
    """
    g = torch.Generator().manual_seed(1000 + seed)
    B, C, H, W = SHAPE
    x_t = torch.randn(SHAPE, generator=g, dtype=torch.float64) * 1.5
    pred = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    if channels_out == C:
        return x_t, pred
    var = torch.rand(SHAPE, generator=g, dtype=torch.float64) * 2 - 1
    return x_t, torch.cat([pred, var], dim=1)


# ---------------------------------------------------------------------------------------------
# 1. DDPM with learned variance and DDIM with eta > 0, step by step and over a short loop.


@pytest.mark.parametrize("schedule_name", ["linear", "cosine"])
def test_package_betas_match_reference(schedule_name):
    s = make_schedule(schedule_name, 1000)
    assert np.allclose(s.betas.numpy(), ref_betas(schedule_name, 1000), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("schedule_name", ["linear", "cosine"])
@pytest.mark.parametrize("kind", ["eps", "x0", "v"])
@pytest.mark.parametrize("learned_sigma", [True, False])
@pytest.mark.parametrize("clip", [True, False])
def test_ddpm_step_matches_reference(schedule_name, kind, learned_sigma, clip):
    s, ref = make_schedule(schedule_name, 1000), RefDiffusion(ref_betas(schedule_name, 1000))
    C = SHAPE[1]
    for i, t in enumerate([999, 600, 250, 7, 1, 0]):
        x_t, out = random_state(i, 2 * C if learned_sigma else C)
        x_prev, x0 = ddpm_step(
            out, x_t, t, s, kind, generator=torch.Generator().manual_seed(i), clip_x0=clip
        )
        ref_prev, ref_x0 = ref.p_sample(out.numpy(), x_t.numpy(), t, drawn_noise(i), kind, clip)
        assert np.allclose(x0.numpy(), ref_x0, rtol=1e-9, atol=1e-9), f"x0 at t={t}"
        assert np.allclose(x_prev.numpy(), ref_prev, rtol=1e-9, atol=1e-9), f"x_prev at t={t}"


@pytest.mark.parametrize("schedule_name", ["linear", "cosine"])
@pytest.mark.parametrize("kind", ["eps", "x0", "v"])
@pytest.mark.parametrize("eta", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("clip", [True, False])
def test_ddim_step_matches_reference(schedule_name, kind, eta, clip):
    s, ref = make_schedule(schedule_name, 1000), RefDiffusion(ref_betas(schedule_name, 1000))
    C = SHAPE[1]
    jumps = [(999, 979), (600, 580), (250, 200), (40, 0), (9, -1)]
    for i, (t, t_prev) in enumerate(jumps):
        x_t, out = random_state(i, 2 * C if i % 2 else C)  # variance channels are ignored
        x_prev, x0 = ddim_step(
            out, x_t, t, t_prev, s, kind, eta, torch.Generator().manual_seed(i), clip
        )
        ref_prev, ref_x0 = ref.ddim_sample(
            out.numpy(), x_t.numpy(), t, t_prev, drawn_noise(i), eta, kind, clip
        )
        assert np.allclose(x0.numpy(), ref_x0, rtol=1e-9, atol=1e-9), f"x0 at t={t}"
        assert np.allclose(x_prev.numpy(), ref_prev, rtol=1e-9, atol=1e-9), f"x at {t}->{t_prev}"


def toy_model(channels_out: int):
    """A deterministic stand-in for a network: smooth in (x_t, t), tanh keeps variance in (-1, 1).

    Shapes: x_t (B, C, H, W), t (B,) -> (B, channels_out, H, W).
    """

    def model(x_t, t, y=None):
        tt = t.to(x_t.dtype).reshape(-1, 1, 1, 1) / 1000
        pred = 0.6 * x_t + 0.2 * torch.sin(3 * x_t + tt)
        if channels_out == x_t.shape[1]:
            return pred
        return torch.cat([pred, torch.tanh(x_t - tt)], dim=1)

    return model


def test_ddpm_sample_loop_matches_reference():
    T, C = 50, SHAPE[1]
    s, ref = make_schedule("linear", T), RefDiffusion(ref_betas("linear", T))
    model = toy_model(2 * C)
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    out = ddpm_sample(model, s, x_T, generator=torch.Generator().manual_seed(6))
    # the loop draws one noise per step with t > 0, in order, from the one generator
    g, x = torch.Generator().manual_seed(6), x_T.numpy()
    for t in range(T - 1, -1, -1):
        noise = torch.randn(SHAPE, generator=g).double().numpy() if t > 0 else 0.0
        tb = torch.full((SHAPE[0],), t, dtype=torch.long)
        x, _ = ref.p_sample(model(torch.from_numpy(x), tb).numpy(), x, t, noise)
    assert np.allclose(out.numpy(), x, rtol=1e-8, atol=1e-8)


def test_ddim_sample_loop_matches_reference():
    T, C, eta = 1000, SHAPE[1], 1.0
    s, ref = make_schedule("cosine", T), RefDiffusion(ref_betas("cosine", T))
    model = toy_model(C)
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    out = ddim_sample(model, s, x_T, steps=8, eta=eta, generator=torch.Generator().manual_seed(8))
    ts = ddim_timesteps(T, 8, "trailing")
    g, x = torch.Generator().manual_seed(8), x_T.numpy()
    for t, t_prev in zip(ts, ts[1:] + [-1]):
        noise = torch.randn(SHAPE, generator=g).double().numpy() if t_prev >= 0 else 0.0
        tb = torch.full((SHAPE[0],), t, dtype=torch.long)
        x, _ = ref.ddim_sample(model(torch.from_numpy(x), tb).numpy(), x, t, t_prev, noise, eta)
    assert np.allclose(out.numpy(), x, rtol=1e-8, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# 2. min-SNR-gamma weights per objective.


@pytest.mark.parametrize("objective", ["eps", "x0", "v"])
@pytest.mark.parametrize("schedule_name", ["linear", "cosine"])
def test_min_snr_weights_match_formulas(objective, schedule_name):
    """A model whose error is exactly 1 everywhere makes the loss equal the weight at t."""
    gamma = 5.0
    cfg = DiffusionConfig(
        objective=objective, schedule=schedule_name, weighting="min_snr", min_snr_gamma=gamma
    )
    loss_fn = DiffusionLoss(cfg)
    ab_all = np.cumprod(1.0 - ref_betas(schedule_name, 1000))
    g = torch.Generator().manual_seed(0)
    seen_clipped = seen_unclipped = False
    for t in [0, 10, 100, 200, 300, 500, 800, 999]:
        x0 = torch.rand((1, 3, 4, 4), generator=g, dtype=torch.float64) * 2 - 1
        eps = torch.randn((1, 3, 4, 4), generator=g, dtype=torch.float64)
        ab = ab_all[t]
        target = {"eps": eps, "x0": x0, "v": math.sqrt(ab) * eps - math.sqrt(1 - ab) * x0}
        snr = ab / (1 - ab)
        weight = {
            "eps": min(snr, gamma) / snr,
            "x0": min(snr, gamma),
            "v": min(snr, gamma) / (snr + 1),
        }[objective]
        seen_clipped |= snr > gamma
        seen_unclipped |= snr < gamma

        def model(x_t, tt, y=None, target=target[objective]):
            return target + 1.0  # squared error 1 in every element

        loss = loss_fn(model, x0, None, t=torch.tensor([t]), eps=eps)
        assert loss.item() == pytest.approx(weight, rel=1e-9), f"t={t}, SNR={snr:.4g}"
    assert seen_clipped and seen_unclipped  # both branches of min(SNR, gamma) were checked


# ---------------------------------------------------------------------------------------------
# 3. Logit-normal flow times.


def test_logit_normal_times_quantiles():
    """t = sigmoid(z), z ~ N(0, 1): the sample quantiles sit on the exact ones."""
    loss_fn = DiffusionLoss(DiffusionConfig(objective="flow", time_sampling="logit_normal"))
    n = 200_000
    t, _ = loss_fn.draw(torch.zeros(n, 1, 1, 1), torch.Generator().manual_seed(0))
    t = t.double()
    assert float(t.min()) > 0.0 and float(t.max()) < 1.0
    qs = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]
    sample = torch.quantile(t, torch.tensor(qs, dtype=torch.float64)).numpy()
    exact = np.array([1 / (1 + math.exp(-NormalDist().inv_cdf(q))) for q in qs])
    # sampling error of a quantile at n = 2e5 is below 1.5e-3 here; a uniform t or a missing
    # sigmoid misses by more than 0.1
    assert np.abs(sample - exact).max() < 5e-3, (sample, exact)


# ---------------------------------------------------------------------------------------------
# 4. Heun against a closed-form ODE solution.

LAM, MU = 1.3, -0.8  # dx/dt = LAM x + MU t


def linear_velocity(x_t, t, y=None):
    """v(x, t) = LAM x + MU t; t arrives as flow time * 1000 (FLOW_TIME_SCALE)."""
    tt = t.to(torch.float64).reshape(-1, 1, 1, 1) / 1000
    return LAM * x_t + MU * tt


def exact_x0(x1: torch.Tensor) -> torch.Tensor:
    """x(0) for x' = LAM x + MU t, x(1) = x1: x(t) = C e^{LAM t} + alpha t + beta."""
    alpha = -MU / LAM
    beta = alpha / LAM
    c = (x1 - alpha - beta) * math.exp(-LAM)
    return c + beta


def integration_error(steps: int, heun: bool) -> float:
    x1 = torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = euler_sample(linear_velocity, x1, steps=steps, heun=heun)
    return float((out - exact_x0(x1)).abs().max())


def test_heun_is_second_order():
    steps = [16, 32, 64, 128]
    heun = [integration_error(n, heun=True) for n in steps]
    euler = [integration_error(n, heun=False) for n in steps]
    heun_ratios = [a / b for a, b in zip(heun, heun[1:])]
    euler_ratios = [a / b for a, b in zip(euler, euler[1:])]
    # halving the step divides the error by ~4 for a 2nd-order method, by ~2 for Euler
    assert all(3.6 < r < 4.4 for r in heun_ratios), (heun, heun_ratios)
    assert all(1.8 < r < 2.2 for r in euler_ratios), (euler, euler_ratios)
    assert heun[1] < euler[1] / 10  # and it is far more accurate at the same step count
