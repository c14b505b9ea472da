"""Tests for dit_mini.data.relics: determinism, balance, captions, variety, shapes per class,
cache."""

import itertools

import numpy as np
import pytest
import torch

from dit_mini.data.relics import (
    RELIC_BACKGROUNDS,
    RELIC_CLASSES,
    RELIC_COLOURS,
    RELICS_VERSION,
    make_relics,
    relic_captions,
    relic_params,
    relics_grid,
    render_relic,
    render_relics,
)


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIT_MINI_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def relics():
    return make_relics(500, seed=0, cache=False)


def _mask(cls: int) -> np.ndarray:
    """Pixels covered by the item: the same on a light and on a dark background."""
    light = render_relic(cls, background="snow").astype(int)
    dark = render_relic(cls, background="dark cave").astype(int)
    return np.abs(light - dark).sum(-1) < 30


def test_shapes_dtype_range(relics):
    assert relics.images.shape == (500, 3, 32, 32) and relics.images.dtype == torch.float32
    assert relics.labels.shape == (500,) and relics.labels.dtype == torch.int64
    assert relics.images.min() >= -1 and relics.images.max() <= 1
    assert relics.images.min() < -0.8 and relics.images.max() > 0.8  # uses the whole range
    assert relics.classes == RELIC_CLASSES and len(RELIC_CLASSES) == 10


def test_same_seed_same_pixels_other_seed_other_pixels():
    a = make_relics(30, seed=3, cache=False)
    b = make_relics(30, seed=3, cache=False)
    c = make_relics(30, seed=4, cache=False)
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    assert (a.images - c.images).abs().mean() > 0.1


def test_classes_balanced_and_shuffled():
    cls = relic_params(1000, seed=1).cls
    assert np.bincount(cls, minlength=10).tolist() == [100] * 10
    assert np.bincount(relic_params(25).cls, minlength=10).min() == 2
    assert not np.array_equal(cls[:10], np.arange(10))


def test_captions_name_class_colour_background(relics):
    params = relic_params(500, seed=0)
    colours, backgrounds = list(RELIC_COLOURS), list(RELIC_BACKGROUNDS)
    for i in range(0, 500, 37):
        caption = relics.captions[i]
        assert RELIC_CLASSES[int(relics.labels[i])] in caption
        assert colours[params.colour[i]] in caption and backgrounds[params.background[i]] in caption
    assert relic_captions(params[:1]) == [relics.captions[0]]
    assert len(set(relics.captions)) > 200
    ivory = relic_captions(params[np.flatnonzero(params.colour == 9)])
    assert ivory and all(c.startswith("an ivory ") for c in ivory)  # the article agrees


def test_images_vary_within_each_class(relics):
    for k in range(10):
        std = relics.images[relics.labels == k].std(dim=0).mean()
        assert std > 0.3, f"class {RELIC_CLASSES[k]} looks too uniform (std {std:.3f})"


def test_silhouettes_differ_between_classes():
    masks = [_mask(k) for k in range(10)]
    for k, m in enumerate(masks):
        assert 0.08 < m.mean() < 0.6, f"{RELIC_CLASSES[k]} covers {m.mean():.2f} of the frame"
    for (i, a), (j, b) in itertools.combinations(enumerate(masks), 2):
        iou = (a & b).sum() / (a | b).sum()
        assert iou < 0.85, f"{RELIC_CLASSES[i]} and {RELIC_CLASSES[j]} overlap (IoU {iou:.2f})"


def test_pose_is_continuous():
    base = render_relic("key", angle=10, offset=(0.02, -0.03), scale=0.7).astype(float)
    nudged = render_relic("key", angle=11, offset=(0.02, -0.03), scale=0.7).astype(float)
    turned = render_relic("key", angle=100, offset=(0.02, -0.03), scale=0.7).astype(float)
    assert np.abs(base - nudged).mean() < 3 < np.abs(base - turned).mean()


def test_render_relic_matches_batch_renderer():
    params = relic_params(12, seed=7)
    batch = render_relics(params)
    p = params[5]
    one = render_relic(
        int(p.cls[0]), int(p.colour[0]), int(p.background[0]), p.scale[0], p.angle[0],
        tuple(p.offset[0]), p.bg_seed[0],
    )  # fmt: skip
    np.testing.assert_array_equal(one, batch[5])
    assert render_relics(params, size=64).shape == (12, 64, 64, 3)


def test_cache_round_trip_and_is_read(tmp_path):
    fresh = make_relics(40, seed=2, cache=False)
    first = make_relics(40, seed=2)
    files = list((tmp_path / "cache").glob("*.npz"))
    assert len(files) == 1 and f"v{RELICS_VERSION}" in files[0].name
    assert torch.equal(first.images, fresh.images)
    assert torch.equal(make_relics(40, seed=2).images, fresh.images)
    np.savez(files[0], pixels=np.zeros((40, 32, 32, 3), np.uint8))  # tamper: a hit must read it
    assert make_relics(40, seed=2).images.max() == -1
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_grid(tmp_path):
    grid = relics_grid(per_class=3, zoom=2, path=tmp_path / "grid.png")
    assert grid.shape == (10 * 64, 3 * 64, 3) and (tmp_path / "grid.png").exists()
    np.testing.assert_array_equal(grid[::2, ::2][:32, :32], grid[1::2, 1::2][:32, :32])


def test_bad_inputs():
    with pytest.raises(ValueError, match="dragon"):
        render_relic("dragon")
    with pytest.raises(ValueError, match="colour id 99"):
        render_relic(0, colour=99)
    with pytest.raises(ValueError, match="n=0"):
        relic_params(0)
    with pytest.raises(ValueError, match="size=4"):
        render_relics(relic_params(2), size=4)
