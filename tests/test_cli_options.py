"""Tests for dit_mini.cli.options: the option tables are well formed and match the Python API."""

import argparse
from dataclasses import dataclass, field, fields
from pathlib import Path

import pytest

from dit_mini.cli import options as cli_options
from dit_mini.cli.options import SAMPLE_OPTIONS, TRAIN_OPTIONS, add_options, config_options
from dit_mini.diffusion.losses import DiffusionConfig
from dit_mini.train.config import TrainConfig

TABLES = {n: getattr(cli_options, n) for n in cli_options.__all__ if n.endswith("_OPTIONS")}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_rows_are_well_formed_and_flags_unique(name):
    rows = TABLES[name]
    flags = [row[0] for row in rows]
    assert len(flags) == len(set(flags)), f"{name} repeats a flag"
    for flag, kind, _default, text, *rest in rows:
        assert flag.startswith("--") and flag == flag.lower(), flag
        assert kind in (bool, "append", "auto", str, int, float, Path), (flag, kind)
        assert text and not text.endswith("."), flag
        assert rest in ([], ["required"]), flag


def test_training_options_are_generated_from_the_config_dataclasses():
    rows = {row[0]: row for row in TRAIN_OPTIONS}
    overridden = {"class_dropout_prob": 0.1, "checkpoint_every": 500}
    for cls in (TrainConfig, DiffusionConfig):
        for f in fields(cls):
            if "help" not in f.metadata:
                continue
            flag, kind, default, text = rows["--" + f.name.replace("_", "-")]
            assert text == f.metadata["help"], f.name
            assert default == overridden.get(f.name, f.default), f.name
            assert kind in (int, float, str) and (default is None or isinstance(default, kind))
    assert "--ema-warmup" not in rows  # a field without help text is not an option


def test_the_old_label_dropout_flag_still_works_with_a_note(capsys):
    parser = argparse.ArgumentParser()
    add_options(parser, TRAIN_OPTIONS)
    assert parser.parse_args(["--cfg-dropout", "0.25"]).class_dropout_prob == 0.25
    assert "--cfg-dropout is deprecated" in capsys.readouterr().err
    assert parser.parse_args(["--class-dropout-prob", "0.3"]).class_dropout_prob == 0.3
    assert parser.parse_args([]).class_dropout_prob == 0.1  # the DiT's default
    assert capsys.readouterr().err == ""
    assert "--cfg-dropout" not in parser.format_help()  # hidden from --help


def test_config_options_follow_a_new_field():
    @dataclass(frozen=True)
    class Toy:
        rate: float | None = field(default=None, metadata={"help": "a rate"})
        name: str = field(default="x", metadata={"help": "a name"})
        hidden: int = 3

    assert config_options(Toy, {"name": "y"}) == [
        ("--rate", float, None, "a rate"),
        ("--name", str, "y", "a name"),
    ]


def test_add_options_builds_switches_required_and_renamed_flags():
    parser = argparse.ArgumentParser()
    add_options(parser, SAMPLE_OPTIONS + [("--json", bool, False, "print JSON")])
    with pytest.raises(SystemExit):
        parser.parse_args([])  # --checkpoint is required
    args = parser.parse_args(["--checkpoint", "ema.safetensors", "--class", "3", "--json"])
    assert args.label == 3 and args.json is True and args.n == 64 and args.cfg_scale == 1.0
