"""Steps against model size: the bill of a finished sample and one graded run per step count."""

import pytest
import torch

from dit_mini.diffusion.losses import DiffusionConfig
from dit_mini.metrics.flops import count_gflops
from dit_mini.models.dit import DiT, dit_config
from dit_mini.models.pretrained import load_pretrained
from dit_mini.studies.steps_vs_size import sampling_bill, steps_vs_size


def test_sampling_bill_counts_two_passes_per_step_with_guidance_and_one_decoder_pass():
    assert sampling_bill(0.5, 20) == pytest.approx(20.0)
    assert sampling_bill(0.5, 20, guidance=False) == pytest.approx(10.0)
    assert sampling_bill(0.5, 20, decoder_gflops=0.25) == pytest.approx(20.25)


@pytest.mark.parametrize("args", [(0.5, 0), (0.0, 4), (-1.0, 4)])
def test_sampling_bill_refuses_impossible_runs(args):
    with pytest.raises(ValueError, match="must be"):
        sampling_bill(*args)


def small(width: int) -> DiT:
    torch.manual_seed(0)
    return DiT(dit_config("nano", hidden_size=width, depth=1, num_heads=2)).eval()


def test_steps_vs_size_grades_every_run_of_every_model_from_the_same_noise():
    models = {"wide": (small(64), DiffusionConfig(objective="flow")),
              "narrow": (small(32), DiffusionConfig(objective="flow"))}  # fmt: skip
    classifier = load_pretrained("relic-classifier")
    rows = steps_vs_size(models, {"wide": [1, 2], "narrow": [1]}, per_class=1,
                         classifier=classifier)  # fmt: skip
    assert [(r["name"], r["steps"]) for r in rows] == [("wide", 1), ("wide", 2), ("narrow", 1)]
    for row in rows:
        per_pass = count_gflops(models[row["name"]][0])
        assert row["gflops_per_pass"] == pytest.approx(per_pass)
        assert row["gflops_per_sample"] == pytest.approx(row["steps"] * 2 * per_pass)
        assert row["n"] == 10 and 0.0 <= row["class_accuracy"] <= 1.0 and row["fid"] > 0
    assert rows[0]["fid_floor"] == rows[2]["fid_floor"]  # one floor for the same n
    again = steps_vs_size({"wide": models["wide"]}, {"wide": [1]}, 1, classifier=classifier)
    assert again[0]["fid"] == pytest.approx(rows[0]["fid"])  # the same noise: the same samples


def test_steps_vs_size_needs_step_counts_for_every_model():
    with pytest.raises(ValueError, match="no step counts"):
        steps_vs_size({"a": (small(32), DiffusionConfig(objective="flow"))}, {}, 1)
