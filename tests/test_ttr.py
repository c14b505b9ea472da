import json
from dataclasses import replace

import pytest
import torch
from PIL import Image

from dit_mini.diffusion.losses import SAMPLERS, DiffusionConfig
from dit_mini.models.dit import DIT_PRESETS
from dit_mini.studies import ttr
from dit_mini.studies.ttr import RECIPES, build_run, evaluate, get_recipe, plot_ttr, run_ttr

MICRO = replace(
    RECIPES["nano-flow"],
    n_images=100,
    sample_steps=2,
    train=replace(RECIPES["nano-flow"].train, batch_size=8),
)


class FakeClock:
    """Advances half a second per reading, so the benchmark's schedule does not depend on load."""

    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.5
        return self.t


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("ttr")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ttr, "_now", FakeClock())
        return out, run_ttr(MICRO, minutes=0.1, out_dir=out, eval_every_s=2.0, n_eval=10)


def test_run_ttr_records_points_against_training_time(report):
    out, r = report
    assert json.loads((out / "ttr.json").read_text()) == r
    points = r["points"]
    # Each step reads the fake clock once (+0.5 s); an evaluation reads it twice and only the
    # half second between its readings is paused, so evaluations cost 0.5 s of training each.
    assert [p["train_seconds"] for p in points] == [2.0, 4.0, 6.0]
    assert [p["step"] for p in points] == [4, 7, 10]
    for p in points:
        assert p["images"] == p["step"] * MICRO.train.batch_size
        assert 0.0 <= p["class_accuracy"] <= 1.0 and p["fid"] >= 0.0 and p["n"] == 10
    assert r["images_per_second"] > 0 and r["config"]["preset"] == "nano"


def test_run_ttr_writes_curve_and_sample_grid(report):
    out, _ = report
    for name in ("ttr.png", "samples.png"):
        with Image.open(out / name) as im:
            assert im.width > 100 and im.height > 100


def test_plot_overlays_reports(report, tmp_path):
    _, r = report
    path = plot_ttr([r, {**r, "recipe": "again"}], tmp_path / "both.png")
    assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="no reports"):
        plot_ttr([], tmp_path / "none.png")


def test_evaluate_orders_samples_by_class():
    from dit_mini.models.pretrained import load_pretrained

    model, diffusion, _ = build_run(MICRO)
    scores, images = evaluate(model, diffusion, MICRO, 20, load_pretrained("relic-classifier"))
    assert images.shape == (20, 3, 32, 32)
    assert set(scores) == {"class_accuracy", "fid", "fid_floor", "n", "sample_seconds"}
    with pytest.raises(ValueError, match="multiple of the 10 classes"):
        evaluate(model, diffusion, MICRO, 15, load_pretrained("relic-classifier"))


def test_build_run_is_seeded():
    a, _, _ = build_run(MICRO, seed=3)
    b, _, _ = build_run(MICRO, seed=3)
    c, _, _ = build_run(MICRO, seed=4)
    weight = "blocks.0.attn.qkv.weight"
    assert torch.equal(a.state_dict()[weight], b.state_dict()[weight])
    assert not torch.equal(a.state_dict()[weight], c.state_dict()[weight])


def test_recipes_are_consistent():
    for name, recipe in RECIPES.items():
        diffusion = DiffusionConfig(**recipe.diffusion)
        assert recipe.sampler in SAMPLERS[diffusion.objective], name
        assert recipe.preset in DIT_PRESETS, name
    assert get_recipe("nano-flow") is RECIPES["nano-flow"]
    assert get_recipe(MICRO) is MICRO


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        get_recipe("nope")
    with pytest.raises(ValueError, match="minutes=0"):
        run_ttr(MICRO, minutes=0, out_dir=tmp_path)
