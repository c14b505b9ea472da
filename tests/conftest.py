"""Fixtures shared by several test modules: small VAEs and relics (test_vae, test_latents,
test_vae_train), and the learners' copies of the notebooks executed once per session and the
course site built from those runs (test_site, test_site_browser)."""

import functools
import importlib
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
def learner_run():
    """run(name) -> the learner's copy notebooks/<name> executed top to bottom in FAST mode
    (`dit_mini.course.site.run_notebook`: a fresh kernel, grading off, the notebook's folder as
    working directory), or the RuntimeError that stopped it. Each notebook runs at most once per
    session: tests/test_site.py checks every run, and the course site is built from the same
    runs (this is the learners' copies' only execution; nbval leaves them to it, see conftest.py
    at the root)."""
    from dit_mini.course.site import NOTEBOOKS, run_notebook

    runs = {}

    def run(name: str):
        if name not in runs:
            try:
                runs[name] = run_notebook(NOTEBOOKS / name, timeout=600, progress=lambda _: None)
            except RuntimeError as error:
                runs[name] = error
        return runs[name]

    return run


@pytest.fixture(scope="session")
def course_site(tmp_path_factory, learner_run):
    """The whole course site, built once per test session from the learners' copies by
    `dit-mini course site`, which also checks its links; every page test reads this one build.
    The notebooks are not run a second time: the command renders the `learner_run` runs (its
    `build_site` is handed them). With DIT_MINI_ARTIFACTS set (CI) the site is kept there
    (artifacts/site/). A failed build fails every test that needs it, once."""
    from dit_mini.cli import main
    from dit_mini.course.site import NOTEBOOKS, build_site

    cli = importlib.import_module("dit_mini.cli.main")  # the module (dit_mini.cli.main is main)
    site = importlib.import_module("dit_mini.course.site")

    runs = {p.name: learner_run(p.name) for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))}
    failed = [str(r).splitlines()[0] for r in runs.values() if isinstance(r, Exception)]
    if failed:
        pytest.fail(f"the course site cannot be built, a learner's copy failed: {failed}")
    artifacts = os.environ.get("DIT_MINI_ARTIFACTS")
    out = Path(artifacts) / "site" if artifacts else tmp_path_factory.mktemp("site")

    def ran_twice(nb, folder, *args):
        raise RuntimeError(f"the site ran a notebook of {folder} again")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "build_site", functools.partial(build_site, executed=runs))
        patch.setattr(site, "_execute", ran_twice)  # every page comes from `runs`
        status = main(["course", "site", str(out)])
    if status != 0:
        pytest.fail(f"the course site did not build: `dit-mini course site {out}` exited {status}")
    return out
