"""Tests for dit_mini.models.unet: the model contract, the zero init, conditioning, skips,
errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dit_mini.models.unet import UNET_PRESETS, UNet, UNetConfig, unet_config


def _perturbed(config: UNetConfig, seed: int = 0) -> UNet:
    """A U-Net whose zero-initialised output conv is given random weights, so outputs move."""
    torch.manual_seed(seed)
    model = UNet(config)
    g = torch.Generator().manual_seed(seed)
    w = model.conv_out.weight
    model.conv_out.weight.data = 0.1 * torch.randn(w.shape, generator=g)
    return model


def _inputs(batch=2, channels=3, size=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, size, size, generator=g)
    t = torch.randint(0, 1000, (batch,), generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    return x, t, y


@pytest.mark.parametrize("name", sorted(UNET_PRESETS))
def test_presets_honour_the_model_contract(name):
    model = UNet(unet_config(name))
    x, t, y = _inputs()
    assert model(x, t, y).shape == x.shape
    assert model(x, t, None).shape == x.shape  # None is the null class
    assert (model.in_channels, model.out_channels, model.null_class) == (3, 3, 10)


def test_learn_sigma_doubles_channels_and_float_time_works():
    model = UNet(unet_config("unet-nano", in_channels=4, learn_sigma=True))
    x = torch.randn(3, 4, 32, 32)
    out = model(x, torch.tensor([0.5, 10.25, 999.0]), torch.tensor([0, 1, 9]))
    assert out.shape == (3, 8, 32, 32) and model.config.out_channels == 8


def test_output_is_exactly_zero_at_init():
    model = UNet(unet_config("unet-tiny"))
    x, t, y = _inputs()
    assert torch.count_nonzero(model(x, t, y)) == 0


def test_output_depends_on_time_and_label():
    model = _perturbed(unet_config("unet-nano")).eval()
    x, t, y = _inputs()
    with torch.no_grad():
        base = model(x, t, y)
        assert not torch.allclose(base, model(x, t + 100, y))
        assert not torch.allclose(base, model(x, t, (y + 1) % 10))
        # The null class differs from every real class.
        assert not torch.allclose(base, model(x, t, None))


def test_fully_convolutional_on_other_sizes():
    model = _perturbed(unet_config("unet-tiny"))
    x, t, y = _inputs(size=16)
    assert model(x, t, y).shape == (2, 3, 16, 16)
    x = torch.randn(2, 3, 16, 24)
    assert model(x, t, y).shape == (2, 3, 16, 24)


def test_feature_maps_levels_and_output():
    config = unet_config("unet-tiny")
    model = _perturbed(config).eval()
    x, t, y = _inputs()
    with torch.no_grad():
        maps = model.feature_maps(x, t, y)
        out = model(x, t, y)
    assert list(maps) == ["down0", "down1", "down2", "mid", "up2", "up1", "up0", "out"]
    for i, width in enumerate(config.widths):
        for side in ("down", "up"):
            assert maps[f"{side}{i}"].shape == (2, width, 32 // 2**i, 32 // 2**i)
    assert torch.equal(maps["out"], out)


@pytest.mark.parametrize("skips", [True, False])
def test_skips_are_the_only_path_around_the_bottleneck(skips):
    """Zero the bottleneck: with skips the input still reaches the output, without it cannot."""
    model = _perturbed(unet_config("unet-nano", skip_connections=skips)).eval()
    model.mid2.register_forward_hook(lambda module, args, out: torch.zeros_like(out))
    x1, t, y = _inputs(seed=1)
    x2, _, _ = _inputs(seed=2)
    with torch.no_grad():
        same = torch.allclose(model(x1, t, y), model(x2, t, y))
    assert same is not skips


def test_no_skips_means_fewer_parameters():
    with_skips = UNet(unet_config("unet-tiny"))
    without = UNet(unet_config("unet-tiny", skip_connections=False))
    n = [sum(p.numel() for p in m.parameters()) for m in (with_skips, without)]
    assert n[1] < n[0]
    assert without.up[0][0].conv1.in_channels == with_skips.config.widths[1]
    assert with_skips.up[0][0].conv1.in_channels == sum(with_skips.config.widths[:2])


def test_attention_block_is_optional():
    assert isinstance(UNet(unet_config("unet-nano", attention=False)).mid_attn, nn.Identity)
    assert not isinstance(UNet(unet_config("unet-nano")).mid_attn, nn.Identity)


def test_unconditional_and_no_null_class():
    model = UNet(unet_config("unet-nano", num_classes=0))
    x, t, _ = _inputs()
    assert model(x, t, None).shape == x.shape and model.null_class is None
    strict = UNet(unet_config("unet-nano", class_dropout_prob=0.0))
    assert strict.null_class is None
    with pytest.raises(ValueError, match="no null class"):
        strict(x, t, None)


def test_learns_to_denoise_a_fixed_batch():
    """A few Adam steps on one batch must cut the eps-prediction loss (regression on seed 0)."""
    torch.manual_seed(0)
    model = UNet(unet_config("unet-nano", base_channels=8, input_size=16))
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 16, 16, generator=g) * 2 - 1
    eps = torch.randn(x0.shape, generator=g)
    t = torch.full((4,), 500)
    x_t = 0.7 * x0 + 0.7 * eps
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only contend with other tests
    try:
        for _ in range(20):
            loss = (model(x_t, t, None) - eps).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    assert losses[0] == pytest.approx(eps.pow(2).mean().item(), rel=1e-6)  # zero output at init
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize(
    "shape, match",
    [
        ((2, 1, 32, 32), "expects 3 input channels"),
        ((2, 3, 30, 30), "divisible by 4"),
        ((3, 32, 32), "must be \\(B, C, H, W\\)"),
    ],
)
def test_bad_images_are_named(shape, match):
    model = UNet(unet_config("unet-tiny"))
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(shape), torch.zeros(2), None)


def test_bad_time_or_label_shapes():
    model = UNet(unet_config("unet-nano"))
    x, t, y = _inputs()
    with pytest.raises(ValueError, match="t must be"):
        model(x, torch.zeros(3), y)
    with pytest.raises(ValueError, match="y must be"):
        model(x, t, torch.zeros(2, 1, dtype=torch.long))


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(base_channels=12), "12 .* not divisible by norm_groups 8"),
        (dict(input_size=36, channel_mults=(1, 2, 2, 2)), "input_size 36 .* divisible by .* 8"),
        (dict(num_heads=3), "num_heads 3 must divide"),
        (dict(channel_mults=()), "channel_mults"),
        (dict(num_res_blocks=0), "num_res_blocks must be a positive"),
        (dict(class_dropout_prob=1.0), "class_dropout_prob"),
        (dict(num_classes=-1), "num_classes"),
    ],
)
def test_config_validation(overrides, match):
    with pytest.raises(ValueError, match=match):
        unet_config("unet-tiny", **overrides)


def test_config_is_frozen_and_hashable_with_list_mults():
    config = UNetConfig(channel_mults=[1, 2])
    assert config.channel_mults == (1, 2) and hash(config) == hash(UNetConfig(channel_mults=(1, 2)))
    with pytest.raises(AttributeError):
        config.base_channels = 64


def test_unknown_preset_and_field():
    with pytest.raises(ValueError, match="did you mean 'unet-tiny'"):
        unet_config("unet-tiney")
    with pytest.raises(ValueError, match="unknown UNetConfig field"):
        unet_config("unet-tiny", width=3)
