import math

import pytest
import torch

from dit_mini.diffusion.schedules import (
    NoiseSchedule,
    cosine_schedule,
    linear_schedule,
    make_schedule,
)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_alpha_bar_strictly_decreasing_in_unit_interval(name):
    s = make_schedule(name, 1000)
    ab = s.alpha_bar
    assert ab.shape == (1000,)
    assert bool((ab > 0).all()) and bool((ab <= 1).all())
    assert bool((ab[1:] < ab[:-1]).all())
    assert torch.allclose(s.alphas, 1 - s.betas)
    assert torch.allclose(ab, torch.cumprod(1 - s.betas, 0))


def test_linear_matches_ddpm_endpoints():
    s = linear_schedule(1000)
    assert s.betas[0].item() == pytest.approx(1e-4)
    assert s.betas[-1].item() == pytest.approx(0.02)
    # DDPM's alpha_bar_T is about 4e-5: the last step is (almost) pure noise.
    assert s.alpha_bar[-1].item() == pytest.approx(4.04e-5, rel=0.05)


def test_cosine_closed_form():
    s = cosine_schedule(1000)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 250, 500, 900):
        assert s.alpha_bar[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-6)


def test_cosine_keeps_more_signal_midway():
    assert cosine_schedule().alpha_bar[500] > linear_schedule().alpha_bar[500]


def test_add_noise_closed_form_and_statistics():
    s = linear_schedule(1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20000, 1, 1, 1), 0.7)
    eps = torch.randn(x0.shape, generator=g)
    t = torch.full((20000,), 300)
    x_t = s.add_noise(x0, eps, t)
    a = s.alpha_bar[300].item()
    assert x_t.mean().item() == pytest.approx(math.sqrt(a) * 0.7, abs=0.02)
    assert x_t.std().item() == pytest.approx(math.sqrt(1 - a), abs=0.02)


def test_prediction_conversions_round_trip():
    s = cosine_schedule(100)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(4, 3, 8, 8, generator=g)
    eps = torch.randn(4, 3, 8, 8, generator=g)
    t = torch.tensor([0, 10, 50, 99])
    x_t = s.add_noise(x0, eps, t)
    for kind, out in {"eps": eps, "x0": x0, "v": s.velocity(x0, eps, t)}.items():
        e, x = s.to_eps_x0(out, x_t, t, kind)
        assert torch.allclose(e, eps, atol=1e-4), kind
        assert torch.allclose(x, x0, atol=1e-3), kind


def test_snr_decreasing():
    snr = linear_schedule().snr()
    assert bool((snr[1:] < snr[:-1]).all())


def test_bad_input():
    with pytest.raises(ValueError, match="unknown schedule 'cosin'"):
        make_schedule("cosin")
    with pytest.raises(ValueError, match="beta"):
        NoiseSchedule(torch.tensor([0.1, 1.5]))
    with pytest.raises(ValueError, match=r"timesteps must lie in \[0, 10\)"):
        linear_schedule(10).add_noise(
            torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), torch.tensor([10])
        )
