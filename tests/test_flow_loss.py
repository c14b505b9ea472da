"""The flow-matching loss against a float64 reference written out by hand: the straight path
x_t = (1 - t) x0 + t eps, the velocity target eps - x0, and the time scale 1000 of the
timestep embedding (the objective of the shipped dit-tiny)."""

import torch

from dit_mini.diffusion.losses import DiffusionConfig, make_loss
from dit_mini.diffusion.samplers import FLOW_TIME_SCALE, euler_sample
from dit_mini.models.dit import DiT, dit_config


class TimeAware(torch.nn.Module):
    """A velocity model whose output depends on x_t and, non-linearly, on the time it is given;
    it records the times it saw."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x_t, t, y=None):
        self.seen.append(t.detach().clone())
        return 0.3 * x_t + torch.sin(t / 250.0).reshape(-1, 1, 1, 1).to(x_t)


def reference_flow_loss(model, x0, t, eps):
    x0, t, eps = x0.double(), t.double(), eps.double()
    tb = t.reshape(-1, 1, 1, 1)
    x_t = (1 - tb) * x0 + tb * eps
    pred = model(x_t, 1000.0 * t)
    return ((pred - (eps - x0)) ** 2).mean()


def test_flow_loss_matches_the_float64_reference():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    t = torch.tensor([0.05, 0.3, 0.6, 0.95])
    loss_fn = make_loss(DiffusionConfig(objective="flow", time_sampling="logit_normal"))
    model = TimeAware()
    loss = loss_fn(model, x0.double(), t=t.double(), eps=eps.double())
    assert FLOW_TIME_SCALE == 1000.0
    torch.testing.assert_close(model.seen[0], 1000.0 * t.double())  # t in [0, 1] -> 0..1000
    expected = reference_flow_loss(TimeAware(), x0, t, eps)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=0)
    # The two classic mistakes give another number: the target x0 - eps, and t not scaled.
    flipped = ((model(*_path(x0, t, eps)) - (x0 - eps).double()) ** 2).mean()
    unscaled = ((TimeAware()(_path(x0, t, eps)[0], t.double()) - (eps - x0).double()) ** 2).mean()
    assert abs(float(flipped - expected)) > 1e-3 and abs(float(unscaled - expected)) > 1e-3


def _path(x0, t, eps):
    tb = t.double().reshape(-1, 1, 1, 1)
    return (1 - tb) * x0.double() + tb * eps.double(), 1000.0 * t.double()


def test_a_dit_in_float64_gets_the_reference_loss_and_its_euler_sampler_agrees():
    torch.manual_seed(0)
    model = DiT(dit_config("nano", hidden_size=32, depth=1, num_heads=2, input_size=8)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # leave adaLN-Zero's all-zero start
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(3, 3, 8, 8, generator=g).double(), torch.randn(3, 3, 8, 8, generator=g)
    t, y = torch.tensor([0.2, 0.5, 0.9]).double(), torch.tensor([1, 2, 3])
    loss = make_loss(DiffusionConfig(objective="flow"))(model, x0, y, t=t, eps=eps.double())
    expected = reference_flow_loss(lambda x, s: model(x, s, y), x0, t, eps)
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=0)
    # One Euler step from t = 1 moves x by -v(x, 1000): the sampler uses the same time scale.
    x1 = eps.double()
    with torch.no_grad():
        one = euler_sample(model, x1, y, steps=1)
        v = model(x1, torch.full((3,), 1000.0, dtype=torch.float64), y)
    torch.testing.assert_close(one, x1 - v, rtol=1e-10, atol=1e-12)
