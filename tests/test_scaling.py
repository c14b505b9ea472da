from dataclasses import replace

import pytest
import torch
from PIL import Image

from dit_mini.course import viz_dps
from dit_mini.data.relics import make_relics
from dit_mini.metrics.flops import attention_gflops, block_cost_parts, block_gflops, count_gflops
from dit_mini.models.dit import DiT, dit_config
from dit_mini.studies import scaling
from dit_mini.studies.scaling import (
    GRID,
    grid_config,
    load_results,
    num_tokens,
    run_scaling_study,
)
from dit_mini.studies.ttr import RECIPES

MICRO = replace(RECIPES["nano-flow"], sample_steps=2)


def _meta_gflops(config) -> float:
    with torch.device("meta"):
        return count_gflops(DiT(config))


def test_grid_names_map_to_configs():
    assert len(GRID) == 9
    assert grid_config("M/4") == dit_config("nano")  # the middle size is the nano preset
    assert grid_config("L/2").num_patches == 256 and grid_config("S/8").num_patches == 16
    for bad in ("XL/2", "M", "M/x", "S/3"):
        with pytest.raises(ValueError):
            grid_config(bad)


def test_num_tokens_and_attention_cost():
    assert [num_tokens(32, p) for p in (8, 4, 2, 1)] == [16, 64, 256, 1024]
    with pytest.raises(ValueError, match="divide"):
        num_tokens(32, 3)
    # halving the patch size: 4x the tokens, 16x the attention matmuls
    assert attention_gflops(256, 96) == pytest.approx(16 * attention_gflops(64, 96))


@pytest.mark.parametrize("name", ["S/8", "M/4", "L/2"])
def test_block_formula_equals_the_flop_counter(name):
    one, two = grid_config(name, depth=1), grid_config(name, depth=2)
    counted = _meta_gflops(two) - _meta_gflops(one)  # exactly one block's multiply-adds
    assert block_gflops(one.num_patches, one.hidden_size) == pytest.approx(counted, rel=1e-9)
    parts = block_cost_parts(one.num_patches, one.hidden_size)
    assert sum(parts.values()) == pytest.approx(block_gflops(one.num_patches, one.hidden_size))


def test_loss_curve_averages_blocks_of_steps():
    curve = scaling._loss_curve([float(i) for i in range(25)], batch_size=16)
    assert curve == [[160, 4.5], [320, 14.5]]  # the 5 steps after the last block are left out


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("scaling") / "results.jsonl"
    data = make_relics(64, seed=0)
    rows = run_scaling_study(
        ["S/8", "S/4"], images=32, out=out, recipe=MICRO, n_eval=10, n_reference=20, data=data
    )
    return out, rows, data


def test_study_rows_record_cost_and_scores(study):
    out, rows, _ = study
    assert load_results(out) == rows and [r["name"] for r in rows] == ["S/8", "S/4"]
    s8, s4 = rows
    for r in rows:
        assert r["images"] == 32 and r["steps"] == 2 and r["n"] == 10
        assert r["gflops"] == pytest.approx(_meta_gflops(grid_config(r["name"])))
        assert 0.0 <= r["class_accuracy"] <= 1.0 and r["fid"] > 0 and r["images_per_second"] > 0
    assert s4["tokens"] == 4 * s8["tokens"] and s4["gflops"] > 3 * s8["gflops"]
    assert abs(s4["params"] - s8["params"]) < 0.1 * s8["params"]  # same size, other patches


def test_study_continues_and_refuses_mixed_runs(study, monkeypatch):
    out, rows, data = study

    def no_training(*args):
        raise AssertionError("a finished config was trained again")

    monkeypatch.setattr(scaling, "_train_one", no_training)
    again = run_scaling_study(["S/8", "S/4"], 32, out, MICRO, 10, 20, data=data)
    assert again == rows and len(load_results(out)) == 2
    with pytest.raises(ValueError, match="another --out"):
        run_scaling_study(["S/8"], 64, out, MICRO, 10, 20, data=data)
    with pytest.raises(ValueError, match="unknown grid config"):
        run_scaling_study(["Q/4"], 32, out, MICRO, 10, 20, data=data)


def test_main_prints_a_finished_study_and_the_course_draws_it(study, monkeypatch, tmp_path, capsys):
    out, _, _ = study
    monkeypatch.setattr(scaling, "_train_one", lambda *a: pytest.fail("trained again"))
    monkeypatch.setattr(
        scaling, "run_scaling_study", lambda *a, **k: load_results(out)
    )  # the CLI's own arguments would load the full relics; the table needs only the rows
    scaling.main(["--out", str(out), "--images", "32"])
    assert "S/8" in capsys.readouterr().out
    png = tmp_path / "scaling.png"
    viz_dps.main([str(out), str(png)])  # the study writes data, the course draws it
    with Image.open(png) as im:
        assert im.width > 500
