"""The probes of notebooks 03-04 (clearing the fog, cartographer): the eps and flow-matching
losses on the shipped tiny DiT, DDIM and DDPM steps, trailing timesteps, the Euler step and the
marginal velocity; the U-Net's contraction shapes, skip merge and receptive field.

One `entry` per graded call (see `dit_mini.course.grading.probe`); the functions above the
table are the references the package has no single function for. `flow_loss` and `loss_cases`
serve notebook 14 too. Assembled by `dit_mini.course.grading.probes`.
"""

from __future__ import annotations

import torch

from .codec import Config, Pretrained
from .probe import Probe, entry, integer, randn, ref

__all__ = ["PROBES", "flow_loss", "loss_cases"]


def _linear_alpha_bar():
    return ref("dit_mini.diffusion.schedules:linear_schedule")()(1000).alpha_bar


def _eps_loss(model, x0, y, t, eps, alpha_bar):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.losses import DiffusionConfig, make_loss

    config = DiffusionConfig(objective="eps", schedule="linear", num_timesteps=len(alpha_bar))
    return make_loss(config)(model, x0, y, t=t, eps=eps)


def _ddim_jump(eps, x, t, t_prev, alpha_bar):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.samplers import ddim_step
    from ...diffusion.schedules import NoiseSchedule  # deferred, as above

    before = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
    schedule = NoiseSchedule(1 - alpha_bar / before)
    return ddim_step(eps, x, t, t_prev, schedule, "eps", eta=0.0, clip_x0=False)[0]


def _posterior(x0, x_t, t, betas):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.samplers import ddpm_posterior
    from ...diffusion.schedules import NoiseSchedule  # deferred, as above

    return ddpm_posterior(x0, x_t, t, NoiseSchedule(betas))


def _posterior_cases(g) -> list[tuple]:
    T = integer(g, 50, 1000)
    betas = torch.linspace(1e-4, 0.02 + 0.03 * float(torch.rand(1, generator=g)), T).double()
    x0, x_t = randn(g, 3, 3, 8, 8), randn(g, 3, 3, 8, 8)
    return [(x0, x_t, t, betas) for t in (T - 1, integer(g, 1, T - 1), 1, 0)]


def flow_loss(model, x0, y, t, eps):
    """The package's flow-matching loss of `model` at times `t` with noise `eps`."""
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.losses import make_loss
    from ..new_game_plus import FLOW  # deferred, as above

    return make_loss(FLOW)(model, x0, y, t=t, eps=eps)


def _euler_step(model, x, t, t_next, y):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.samplers import FLOW_TIME_SCALE

    return x + (t_next - t) * model(x, torch.full((x.shape[0],), t * FLOW_TIME_SCALE), y)


def _unet_cases(g) -> list[tuple]:
    """(config, size): U-Nets of 2 to 4 levels of drawn widths, sizes that every level halves."""
    cases = []
    for _ in range(3):
        levels = integer(g, 2, 5)
        mults = tuple(integer(g, 1, 5) for _ in range(levels))
        overrides = {"base_channels": 8 * integer(g, 1, 5), "channel_mults": mults}
        overrides.update(attention=False, num_classes=0, num_res_blocks=1)
        preset = ("unet-nano", "unet-tiny", "unet-small")[integer(g, 0, 3)]
        size = 2 ** (levels - 1) * integer(g, 1, 9)
        cases.append((Config(preset, overrides, family="unet"), size))
    return cases


@torch.no_grad()
def _measured_shapes(config, size):
    """(C, H, W) of 'down{i}' for every level, read off a package U-Net's feature maps."""
    # deferred: imported where needed, not at the grader's start
    from ...models.unet import UNet

    # two images: a group norm needs more than one value per group, and a level may be 1 x 1
    x = torch.zeros(2, config.in_channels, size, size)
    maps = UNet(config).eval().feature_maps(x, torch.zeros(2))
    return [tuple(maps[f"down{i}"].shape[1:]) for i in range(len(config.channel_mults))]


