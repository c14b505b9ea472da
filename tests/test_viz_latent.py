"""Notebook 10's latent-space pictures show exactly the latents, paths and images they are given."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from dit_mini.course import viz_latent
from dit_mini.models.latents import decode_latents, interpolate_latents, latent_map_2d
from dit_mini.models.vae import VAE, vae_config
from dit_mini.viz import to_uint8

CLASSES = ("a", "b", "c")


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return VAE(vae_config("vae-nano", input_size=16)).eval()


@pytest.fixture(scope="module")
def data(vae):
    g = torch.Generator().manual_seed(1)
    images = torch.rand(30, 3, 16, 16, generator=g) * 2 - 1
    labels = torch.arange(30) % 3
    latent_map = latent_map_2d(vae, type("D", (), {"images": images, "labels": labels})(), n=30)
    z = torch.randn(2, 4, 4, 4, generator=g)
    return images, labels, latent_map, z


def test_rms_is_the_norm_over_the_root_of_the_size():
    z = torch.randn(3, 4, 2, 2, generator=torch.Generator().manual_seed(2))
    expected = z.reshape(3, -1).norm(dim=1) / math.sqrt(16)
    assert torch.allclose(viz_latent.rms(z), expected)
    assert torch.allclose(viz_latent.rms(torch.ones(1, 4, 8, 8)), torch.ones(1))


def test_latent_map_figure_places_every_point_and_the_path(data):
    _, labels, latent_map, z = data
    path = interpolate_latents(z[0], z[1], 5)
    fig = viz_latent.latent_map_figure(latent_map, CLASSES, {"linear": path})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    assert len(ax.collections) == 3 and len(points) == 30
    for k, collection in enumerate(ax.collections):  # one colour per class, the right points
        np.testing.assert_allclose(collection.get_offsets(), latent_map.coords[labels == k])
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xydata(), latent_map.project(path).numpy(), rtol=1e-6)
    assert "PC 1" in ax.get_xlabel()
    names = [t.get_text() for t in ax.get_legend().get_texts()]
    assert names[:3] == list(CLASSES) and "linear path" in names


def test_latent_map_can_be_coloured_by_another_grouping(data):
    _, _, latent_map, _ = data
    groups = (torch.arange(30) < 10).long()  # the first 10 points form group 1
    fig = viz_latent.latent_map_figure(latent_map, ("late", "early"), labels=groups)
    sizes = [len(c.get_offsets()) for c in fig.axes[0].collections]
    assert sizes == [20, 10]
    with pytest.raises(ValueError, match="labels"):
        viz_latent.latent_map_figure(latent_map, CLASSES, labels=torch.zeros(5, dtype=torch.long))


def test_interpolation_frames_start_and_end_at_the_two_latents(vae, data):
    _, _, _, z = data
    frames = viz_latent.interpolation_frames(vae, z[0], z[1], 4, "spherical")
    assert frames.shape == (4, 3, 16, 16)
    with torch.no_grad():
        ends = decode_latents(vae, z).clamp(-1, 1)
    torch.testing.assert_close(frames[[0, -1]], ends, atol=1e-5, rtol=1e-5)


def test_interpolation_view_shows_the_decoded_point_and_the_cross_fade(vae, data):
    images, _, latent_map, z = data
    x0, x1 = images[0], images[1]
    fig = viz_latent.interpolation_view(
        vae, x0, x1, z[0], z[1], 0.5, "linear", latent_map, CLASSES, 5
    )
    decoded_ax, blend_ax = [ax for ax in fig.axes if ax.images]
    middle = interpolate_latents(z[0], z[1], 5, "linear")[2:3]
    with torch.no_grad():
        expected = to_uint8(decode_latents(vae, middle).clamp(-1, 1))[0]
    np.testing.assert_array_equal(decoded_ax.images[0].get_array(), expected)
    blend = to_uint8((0.5 * x0 + 0.5 * x1)[None])[0]
    np.testing.assert_array_equal(blend_ax.images[0].get_array(), blend)
    rms_ax = fig.axes[-1]
    curves = {line.get_label(): line.get_ydata() for line in rms_ax.get_lines()}
    for mode in ("linear", "spherical"):
        path = interpolate_latents(z[0], z[1], 5, mode)
        np.testing.assert_allclose(curves[mode], viz_latent.rms(path).numpy(), rtol=1e-6)
    # the star on the map sits at the chosen step of the path
    star = [line for line in fig.axes[0].get_lines() if line.get_marker() == "*"][0]
    np.testing.assert_allclose(star.get_xydata(), latent_map.project(middle).numpy(), rtol=1e-6)


def test_interpolation_view_rejects_bad_controls(vae, data):
    images, _, latent_map, z = data
    for t, mode in ((0.5, "curved"), (1.5, "linear")):
        with pytest.raises(ValueError, match="mode"):
            viz_latent.interpolation_view(
                vae, images[0], images[1], z[0], z[1], t, mode, latent_map, CLASSES
            )


def test_kl_tradeoff_figure_joins_the_points_in_weight_order():
    results = [
        {"kl_weight": 1.0, "kl": 0.1, "psnr": 14.0},
        {"kl_weight": 0.001, "kl": 2.4, "psnr": 22.6},
        {"kl_weight": 0.1, "kl": 0.3, "psnr": 20.0},
    ]
    ax = viz_latent.kl_tradeoff_figure(results).axes[0]
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), [2.4, 0.3, 0.1])
    np.testing.assert_allclose(line.get_ydata(), [22.6, 20.0, 14.0])
    assert [t.get_text() for t in ax.texts] == ["weight 0.001", "weight 0.1", "weight 1"]
    with pytest.raises(ValueError, match="at least one"):
        viz_latent.kl_tradeoff_figure([])
