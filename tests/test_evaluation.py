import json

import pytest
import torch

from dit_mini.cli.main import main
from dit_mini.metrics.evaluation import evaluate_samples, load_samples, reference_features


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIT_MINI_CACHE", str(tmp_path / "cache"))


def test_real_relics_score_near_the_floor_and_noise_scores_far():
    from dit_mini.data.relics import make_relics

    real = make_relics(200, seed=777).images
    noise = torch.rand(200, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    good = evaluate_samples(real, "relic", n_reference=400, kid_subsets=10)
    bad = evaluate_samples(noise, "relic", n_reference=400, kid_subsets=10)
    assert set(good) >= {"fid", "kid", "kid_std", "n", "n_reference", "fid_floor", "kid_floor"}
    assert good["n"] == 200 and good["n_reference"] == 400
    assert good["fid"] < 2 * good["fid_floor"] + 1  # real images sit at the floor
    assert bad["fid"] > 10 * good["fid"] and bad["kid"] > 10 * abs(good["kid"])


def test_reference_features_are_cached(tmp_path):
    calls = []

    def fake_extractor(images):
        calls.append(len(images))
        return images.flatten(1)[:, :8].double()

    a = reference_features("relics", "relic", 20, extractor=fake_extractor)
    b = reference_features("relics", "relic", 20, extractor=fake_extractor)
    assert torch.equal(a, b) and calls == [20]


def test_fid_cli_from_saved_samples(tmp_path, capsys):
    from dit_mini.data.relics import make_relics

    path = tmp_path / "samples.pt"
    real = make_relics(50, seed=5)
    torch.save({"images": real.images, "labels": real.labels}, path)
    assert main(["fid", "--samples", str(path), "--n", "50", "--n-reference", "100", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 50 and out["features"] == "relic" and out["fid"] >= 0
    assert out["class_accuracy"] == 1.0  # real relics are classified as their own class
    images, labels = load_samples(path)
    assert torch.equal(images, real.images) and torch.equal(labels, real.labels)


def test_fid_cli_errors(tmp_path, capsys):
    assert main(["fid", "--n", "10"]) == 2
    assert "exactly one of --checkpoint" in capsys.readouterr().err
    assert main(["fid", "--samples", str(tmp_path / "nope.pt")]) == 2
    assert "no samples file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown features"):
        evaluate_samples(torch.zeros(4, 3, 32, 32), features="clip")


def test_bench_ttr_cli_calls_run_ttr(monkeypatch, tmp_path, capsys):
    import dit_mini.studies.ttr as ttr

    seen = {}

    def fake_run_ttr(recipe, minutes, out, eval_every, n_eval, seed):
        seen.update(recipe=recipe, minutes=minutes, out=out, eval_every=eval_every, n_eval=n_eval)
        return {"points": [{"minutes": 0.5, "step": 10, "class_accuracy": 0.3, "fid": 20.0}]}

    monkeypatch.setattr(ttr, "run_ttr", fake_run_ttr)
    args = ["bench", "ttr", "--recipe", "nano-flow", "--minutes", "0.5", "--out", str(tmp_path)]
    assert main(args + ["--eval-every", "10", "--n-eval", "20"]) == 0
    assert seen == dict(
        recipe="nano-flow", minutes=0.5, out=str(tmp_path), eval_every=10.0, n_eval=20
    )
    assert '"class_accuracy": 0.3' in capsys.readouterr().out
