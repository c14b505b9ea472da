"""The benchmark behind medium mode's step budget (dit_mini.course.medium_mode): it trains
notebook 14's recipe, grades at the asked steps, and reports steps, not only seconds."""

import pytest

from dit_mini.course.medium_mode import constant_answers, steps_to_recognizable
from dit_mini.models.dit import dit_config


def test_steps_to_recognizable_grades_at_the_asked_steps():
    lines = []
    config = dit_config("nano", hidden_size=32, depth=1, num_heads=2)
    result = steps_to_recognizable(
        steps=3, every=2, per_class=1, n_images=64, threads=1, config=config, log=lines.append
    )
    assert [r["step"] for r in result["records"]] == [2, 3]  # every 2 steps and the last
    assert [r["images"] for r in result["records"]] == [32, 48]
    assert len(lines) == 2 and result["seconds_per_step"] > 0
    assert result["first_step_at_80"] is None  # 3 steps draw noise
    assert 0.0 <= result["records"][-1]["class_accuracy"] <= 0.3


def test_zero_is_not_the_average_answer():
    answers = constant_answers(n_images=2000)
    assert answers["mean_target"] == pytest.approx(-answers["mean_pixel"], abs=0.01)
    assert answers["mean_target"] > 0.1  # relics are darker than mid-grey on average
    assert answers["loss_of_mean_image"] < answers["loss_of_zero"]
