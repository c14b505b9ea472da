import pytest
import torch

from dit_mini.data.clips import caption_id, clip_params, make_clips
from dit_mini.metrics.clip_checker import (
    QUESTIONS,
    CheckerConfig,
    ClipChecker,
    checker_accuracy,
    clip_targets,
    confusion,
    predict,
    train_checker,
)
from dit_mini.models.pretrained import load_pretrained
from dit_mini.registry import load_model, save_model


def test_shapes_and_questions():
    model = ClipChecker(CheckerConfig(widths=(8, 16)))
    out = model(torch.randn(2, 3, 8, 16, 16))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "item": (2, 10),
        "colour": (2, 5),
        "motion": (2, 4),
    }
    assert model.features(torch.randn(2, 3, 8, 16, 16)).shape == (2, 16)
    assert list(QUESTIONS) == ["item", "colour", "motion"]
    with pytest.raises(ValueError, match="multiples of groups"):
        CheckerConfig(widths=(12,))


def test_targets_match_caption_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("DIT_MINI_CACHE", str(tmp_path))
    data = make_clips(12, seed=3)
    targets = clip_targets(data)
    assert targets.shape == (12, 3)
    assert torch.equal(torch.as_tensor(caption_id(*targets.T.numpy())), data.labels)


def test_motion_needs_frame_order():
    """Reversing time turns 'spinning left' into 'spinning right': a checker that ignored frame
    order could not tell them apart, so a 3-D conv must see a different input."""
    model = ClipChecker(CheckerConfig(widths=(8, 16)))
    x = torch.randn(1, 3, 8, 16, 16)
    assert not torch.allclose(model(x)["motion"], model(x.flip(2))["motion"])


def test_training_is_seeded_and_round_trips(tmp_path, monkeypatch):
    monkeypatch.setenv("DIT_MINI_CACHE", str(tmp_path))
    data = make_clips(32, seed=0, split="all", cache=False)
    targets = clip_targets(data)
    config = CheckerConfig(widths=(8,))

    def train(seed):
        return train_checker(data.clips, targets, config, epochs=1, batch_size=16, seed=seed)

    a, b, c = train(0), train(0), train(1)
    logits = a(data.clips[:4])["item"]
    assert torch.equal(logits, b(data.clips[:4])["item"])
    assert not torch.equal(logits, c(data.clips[:4])["item"])
    path = tmp_path / "c.safetensors"
    save_model(a, path, extra={"card": {"note": "test"}})
    again = load_model(path)
    assert torch.equal(predict(again, data.clips), predict(a, data.clips))
    scores = checker_accuracy(a, data.clips, targets)
    assert scores["n"] == 32 and 0 <= scores["all"] <= min(scores["item"], scores["motion"])
    with pytest.raises(ValueError, match="one target row per clip"):
        checker_accuracy(a, data.clips[:3], targets[:2])
    assert len(clip_params(3).cls) == 3


def test_shipped_checker_reads_real_held_out_clips(tmp_path, monkeypatch):
    monkeypatch.setenv("DIT_MINI_CACHE", str(tmp_path))
    checker = load_pretrained("clip-checker")  # assets/clip_checker.safetensors
    data = make_clips(40, seed=4321, split="held_out", cache=False)
    scores = checker_accuracy(checker, data.clips, clip_targets(data))
    assert scores["all"] >= 0.95, scores


def test_confusion_counts_asked_against_read(tmp_path, monkeypatch):
    monkeypatch.setenv("DIT_MINI_CACHE", str(tmp_path))
    checker = load_pretrained("clip-checker")
    data = make_clips(24, seed=99, split="all", cache=False)
    targets = clip_targets(data)
    table = confusion(checker, data.clips, targets)  # motion by default
    assert table.shape == (4, 4) and int(table.sum()) == 24
    assert torch.equal(table.sum(1), torch.bincount(targets[:, 2], minlength=4))  # rows: asked
    read = predict(checker, data.clips)[:, 2]
    assert torch.equal(table.sum(0), torch.bincount(read, minlength=4))  # columns: read back
    reversed_clips = data.clips.flip(2)  # time reversed: a left spin reads as a right spin
    spins = targets[:, 2] < 2
    flipped = confusion(checker, reversed_clips[spins], targets[spins])
    assert int(flipped[0, 1] + flipped[1, 0]) >= 0.9 * int(spins.sum())
    assert confusion(checker, data.clips, targets, "item").shape == (10, 10)
    with pytest.raises(ValueError, match="question"):
        confusion(checker, data.clips, targets, "size")
