"""The sampler and loss code against independent float64 transcriptions of the references.

The references are written here from the reference DiT's `diffusion/gaussian_diffusion.py`
(`q_posterior_mean_variance`, `p_mean_variance` with learned-range variance, `p_sample`,
`ddim_sample`), from Hang et al. (min-SNR-gamma, arXiv 2303.09556, table 1), SD3 (logit-normal
times, arXiv 2403.03206, sec. 3.1) and Heun's method; nothing below calls dit_mini to compute an
expected value. The noise a step adds is drawn from the same seeded generator on both sides (as
diffusers passes `variance_noise`), so the comparisons are exact up to float32 rounding.

Each test was checked to fail on a one-line bug in the code it covers (a mutant):
- DDIM without its eta noise: test_ddim_with_eta_matches_the_reference
- flipped learned-variance interpolation in DDPM: test_ddpm_learned_variance_matches_the_reference
- a wrong min-SNR weight for v-prediction: test_min_snr_weights_follow_their_formulas
- logit-normal times without the sigmoid: test_logit_normal_times_have_the_right_quantiles
- Heun without its second stage: test_heun_is_second_order_against_a_float64_solution
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
import torch

from dit_mini.diffusion.losses import DiffusionConfig, make_loss
from dit_mini.diffusion.samplers import FLOW_TIME_SCALE, ddim_step, ddpm_step, euler_sample
from dit_mini.diffusion.schedules import make_schedule

T = 1000
SHAPE = (2, 3, 4, 4)


def reference_schedule():
    """gaussian_diffusion.get_named_beta_schedule('linear', 1000) and the derived arrays."""
    betas = np.linspace(1e-4, 0.02, T, dtype=np.float64)
    alphas_cumprod = np.cumprod(1.0 - betas)
    prev = np.append(1.0, alphas_cumprod[:-1])
    posterior_variance = betas * (1.0 - prev) / (1.0 - alphas_cumprod)
    return {
        "betas": betas,
        "alphas_cumprod": alphas_cumprod,
        "alphas_cumprod_prev": prev,
        "posterior_log_variance_clipped": np.log(
            np.append(posterior_variance[1], posterior_variance[1:])
        ),
        "posterior_mean_coef1": betas * np.sqrt(prev) / (1.0 - alphas_cumprod),
        "posterior_mean_coef2": (1.0 - prev) * np.sqrt(1.0 - betas) / (1.0 - alphas_cumprod),
    }


def reference_p_sample(s, x_t, t, eps_out, var_out, noise):
    """p_mean_variance (LEARNED_RANGE, EPSILON, clip_denoised) then p_sample, in float64."""
    ab = s["alphas_cumprod"][t]
    pred_xstart = np.sqrt(1.0 / ab) * x_t - np.sqrt(1.0 / ab - 1.0) * eps_out
    pred_xstart = np.clip(pred_xstart, -1, 1)
    mean = s["posterior_mean_coef1"][t] * pred_xstart + s["posterior_mean_coef2"][t] * x_t
    min_log = s["posterior_log_variance_clipped"][t]
    max_log = np.log(s["betas"][t])
    frac = (var_out + 1) / 2
    log_variance = frac * max_log + (1 - frac) * min_log
    return mean + (t != 0) * np.exp(0.5 * log_variance) * noise


def reference_ddim(s, x_t, t, t_prev, eps_out, eta, noise):
    """ddim_sample of gaussian_diffusion (EPSILON, clip_denoised) from t to t_prev, in float64."""
    ab = s["alphas_cumprod"][t]
    ab_prev = s["alphas_cumprod"][t_prev] if t_prev >= 0 else 1.0
    pred_xstart = np.clip(np.sqrt(1.0 / ab) * x_t - np.sqrt(1.0 / ab - 1.0) * eps_out, -1, 1)
    eps = (np.sqrt(1.0 / ab) * x_t - pred_xstart) / np.sqrt(1.0 / ab - 1.0)
    sigma = eta * np.sqrt((1 - ab_prev) / (1 - ab)) * np.sqrt(1 - ab / ab_prev)
    mean_pred = pred_xstart * np.sqrt(ab_prev) + np.sqrt(1 - ab_prev - sigma**2) * eps
    return mean_pred + (t_prev >= 0) * sigma * noise


def _inputs(seed):
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(SHAPE, generator=g)
    eps_out = torch.randn(SHAPE, generator=g)
    var_out = torch.rand(SHAPE, generator=g) * 2 - 1  # the network's v in [-1, 1]
    return x_t, eps_out, var_out


def test_the_package_schedule_is_the_reference_schedule():
    s = reference_schedule()
    ours = make_schedule("linear", T)
    np.testing.assert_allclose(ours.betas.numpy(), s["betas"], rtol=1e-12)
    np.testing.assert_allclose(ours.alpha_bar.numpy(), s["alphas_cumprod"], rtol=1e-12)


@pytest.mark.parametrize("t", [999, 600, 250, 40, 1])
def test_ddpm_learned_variance_matches_the_reference(t):
    s, schedule = reference_schedule(), make_schedule("linear", T)
    x_t, eps_out, var_out = _inputs(t)
    out, _ = ddpm_step(torch.cat([eps_out, var_out], 1), x_t, t, schedule,
                       generator=torch.Generator().manual_seed(7))  # fmt: skip
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(7)).double().numpy()
    expected = reference_p_sample(
        s, x_t.double().numpy(), t, eps_out.double().numpy(), var_out.double().numpy(), noise
    )
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("t", "t_prev"), [(999, 979), (500, 400), (120, 60), (30, -1)])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_with_eta_matches_the_reference(t, t_prev, eta):
    s, schedule = reference_schedule(), make_schedule("linear", T)
    x_t, eps_out, _ = _inputs(t + 1)
    out, _ = ddim_step(eps_out, x_t, t, t_prev, schedule, eta=eta,
                       generator=torch.Generator().manual_seed(3))  # fmt: skip
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3)).double().numpy()
    expected = reference_ddim(
        s, x_t.double().numpy(), t, t_prev, eps_out.double().numpy(), eta, noise
    )
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=1e-4, atol=1e-5)


class _Zero(torch.nn.Module):
    """A 'network' that predicts 0, so each sample's loss is the mean square of its target."""

    def forward(self, x, t, y=None):
        return torch.zeros_like(x)


