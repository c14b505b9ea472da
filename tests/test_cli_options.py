"""Tests for dit_mini.cli.options: the option tables are well formed and match the Python API."""

import argparse
from pathlib import Path

import pytest

from dit_mini.cli import options as cli_options
from dit_mini.cli.options import SAMPLE_OPTIONS, TRAIN_OPTIONS, add_options
from dit_mini.train.trainer import TrainConfig

TABLES = {name: getattr(cli_options, name) for name in cli_options.__all__ if name.isupper()}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_rows_are_well_formed_and_flags_unique(name):
    rows = TABLES[name]
    flags = [row[0] for row in rows]
    assert len(flags) == len(set(flags)), f"{name} repeats a flag"
    for flag, kind, _default, text, *rest in rows:
        assert flag.startswith("--") and flag == flag.lower(), flag
        assert kind in (bool, "append", str, int, float, Path), (flag, kind)
        assert text and not text.endswith("."), flag
        assert rest in ([], ["required"]), flag


def test_training_defaults_are_the_train_config_defaults():
    defaults = {row[0]: row[2] for row in TRAIN_OPTIONS}
    config = TrainConfig()
    for field in ("steps", "batch_size", "lr", "weight_decay", "warmup_steps", "ema_decay"):
        assert defaults["--" + field.replace("_", "-")] == getattr(config, field), field


def test_add_options_builds_switches_required_and_renamed_flags():
    parser = argparse.ArgumentParser()
    add_options(parser, SAMPLE_OPTIONS + [("--json", bool, False, "print JSON")])
    with pytest.raises(SystemExit):
        parser.parse_args([])  # --checkpoint is required
    args = parser.parse_args(["--checkpoint", "ema.safetensors", "--class", "3", "--json"])
    assert args.label == 3 and args.json is True and args.n == 64 and args.cfg_scale == 1.0
