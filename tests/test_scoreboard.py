"""Tests for dit_mini.studies.scoreboard: the rank correlation, the contestants and the sampler
study."""

import pytest
import torch

from dit_mini.models.pretrained import asset_path
from dit_mini.studies.scoreboard import (
    compare_guidance,
    compare_samplers,
    draw_contestants,
    spearman,
)


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (30,), generator=g).double()  # many ties
    b = a + torch.randn(30, generator=g)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="equal length"):
        spearman([1, 2], [1, 2, 3])


def test_contestants_cover_every_model_and_reference_row():
    found = draw_contestants(10, steps=2, models=("dit-tiny",))
    assert list(found) == [
        "dit-tiny",
        "dit-tiny (no guidance)",
        "VAE reconstructions",
        "pixel noise",
    ]
    for c in found.values():
        assert c["images"].shape == (10, 3, 32, 32) and c["images"].abs().max() <= 1
    assert found["dit-tiny"]["labels"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert not torch.equal(found["dit-tiny"]["images"], found["dit-tiny (no guidance)"]["images"])
    assert found["pixel noise"]["labels"] is None


def test_sampler_study_rows():
    runs = (("ddim", 2), ("euler", 2))
    result = compare_samplers(asset_path("dit-tiny"), 10, runs=runs)
    assert [(r["sampler"], r["steps"]) for r in result["rows"]] == list(runs)
    for r in result["rows"]:
        assert r["n"] == 10 and r["images_per_s"] > 0 and 0 <= r["class_accuracy"] <= 1
        assert r["fid"] > r["fid_floor"]


def test_guidance_study_rows():
    result = compare_guidance(asset_path("dit-tiny"), 10, scales=(1.0, 3.0), steps=2)
    assert [r["cfg_scale"] for r in result["rows"]] == [1.0, 3.0]
    assert all(r["n"] == 10 and 0 <= r["class_accuracy"] <= 1 for r in result["rows"])
    assert result["rows"][0]["fid"] != result["rows"][1]["fid"]  # guidance changes the samples


def test_report_tables_read_the_saved_studies(tmp_path):
    import json

    from dit_mini.studies.scoreboard import markdown_tables

    def scores(fid):
        return {"fid": fid, "kid": 0.1, "kid_std": 0.01, "fid_floor": 0.2, "kid_floor": 0.0}

    rows = [
        {"name": "dit", "inception": scores(10), "relic": {**scores(2), "class_accuracy": 0.5}},
        {"name": "noise", "inception": scores(200), "relic": scores(90)},
    ]
    models = {"n_relic": 500, "n_inception": 250, "spearman_fid": 1.0, "rows": rows}
    (tmp_path / "models.json").write_text(json.dumps(models))
    table = markdown_tables(tmp_path).splitlines()
    assert table[0].startswith("| model | Inception FID (n=250)")
    assert table[2] == "| real relics (floor) | 0.20 | 0.0000 | 0.20 | |"
    assert table[3] == "| dit | 10.00 | 0.1000 +- 0.0100 | 2.00 | 50.0% |"
    assert table[4].endswith("| 90.00 | - |") and "over these 2 rows: 1.00" in table[-1]