def _skip_cases(g) -> list[tuple]:
    """(from_below, skip) pairs: channel counts that differ, then equal (the order shows)."""
    b, h, w = integer(g, 1, 4), 2 * integer(g, 1, 9), 2 * integer(g, 1, 9)
    below, skip = integer(g, 1, 33), integer(g, 1, 33)
    return [
        (randn(g, b, below, h, w), randn(g, b, skip + (skip == below), h, w)),
        (randn(g, b, below, h, w), randn(g, b, below, h, w)),
    ]


def _concatenated(from_below, skip):
    """The package U-Net's merge: the map from below, then the skip, along channels."""
    return torch.cat([from_below, skip], dim=1)


def _field_cases(g) -> list[tuple]:
    return [
        ([(2 * integer(g, 0, 3) + 1, integer(g, 1, 3)) for _ in range(integer(g, 1, 7))],)
        for _ in range(3)
    ]


def loss_cases(g) -> list[tuple]:
    """(model, x0, y, t, eps) for a loss on the shipped tiny DiT."""
    return [
        (
            Pretrained("dit-tiny"),
            randn(g, 3, 3, 32, 32),
            torch.randint(0, 10, (3,), generator=g),
            torch.rand(3, generator=g),
            randn(g, 3, 3, 32, 32),
        )
    ]


PROBES: list[Probe] = [
    # 03 clearing the fog
    entry(
        "03.eps_loss",
        "eps_prediction_loss",
        lambda g: [
            (
                Pretrained("dit-tiny"),
                randn(g, 3, 3, 32, 32),
                torch.randint(0, 10, (3,), generator=g),
                torch.randint(0, 1000, (3,), generator=g),
                randn(g, 3, 3, 32, 32),
                _linear_alpha_bar(),
            )
        ],
        _eps_loss,
        harness="call_no_grad",
    ),
    entry(
        "03.ddim_jump",
        "ddim_jump",
        lambda g: [
            (randn(g, 2, 3, 8, 8), randn(g, 2, 3, 8, 8), t, tp, _linear_alpha_bar())
            for t, tp in [(integer(g, 500, 1000), integer(g, 100, 500)), (integer(g, 1, 60), -1)]
        ],
        _ddim_jump,
    ),
    entry(
        "03.ddpm_posterior",
        "posterior",
        _posterior_cases,
        _posterior,
        package=("dit_mini.diffusion.samplers:ddpm_posterior",),
        atol=1e-4,
    ),
    entry(
        "03.ddim_timesteps",
        "trailing_timesteps",
        lambda g: [(1000, integer(g, 2, 60)), (integer(g, 20, 200), 7), (50, 50)],
        "dit_mini.diffusion.samplers:ddim_timesteps",
        own=True,
    ),
    entry("03.flow_loss", "flow_matching_loss", loss_cases, flow_loss, harness="call_no_grad"),
    entry(
        "03.euler_step",
        "euler_step",
        lambda g: [
            (
                Pretrained("dit-tiny"),
                randn(g, 2, 3, 32, 32),
                t,
                t - 0.25,
                torch.randint(0, 10, (2,), generator=g),
            )
            for t in (1.0, 0.25 + 0.5 * float(torch.rand(1, generator=g)))
        ],
        _euler_step,
        harness="call_no_grad",
        atol=1e-4,
    ),
    entry(
        "03.marginal_velocity",
        "my_marginal_velocity",
        lambda g: [
            (randn(g, 32, 2), t, randn(g, integer(g, 20, 200), 2))
            for t in (1.0, 0.05 + 0.9 * float(torch.rand(1, generator=g)), 0.05)
        ],
        "dit_mini.course.derivations:marginal_velocity",
        own=True,
        atol=1e-4,
    ),
    # 04 cartographer
    entry("04.contraction_shapes", "contraction_shapes", _unet_cases, _measured_shapes),
    entry("04.merge_skip", "merge_skip", _skip_cases, _concatenated),
    entry(
        "04.receptive_field",
        "receptive_field_of",
        _field_cases,
        "dit_mini.course.viz_unet:receptive_field",
        own=True,
    ),
]
