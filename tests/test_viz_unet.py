"""Pictures and measurements of notebook 04 (cartographer): each one shows what it claims."""

import math

import numpy as np
import pytest
import torch
from matplotlib.patches import FancyArrowPatch, Rectangle
from torch import nn

from dit_mini.course import viz_unet
from dit_mini.diffusion.schedules import cosine_schedule
from dit_mini.models.unet import UNet, unet_config
from dit_mini.viz import to_uint8


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    model = UNet(unet_config("unet-tiny", base_channels=8, num_classes=0)).eval()
    for p in model.conv_out.parameters():  # make the output depend on the weights
        nn.init.normal_(p, std=0.1)
    return model


@pytest.fixture(scope="module")
def features(unet):
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([10, 500])
    with torch.no_grad():
        return unet.feature_maps(x, t), t


def test_psnr_of_a_constant_error():
    ref = torch.zeros(2, 3, 4, 4)
    x = ref + torch.tensor([0.2, 0.02]).reshape(2, 1, 1, 1)
    assert torch.allclose(viz_unet.psnr(x, ref), torch.tensor([20.0, 40.0], dtype=torch.double))


def test_denoise_with_the_true_noise_recovers_the_clean_images():
    schedule = cosine_schedule(1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 3, 8, 8, generator=g) * 1.8 - 0.9
    eps = torch.randn(x0.shape, generator=g)
    oracle = lambda x_t, t, y: eps  # noqa: E731  predicts exactly the noise that was added
    x_t, x0_hat = viz_unet.denoise(oracle, schedule, x0, eps, 400)
    a = schedule.alpha_bar[400]
    assert torch.allclose(x_t, a.sqrt() * x0 + (1 - a).sqrt() * eps, atol=1e-5)
    assert torch.allclose(x0_hat, x0, atol=1e-4)
    _, zero = viz_unet.denoise(lambda x_t, t, y: torch.zeros_like(x_t), schedule, x0, eps, 400)
    assert not torch.allclose(zero, x0, atol=1e-2)


def test_detail_split_is_an_exact_orthogonal_split():
    g = torch.Generator().manual_seed(0)
    x, ref = torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 3, 8, 8, generator=g)
    parts = viz_unet.detail_split(x, ref, factor=4)
    assert math.isclose(parts["coarse"] + parts["fine"], parts["total"], rel_tol=1e-9)
    assert math.isclose(parts["total"], float(((x - ref) ** 2).mean()), rel_tol=1e-5)
    blocks = torch.randn(1, 3, 2, 2, generator=g).repeat_interleave(4, -1).repeat_interleave(4, -2)
    only_coarse = viz_unet.detail_split(ref[:1] + blocks, ref[:1], factor=4)
    assert only_coarse["fine"] < 1e-12 < only_coarse["coarse"]
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None]) % 2 * 2.0 - 1  # zero block mean
    only_fine = viz_unet.detail_split(ref[:1] + checker, ref[:1], factor=4)
    assert only_fine["coarse"] < 1e-12 and math.isclose(only_fine["fine"], 1.0)
    with pytest.raises(ValueError, match="factor 3"):
        viz_unet.detail_split(x, ref, factor=3)


