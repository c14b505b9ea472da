"""Notebook 03's race (dit_mini.studies.graded_training): fit with its EMA graded every N steps."""

import pytest
import torch

from dit_mini.data.relics import make_relics
from dit_mini.diffusion.losses import DiffusionConfig
from dit_mini.studies.graded_training import train_and_grade
from dit_mini.train.config import TrainConfig
from dit_mini.train.recipes import model_from_preset


def test_train_and_grade_grades_the_trainers_ema_at_the_asked_steps():
    torch.manual_seed(0)
    model = model_from_preset("nano", 32, 10, 0.1)
    config = TrainConfig(steps=5, batch_size=4, lr=1e-3, ema_decay=0.9, class_dropout_prob=0.1)
    diffusion = DiffusionConfig(objective="flow", time_sampling="logit_normal")
    result, points = train_and_grade(
        model, diffusion, make_relics(40, seed=0), config, every_steps=2, n_eval=10,
        sampler="euler", sample_steps=2,
    )  # fmt: skip
    assert [p["step"] for p in points] == [2, 4, 5]
    assert [p["images"] for p in points] == [8, 16, 20]
    assert all(0.0 <= p["class_accuracy"] <= 1.0 and p["n"] == 10 for p in points)
    assert points[-1]["loss"] == pytest.approx(sum(result.history) / 5)
    with pytest.raises(ValueError, match="multiple of 10"):
        train_and_grade(model, diffusion, make_relics(40, seed=0), config, 2, n_eval=15)