@pytest.mark.parametrize("objective", ["eps", "x0", "v"])
def test_min_snr_weights_follow_their_formulas(objective):
    gamma = 5.0
    loss = make_loss(DiffusionConfig(objective=objective, weighting="min_snr",
                                     min_snr_gamma=gamma))  # fmt: skip
    s = reference_schedule()
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(1, 3, 4, 4, generator=g) * 2 - 1
    eps = torch.randn(1, 3, 4, 4, generator=g)
    for t in (5, 100, 300, 700, 990):  # SNR from about 2000 down to 4e-5: both sides of gamma
        ab = s["alphas_cumprod"][t]
        snr = ab / (1 - ab)
        a, b = math.sqrt(ab), math.sqrt(1 - ab)
        target = {"eps": eps, "x0": x0, "v": a * eps.double() - b * x0.double()}[objective]
        mse = float(target.double().pow(2).mean())
        weight = {"eps": min(snr, gamma) / snr, "x0": min(snr, gamma),
                  "v": min(snr, gamma) / (snr + 1)}[objective]  # fmt: skip
        got = float(loss(_Zero(), x0, None, t=torch.tensor([t]), eps=eps))
        assert got == pytest.approx(weight * mse, rel=1e-5), (objective, t)


def test_logit_normal_times_have_the_right_quantiles():
    loss = make_loss(DiffusionConfig(objective="flow", time_sampling="logit_normal"))
    t, _ = loss.draw(torch.zeros(200_000, 1, 1, 1), torch.Generator().manual_seed(0))
    assert float(t.min()) > 0 and float(t.max()) < 1
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        exact = 1 / (1 + math.exp(-NormalDist().inv_cdf(q)))  # t = sigmoid(z), z ~ N(0, 1)
        assert float(torch.quantile(t, q)) == pytest.approx(exact, abs=4e-3), q


class _LinearField(torch.nn.Module):
    """v(x, t) = t x: dx/dt = t x, so x(0) = x(1) exp(-1/2) exactly."""

    def forward(self, x, t, y=None):
        return (t / FLOW_TIME_SCALE).to(x.dtype).reshape(-1, 1, 1, 1) * x


def test_heun_is_second_order_against_a_float64_solution():
    x1 = torch.randn(2, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact = x1 * math.exp(-0.5)

    def error(steps, heun):
        return float((euler_sample(_LinearField(), x1, steps=steps, heun=heun) - exact).abs().max())

    euler, heun = error(16, False), error(16, True)
    assert heun < euler / 8, (heun, euler)
    assert error(8, True) / error(16, True) > 3.0  # halving h cuts the error about 4x
    assert error(8, False) / error(16, False) < 2.5  # Euler: about 2x (first order)