def measured_field(layers) -> int:
    """Receptive field measured with autograd on a plain conv stack (no norms to spread it)."""
    convs = [nn.Conv2d(1, 1, k, stride=s, padding=k // 2, bias=False) for k, s in layers]
    for conv in convs:
        nn.init.constant_(conv.weight, 1.0)
    x = torch.zeros(1, 1, 129, 129, requires_grad=True)
    out = nn.Sequential(*convs)(x)
    out[0, 0, out.shape[-2] // 2, out.shape[-1] // 2].backward()
    columns = x.grad[0, 0].abs().sum(0).nonzero()
    return int(columns.max() - columns.min() + 1)


def test_receptive_field_matches_autograd():
    config = unet_config("unet-tiny")
    paths = viz_unet.contraction_layers(config)
    assert list(paths) == ["down0", "down1", "down2"]
    fields = {name: viz_unet.receptive_field(layers) for name, layers in paths.items()}
    assert fields == {"down0": 7, "down1": 17, "down2": 37}
    for layers in [*paths.values(), [(7, 2), (3, 2), (3, 1)], [(5, 1)]]:
        assert viz_unet.receptive_field(layers) == measured_field(layers)
    two_blocks = viz_unet.contraction_layers(unet_config("unet-small"))
    assert len(two_blocks["down0"]) == 1 + 4


def test_expansion_step_reproduces_the_recorded_maps(unet, features):
    maps, t = features
    for level in range(3):
        assert torch.allclose(viz_unet.expansion_step(unet, maps, level, t), maps[f"up{level}"])
    swapped = viz_unet.expansion_step(unet, maps, 1, t, merge=lambda a, b: torch.cat([b, a], 1))
    assert swapped.shape == maps["up1"].shape and not torch.allclose(swapped, maps["up1"])
    with pytest.raises(ValueError, match="levels 0..2"):
        viz_unet.expansion_step(unet, maps, 3, t)


def test_unet_diagram_draws_one_skip_per_level():
    def dashed(fig):
        patches = fig.axes[0].patches
        return [p for p in patches if isinstance(p, FancyArrowPatch) and p.get_linestyle() != "-"]

    config = unet_config("unet-tiny")
    assert len(dashed(viz_unet.unet_diagram(config))) == 3
    no_skips = viz_unet.unet_diagram(unet_config("unet-tiny", skip_connections=False))
    assert dashed(no_skips) == []
    labels = [t.get_text() for t in viz_unet.unet_diagram(config).axes[0].texts]
    assert "down2\n8x8x64" in labels and "up0\n32x32x32" in labels and "mid\n8x8x64" in labels


def test_feature_views_show_the_chosen_channels(features):
    maps, _ = features
    one = {name: fmap[:1] for name, fmap in maps.items()}
    fig = viz_unet.feature_levels(one, channels=3)
    rows = [name for name in one if name != "out"]
    assert len([ax for ax in fig.axes if ax.images]) == 3 * len(rows)
    C = one["down1"].shape[1]
    view = viz_unet.feature_map_view(one, "down1", C + 2, torch.zeros(3, 16, 16))
    big = view.axes[1].images[0].get_array()
    np.testing.assert_allclose(big, one["down1"][0, 2].numpy(), rtol=1e-6)  # channel wraps
    assert view.axes[2].get_title() == "ch 3" and len(view.axes) == 10
    with pytest.raises(ValueError, match="unknown level"):
        viz_unet.feature_map_view(one, "down9", 0, torch.zeros(3, 16, 16))


def test_denoise_view_rows_and_captions():
    schedule = cosine_schedule(1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    eps = torch.randn(x0.shape, generator=g)
    models = {"oracle": lambda x_t, t, y: eps, "lazy": lambda x_t, t, y: torch.zeros_like(x_t)}
    fig = viz_unet.denoise_view(models, schedule, x0, eps, 300)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 4 * 2
    assert [axes[2 * r].get_ylabel() for r in range(4)] == ["clean x0", "noisy x_t", *models]
    np.testing.assert_array_equal(axes[0].images[0].get_array(), to_uint8(x0)[0])
    _, lazy = viz_unet.denoise(models["lazy"], schedule, x0, eps, 300)
    assert axes[6].get_xlabel() == f"{float(viz_unet.psnr(lazy, x0)[0]):.1f} dB"
    assert float(axes[4].get_xlabel().split()[0]) > 60  # the oracle is (nearly) exact


def test_psnr_curves_plot_the_gain_over_the_input():
    fig = viz_unet.psnr_curves([10, 20], {"a": [30.0, 25.0]}, noisy=[20.0, 10.0])
    left, right = fig.axes
    assert list(right.lines[0].get_ydata()) == [10.0, 15.0]
    assert list(left.lines[1].get_ydata()) == [30.0, 25.0]


def test_receptive_field_view_draws_centred_squares():
    fig = viz_unet.receptive_field_view(torch.zeros(3, 32, 32), {"down0": 7, "down2": 37})
    squares = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    assert [(s.get_width(), s.get_x()) for s in squares] == [(7, 12.5), (37, -2.5)]
