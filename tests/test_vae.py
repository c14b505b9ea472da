"""Tests for dit_mini.models.vae: shapes, the ELBO's math, files and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from dit_mini.models.latents import encode_latents
from dit_mini.models.vae import (
    VAE,
    VAE_PRESETS,
    kl_divergence,
    vae_config,
    vae_loss,
)
from dit_mini.registry import load_model, save_model
from dit_mini.storage import CheckpointError


def _images(n=16, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1


@pytest.mark.parametrize("name", sorted(VAE_PRESETS))
def test_presets_map_32x32x3_to_8x8x4_and_back(name):
    torch.manual_seed(0)
    vae = VAE(vae_config(name))
    x = _images(2)
    mean, logvar = vae.encode(x)
    assert mean.shape == logvar.shape == (2, 4, 8, 8) == (2, *vae.config.latent_shape)
    assert vae.decode(mean).shape == x.shape
    recon, m, lv = vae(x, torch.Generator().manual_seed(0))
    assert recon.shape == x.shape and torch.equal(m, mean) and torch.equal(lv, logvar)


def test_kl_matches_torch_distributions():
    from torch.distributions import Normal
    from torch.distributions import kl_divergence as reference

    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    expected = reference(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    torch.testing.assert_close(kl_divergence(mean, logvar), expected)
    assert torch.count_nonzero(kl_divergence(torch.zeros(3), torch.zeros(3))) == 0  # q = prior


def test_reparameterisation_is_exact_and_differentiable():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(3, 4, 2, 2, generator=g).requires_grad_()
    logvar = torch.randn(3, 4, 2, 2, generator=g).requires_grad_()
    z = VAE.reparameterize(mean, logvar, torch.Generator().manual_seed(7))
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(z, mean + (0.5 * logvar).exp() * eps)
    z.sum().backward()
    # dz/dmean = 1 and dz/dlogvar = exp(logvar / 2) * eps / 2: the noise sits off the gradient path.
    torch.testing.assert_close(mean.grad, torch.ones_like(mean))
    torch.testing.assert_close(logvar.grad, 0.5 * (0.5 * logvar.detach()).exp() * eps)


def test_reparameterised_draws_have_the_posterior_moments():
    mean, logvar = torch.full((200_000,), 1.5), torch.full((200_000,), math.log(0.25))
    z = VAE.reparameterize(mean, logvar, torch.Generator().manual_seed(0))
    assert abs(float(z.mean()) - 1.5) < 0.01 and abs(float(z.std()) - 0.5) < 0.01


def test_loss_is_recon_plus_weighted_kl_and_seeded(small_vae):
    torch.manual_seed(0)
    vae, x = small_vae(kl_weight=0.25), _images(4)
    loss, parts = vae_loss(vae, x, torch.Generator().manual_seed(3))
    assert math.isclose(float(loss.detach()), parts["recon"] + 0.25 * parts["kl"], rel_tol=1e-5)
    again, _ = vae_loss(vae, x, torch.Generator().manual_seed(3))
    other, _ = vae_loss(vae, x, torch.Generator().manual_seed(4))
    assert torch.equal(loss, again) and not torch.equal(loss, other)


def test_save_and_load_round_trip(tmp_path, small_vae):
    torch.manual_seed(0)
    vae = small_vae(kl_weight=0.01)
    vae.set_latent_scale(0.37)
    path = save_model(vae, tmp_path / "vae.safetensors", extra={"train": {"steps": 3}})
    loaded = load_model(path)
    assert loaded.config == vae.config and float(loaded.latent_scale) == pytest.approx(0.37)
    for key, value in vae.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    x = _images(2)
    torch.testing.assert_close(encode_latents(loaded, x), encode_latents(vae, x), rtol=0, atol=0)


def test_load_refuses_missing_files(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_model(tmp_path / "vae.pt")
    with pytest.raises(CheckpointError, match="no model file at"):
        load_model(tmp_path / "missing.safetensors")


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(base_channels=12, norm_groups=8), "norm_groups"),
        (dict(input_size=30), "divisible by the downsample factor 4"),
        (dict(channel_mults=()), "channel_mults"),
        (dict(kl_weight=-1.0), "kl_weight"),
        (dict(recon_loss="l2"), "recon_loss"),
        (dict(latent_channels=0), "latent_channels"),
    ],
)
def test_bad_configs_are_refused(overrides, match):
    with pytest.raises(ValueError, match=match):
        vae_config("vae-tiny", **overrides)


def test_bad_inputs_are_refused(small_vae):
    vae = small_vae()
    with pytest.raises(ValueError, match="did you mean 'vae-tiny'"):
        vae_config("vae-tiyn")
    with pytest.raises(ValueError, match="unknown VAEConfig field"):
        vae_config("vae-tiny", latent_size=8)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        vae.encode(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="divisible by 4"):
        vae.encode(torch.zeros(1, 3, 30, 30))
    with pytest.raises(ValueError, match=r"\(B, 4, H, W\)"):
        vae.decode(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="positive finite"):
        vae.set_latent_scale(0.0)
