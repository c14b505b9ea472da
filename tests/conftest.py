"""Fixtures shared by the VAE tests (test_vae, test_latents, test_vae_train)."""

import pytest


@pytest.fixture
def small_vae():
    """A factory of very small VAEs (8, 16, 16 channels) that train in well under a second per
    step: small_vae(kl_weight=0.01) -> VAE, randomly initialised from torch's global RNG."""
    from dit_mini.models.vae import VAE, vae_config

    return lambda **overrides: VAE(
        vae_config("vae-nano", base_channels=8, norm_groups=4, **overrides)
    )


@pytest.fixture(scope="module")
def relics():
    """64 relics from seed 0, with labels and captions."""
    from dit_mini.data.relics import make_relics

    return make_relics(64, seed=0)
