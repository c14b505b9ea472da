"""Fixtures shared by several test modules: small VAEs and relics (test_vae, test_latents,
test_vae_train), and the course site (test_site, test_site_browser), built once per session."""

import os
from pathlib import Path

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


@pytest.fixture(scope="session")
def course_site(tmp_path_factory):
    """The whole course site, built once per test session from the learners' copies (every
    notebook executed in FAST mode, the slow part) by `dit-mini course site`, which also checks
    its links; every page test reads this one build. With DIT_MINI_ARTIFACTS set (CI) the site
    is kept there (artifacts/site/). A failed build fails every test that needs it, once."""
    from dit_mini.cli import main

    artifacts = os.environ.get("DIT_MINI_ARTIFACTS")
    out = Path(artifacts) / "site" if artifacts else tmp_path_factory.mktemp("site")
    status = main(["course", "site", str(out)])
    if status != 0:
        pytest.fail(f"the course site did not build: `dit-mini course site {out}` exited {status}")
    return out
