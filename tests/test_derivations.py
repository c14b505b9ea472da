"""The references of the derive-and-predict exercises: DDPM posterior, toy flow, toy guidance."""

import math

import pytest
import torch

from dit_mini.course.derivations import (
    euler_trajectories,
    first_step_gradients,
    flow_figure,
    marginal_velocity,
    tilted_density,
    tilted_figure,
    tilted_score,
    two_class_log_densities,
    two_class_scores,
    two_moons,
)
from dit_mini.diffusion.samplers import ddpm_posterior, ddpm_step
from dit_mini.diffusion.schedules import cosine_schedule, linear_schedule
from dit_mini.studies.steps_vs_size import halving_ratios


def test_ddpm_posterior_is_the_product_of_the_two_gaussians():
    schedule = linear_schedule(1000)
    x0, x_t = (
        torch.tensor([[0.7]], dtype=torch.float64),
        torch.tensor([[-0.4]], dtype=torch.float64),
    )
    grid = torch.linspace(-4, 4, 40_001, dtype=torch.float64)
    for t in (999, 400, 10):
        a, b, ab_prev = schedule.alphas[t], schedule.betas[t], schedule.alpha_bar[t - 1]
        # the two factors of Bayes' rule as functions of x_{t-1}, multiplied on a fine grid
        log_q = -((x_t - a.sqrt() * grid) ** 2) / (2 * b) - (grid - ab_prev.sqrt() * x0) ** 2 / (
            2 * (1 - ab_prev)
        )
        w = torch.softmax(log_q.flatten(), dim=0)
        mean = (w * grid).sum()
        variance = (w * (grid - mean) ** 2).sum()
        got_mean, got_var = ddpm_posterior(x0, x_t, t, schedule)
        assert float(got_mean) == pytest.approx(float(mean), abs=1e-6)
        assert float(got_var) == pytest.approx(float(variance), rel=1e-3)


def test_ddpm_posterior_at_step_zero_is_the_clean_image_and_the_step_uses_it():
    schedule = cosine_schedule(50)
    x0, x_t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    mean, variance = ddpm_posterior(x0, x_t, 0, schedule)
    assert torch.allclose(mean, x0, atol=1e-6) and float(variance) == 0.0
    mean, variance = ddpm_posterior(x0, x_t, 20, schedule)
    step, _ = ddpm_step(x0, x_t, 20, schedule, "x0", torch.Generator().manual_seed(0), False)
    z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(step, mean + float(variance) ** 0.5 * z, atol=1e-5)


def test_two_moons_is_seeded_and_centred():
    a = two_moons(200, generator=torch.Generator().manual_seed(0))
    b = two_moons(200, generator=torch.Generator().manual_seed(0))
    assert a.shape == (200, 2) and torch.equal(a, b)
    assert a.mean(0).abs().max() < 0.3 and a.abs().max() < 2
    with pytest.raises(ValueError, match="n must be >= 2"):
        two_moons(1)


def test_marginal_velocity_limits_and_a_brute_force_average():
    data = two_moons(50, generator=torch.Generator().manual_seed(1)).double()
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    # at t = 1 every road is equally likely: the average velocity is x minus the data mean
    assert torch.allclose(marginal_velocity(x, 1.0, data), x - data.mean(0), atol=1e-12)
    # one data point: the road is certain
    assert torch.allclose(marginal_velocity(x, 0.3, data[:1]), (x - data[0]) / 0.3)
    # Monte Carlo: draw (x0, eps), keep pairs whose x_t lands near a probe point, average eps - x0
    g = torch.Generator().manual_seed(3)
    i = torch.randint(0, 50, (400_000,), generator=g)
    eps = torch.randn(400_000, 2, generator=g, dtype=torch.float64)
    t, probe = 0.5, torch.tensor([[0.2, 0.1]], dtype=torch.float64)
    x_t = (1 - t) * data[i] + t * eps
    near = (x_t - probe).norm(dim=1) < 0.03
    monte_carlo = (eps - data[i])[near].mean(0)
    assert torch.allclose(marginal_velocity(probe, t, data)[0], monte_carlo, atol=0.06)
    with pytest.raises(ValueError, match="t must be in"):
        marginal_velocity(x, 0.0, data)
    with pytest.raises(ValueError, match="coordinates"):
        marginal_velocity(torch.zeros(2, 3), 0.5, data)


