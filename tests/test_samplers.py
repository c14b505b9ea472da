import pytest
import torch

from dit_mini.diffusion.losses import DiffusionConfig, generate
from dit_mini.diffusion.samplers import (
    FlowAsEps,
    ddim_sample,
    ddim_timesteps,
    ddpm_sample,
    euler_sample,
    flow_timesteps,
)
from dit_mini.diffusion.schedules import cosine_schedule, linear_schedule

POINT = torch.tensor([0.5, -0.25, 0.75]).reshape(1, 3, 1, 1).expand(1, 3, 4, 4)


def oracle(schedule, kind="eps"):
    """Exact denoiser for a dataset holding one point: it knows x0, so eps follows from x_t."""

    def model(x_t, t, y=None):
        ab = schedule.alpha_bar[t].float().reshape(-1, 1, 1, 1)
        eps = (x_t - ab.sqrt() * POINT) / (1 - ab).sqrt()
        return {
            "eps": eps,
            "x0": POINT.expand_as(x_t),
            "v": ab.sqrt() * eps - (1 - ab).sqrt() * POINT,
        }[kind]

    return model


@pytest.mark.parametrize("kind", ["eps", "x0", "v"])
def test_ddpm_and_ddim_recover_the_single_point(kind):
    s = linear_schedule(100)
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(2, 3, 4, 4, generator=g)
    out = ddpm_sample(oracle(s, kind), s, x_T, prediction_type=kind, generator=g)
    assert torch.allclose(out, POINT.expand_as(out), atol=1e-4)
    for eta in (0.0, 1.0):
        out = ddim_sample(
            oracle(s, kind), s, x_T, steps=10, eta=eta, prediction_type=kind, generator=g
        )
        assert torch.allclose(out, POINT.expand_as(out), atol=1e-4)


def velocity(x_t, t, y=None):
    """Exact flow-matching velocity for the one-point dataset (t arrives scaled by 1000)."""
    tt = (t / 1000).reshape(-1, 1, 1, 1)
    eps = (x_t - (1 - tt) * POINT) / tt
    return eps - POINT


def test_flow_model_runs_under_ddpm_and_ddim():
    s = linear_schedule(100)
    g = torch.Generator().manual_seed(2)
    x_t, t = torch.randn(5, 3, 4, 4, generator=g), torch.tensor([0, 3, 40, 77, 99])
    # the bridge turns the exact velocity into the exact VP eps at every timestep
    assert torch.allclose(FlowAsEps(velocity, s)(x_t, t), oracle(s)(x_t, t), atol=1e-4)
    out = ddpm_sample(FlowAsEps(velocity, s), s, x_t[:2], generator=g)
    assert torch.allclose(out, POINT.expand_as(out), atol=1e-4)
    out = ddim_sample(FlowAsEps(velocity, s), s, x_t[:2], steps=5)
    assert torch.allclose(out, POINT.expand_as(out), atol=1e-4)


def test_euler_recovers_point_for_exact_velocity():
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    out = euler_sample(velocity, x_T, steps=7)
    assert torch.allclose(out, POINT.expand_as(out), atol=1e-5)


def test_ddim_eta0_is_deterministic_and_ddpm_is_seeded():
    s = cosine_schedule(50)
    torch.manual_seed(0)
    w = torch.randn(3, 3, 1, 1) * 0.3

    def model(x, t, y=None):
        return torch.nn.functional.conv2d(x, w) * (t.float().reshape(-1, 1, 1, 1) / 50)

    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    a = ddim_sample(model, s, x_T, steps=10, generator=torch.Generator().manual_seed(3))
    b = ddim_sample(model, s, x_T, steps=10, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    c = ddpm_sample(model, s, x_T, generator=torch.Generator().manual_seed(5))
    d = ddpm_sample(model, s, x_T, generator=torch.Generator().manual_seed(5))
    e = ddpm_sample(model, s, x_T, generator=torch.Generator().manual_seed(6))
    assert torch.equal(c, d) and not torch.equal(c, e)


def test_timestep_spacings():
    assert ddim_timesteps(1000, 4, "trailing") == [999, 749, 499, 249]
    assert ddim_timesteps(1000, 4, "leading") == [750, 500, 250, 0]
    assert ddim_timesteps(1000, 3, "linspace") == [999, 500, 0]
    with pytest.raises(ValueError, match="spacing"):
        ddim_timesteps(1000, 4, "even")
    with pytest.raises(ValueError, match="steps must lie"):
        ddim_timesteps(10, 11)
    ts = flow_timesteps(4, shift=3.0)
    assert ts[0] == 1.0 and ts[-1] == 0.0 and ts[2] > 0.5


def test_trajectory_and_generate_shapes():
    from dit_mini.models.dit import DiT, dit_config

    model = DiT(dit_config("nano", hidden_size=48, depth=1, num_heads=2, input_size=16))
    g = torch.Generator().manual_seed(0)
    x, path = generate(
        model,
        DiffusionConfig(num_timesteps=20),
        y=torch.arange(3),
        steps=5,
        generator=g,
        trajectory=True,
    )
    assert x.shape == (3, 3, 16, 16) and len(path) == 6
    x = generate(
        model,
        DiffusionConfig(objective="flow"),
        n=2,
        steps=3,
        cfg_scale=2.0,
        y=torch.tensor([1, 2]),
        generator=g,
    )
    assert x.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="does not fit objective"):
        generate(model, DiffusionConfig(), n=1, sampler="euler")
    with pytest.raises(ValueError, match="how many samples"):
        generate(model, DiffusionConfig())
