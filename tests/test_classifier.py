import numpy as np
import pytest
import torch

from dit_mini.data.relics import TEST_SEED_OFFSET, make_relics
from dit_mini.metrics.classifier import (
    ClassifierConfig,
    RelicClassifier,
    classifier_accuracy,
    score_samples,
    train_classifier,
)
from dit_mini.metrics.fid import frechet_distance, gaussian_stats
from dit_mini.models.pretrained import asset_path, load_pretrained
from dit_mini.registry import load_model, read_config, save_model
from dit_mini.storage import CheckpointError

FRESH_SEED = TEST_SEED_OFFSET + 4321  # neither the training seed nor the model card's test seed


@pytest.fixture(scope="module")
def classifier():
    return load_pretrained("relic-classifier")


@pytest.fixture(scope="module")
def fresh():
    return make_relics(300, seed=FRESH_SEED, cache=False)


def test_shipped_weights_are_small_safetensors_with_a_card():
    path = asset_path("relic-classifier")
    assert path.stat().st_size < 2 * 1024**2
    assert read_config(path)["card"]["test_accuracy"] >= 0.99


def test_held_out_accuracy_at_least_99_percent(classifier, fresh):
    assert classifier_accuracy(classifier, fresh.images, fresh.labels) >= 0.99


def test_features_feed_the_head(classifier, fresh):
    x = fresh.images[:8]
    feats = classifier.features(x)
    assert feats.shape == (8, classifier.config.feature_dim)
    torch.testing.assert_close(classifier(x), classifier.head(feats))


def test_scores_separate_real_relics_from_noise(classifier, fresh):
    real = score_samples(fresh.images[:100], fresh.labels[:100], classifier)
    assert set(real) == {"class_accuracy", "fid", "fid_floor", "n"}
    assert real["n"] == 100 and real["class_accuracy"] >= 0.99
    assert real["fid"] < 5 * real["fid_floor"]
    noise = torch.rand(100, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fake = score_samples(noise, fresh.labels[:100], classifier)
    assert fake["class_accuracy"] < 0.5
    assert fake["fid"] > 20 * real["fid"]


def test_frechet_distance_in_feature_space_matches_scipy(classifier, fresh):
    from scipy import linalg

    real = gaussian_stats(classifier.features(fresh.images[:150]).detach())
    other = gaussian_stats(classifier.features(fresh.images[150:]).detach())
    assert frechet_distance(*real, *real) == pytest.approx(0.0, abs=1e-6)
    (mu1, s1), (mu2, s2) = [(m.numpy(), s.numpy()) for m, s in (real, other)]
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(*real, *other) == pytest.approx(expected, rel=1e-4)


def test_training_is_a_function_of_the_seed(fresh):
    cfg = ClassifierConfig(widths=(8,), groups=4)
    x, y = fresh.images[:64], fresh.labels[:64]
    a, b, c = (train_classifier(x, y, cfg, epochs=1, batch_size=16, seed=s) for s in (1, 1, 2))
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    assert not torch.equal(a.head.weight, c.head.weight)


def test_save_load_round_trip(tmp_path, fresh):
    model = RelicClassifier(ClassifierConfig(widths=(8, 16), groups=4)).eval()
    save_model(model, tmp_path / "c.safetensors", extra={"card": {"note": "test"}})
    again = load_model(tmp_path / "c.safetensors")
    assert again.config == model.config
    torch.testing.assert_close(again(fresh.images[:4]), model(fresh.images[:4]))


def test_bad_inputs(classifier, fresh, tmp_path):
    with pytest.raises(CheckpointError, match="no model file at"):
        load_model(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="multiples of groups"):
        ClassifierConfig(widths=(12,))
    with pytest.raises(ValueError, match="as many labels"):
        classifier_accuracy(classifier, fresh.images[:4], fresh.labels[:3])