def test_euler_along_the_marginal_velocity_ends_on_the_data_and_draws():
    data = two_moons(100, generator=torch.Generator().manual_seed(4))
    starts = torch.randn(20, 2, generator=torch.Generator().manual_seed(5))
    paths = euler_trajectories(lambda x, t: marginal_velocity(x, t, data), starts, steps=40)
    assert paths.shape == (41, 20, 2) and torch.equal(paths[0], starts)
    assert torch.cdist(paths[-1], data).min(dim=1).values.max() < 0.1
    fig = flow_figure(data, paths)
    assert len(fig.axes[0].lines) == 20
    with pytest.raises(ValueError, match="steps must be"):
        euler_trajectories(lambda x, t: x, starts, steps=0)


def test_first_step_gradients_of_a_fresh_adaln_zero_dit_reach_only_the_output_layer():
    from dit_mini.models.dit import DiT, dit_config

    torch.manual_seed(0)
    model = DiT(dit_config("nano"))
    x, t, y = torch.randn(2, 3, 32, 32), torch.tensor([10.0, 900.0]), torch.tensor([0, 3])
    assert first_step_gradients(model, x, t, y) == [
        "final_layer.linear.bias",
        "final_layer.linear.weight",
    ]
    assert all(p.grad is None for p in model.parameters())  # cleared again
    with torch.no_grad():
        model.final_layer.linear.weight.normal_(std=0.02)  # after one step W is not zero
    reached = first_step_gradients(model, x, t, y)
    assert "final_layer.adaLN_modulation.1.weight" in reached and len(reached) > 2


def test_two_class_scores_match_finite_differences_and_the_tilt_is_bayes():
    x = torch.linspace(-2.5, 2.5, 11, dtype=torch.float64)
    y = torch.arange(11) % 2
    uncond, cond = two_class_scores(x, y)
    h = 1e-6
    lp_hi, lc_hi = two_class_log_densities(x + h)
    lp_lo, lc_lo = two_class_log_densities(x - h)
    assert torch.allclose(uncond, (lp_hi - lp_lo) / (2 * h), atol=1e-6)
    assert torch.allclose(cond, (lc_hi - lc_lo).gather(1, y[:, None])[:, 0] / (2 * h), atol=1e-6)
    assert torch.allclose(tilted_score(x, y, 0.0), uncond)
    assert torch.allclose(tilted_score(x, y, 1.0), cond)
    assert torch.allclose(tilted_score(x, y, 3.0), uncond + 3 * (cond - uncond))
    assert not torch.allclose(tilted_score(x, y, 3.0), 3 * cond)  # the prior does not drop out


def test_tilted_density_sharpens_away_from_the_other_class():
    _, density, plain = tilted_density(1, 1.0)
    _, _, sharp = tilted_density(1, 3.0)
    assert float(density.sum() * 0.01) == pytest.approx(1.0, rel=1e-3)
    assert plain["mean"] == pytest.approx(1.0, abs=0.01) and plain["std"] == pytest.approx(
        0.7, abs=0.01
    )
    assert sharp["mean"] > plain["mean"] + 0.1 and sharp["std"] < plain["std"] - 0.05
    assert len(tilted_figure(scales=(0.0, 2.0)).axes[0].lines) == 2


def test_halving_ratios_divide_the_half_by_the_whole():
    rows = [{"name": "a", "steps": s, "fid": f} for s, f in ((2, 6.0), (4, 4.0), (8, 5.0))]
    rows.append({"name": "b", "steps": 3, "fid": 1.0})
    assert halving_ratios(rows, "a") == {4: 1.5, 8: 0.8}
    with pytest.raises(ValueError, match="no runs of 'c'"):
        halving_ratios(rows, "c")
    with pytest.raises(ValueError, match="no count and its half"):
        halving_ratios(rows, "b")


def test_the_cosine_midpoint_of_the_package_is_the_closed_form():
    for s in (0.0, 0.008, 0.3):
        f = [math.cos((u + s) / (1 + s) * math.pi / 2) ** 2 for u in (0.0, 0.5)]
        closed = f[1] / f[0]
        assert float(cosine_schedule(1000, s).alpha_bar[499]) == pytest.approx(closed, rel=1e-10)
