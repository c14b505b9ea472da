"""The dit-mini command line: help texts, train/sample/quickstart, errors, and 2 processes."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from dit_mini.cli.main import build_parser, main
from dit_mini.storage import load_checkpoint

TRAIN = ["train", "--preset", "nano", "--n-images", "48", "--steps", "3", "--batch-size", "8"]
TRAIN += ["--checkpoint-every", "2", "--seed", "3", "--quiet", "--device", "cpu"]


def subcommands():
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices


def test_every_option_of_every_command_has_help(capsys):
    for name, sub in subcommands().items():
        for action in sub._actions:
            assert action.help and len(action.help) > 8, f"{name} {action.option_strings}"
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "--help" in capsys.readouterr().out
    assert set(subcommands()) == {
        "train",
        "sample",
        "quickstart",
        "gflops",
        "course",
        "bench",
        "fid",
    }


def test_train_then_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] == 3 and state["config"]["data"]["n"] == 48
    assert state["config"]["diffusion"]["objective"] == "eps"
    grid, raw = tmp_path / "grid.png", tmp_path / "samples.pt"
    args = ["sample", "--checkpoint", str(out / "ema.safetensors"), "--n", "20", "--steps", "2"]
    assert main([*args, "--out", str(grid), "--save-samples", str(raw), "--cfg-scale", "2"]) == 0
    saved = torch.load(raw, weights_only=True)
    assert saved["images"].shape == (20, 3, 32, 32) and saved["images"].abs().max() <= 1
    assert saved["labels"].tolist() == sorted(saved["labels"].tolist())  # a class per row
    assert grid.stat().st_size > 0


def test_errors_name_the_problem_and_damage_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    before = (out / "checkpoint.pt").read_bytes()
    assert main([*TRAIN, "--out", str(out)]) == 2
    assert "already holds a training run" in capsys.readouterr().err
    assert main([*TRAIN, "--out", str(out), "--resume", "--lr", "0.5"]) == 2
    assert "train.lr: 0.0001 (checkpoint) -> 0.5 (now)" in capsys.readouterr().err
    assert (out / "checkpoint.pt").read_bytes() == before
    assert main([*TRAIN, "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert main([*TRAIN, "--preset", "huge", "--out", str(tmp_path / "y")]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err


def test_quickstart_in_fast_mode(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DIT_MINI_FAST", "1")
    out = tmp_path / "qs"
    assert (
        main(["quickstart", "--out", str(out), "--steps", "2", "--quiet", "--device", "cpu"]) == 0
    )
    printed = capsys.readouterr().out
    for name in ("samples.png", "loss.png", "checkpoint.pt", "ema.safetensors"):
        assert (out / name).is_file() and name in printed
    assert "quickstart done in" in printed and "images/s" in printed
    assert "nothing was trained" not in printed
    # run again with the same steps: the saved run is complete, and the command says how to go on
    args = ["quickstart", "--out", str(out), "--steps", "2", "--quiet", "--device", "cpu"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "already holds all 2 steps" in printed and "--steps 4" in printed


def test_gflops_command_prints_the_report(capsys):
    from dit_mini.metrics.flops import gflops_report

    assert main(["gflops", "--preset", "tiny", "--preset", "DiT-S/2", "--json"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in reports] == ["tiny", "DiT-S/2"]
    assert reports[0]["gflops"] == pytest.approx(gflops_report("tiny")["gflops"])


def test_bench_prints_the_report_and_writes_json(capsys, tmp_path):
    args = ["bench", "--preset", "nano", "--preset", "nano", "--batch-size", "2", "--seconds", "0"]
    args += [
        "--windows",
        "1",
        "--ddim-steps",
        "2",
        "--threads",
        "1",
        "--out",
        str(tmp_path / "b.json"),
    ]
    assert main(args) == 0
    report = capsys.readouterr().out
    assert report.startswith("dit-mini bench on ") and "fp32 matmul:" in report
    result = json.loads((tmp_path / "b.json").read_text())
    assert [r["preset"] for r in result["train"]] == ["nano", "nano"]
    assert [r["sampler"] for r in result["sample"]] == ["ddpm", "ddim"]
    assert result["train"][0]["optimizer"] == "AdamW(fused)" and result["machine"]["threads"] == 1


def test_torchrun_two_processes_match_one(tmp_path):
    """`torchrun --nproc_per_node=2 dit-mini train` ends where one process ends, to float error."""
    assert main([*TRAIN, "--out", str(tmp_path / "one")]) == 0
    exe = shutil.which("dit-mini")
    launch = ["--no-python", exe] if exe else ["-m", "dit_mini.cli.main"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*cmd, *launch, *TRAIN, "--out", str(tmp_path / "two")],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    one, two = (load_checkpoint(tmp_path / d / "checkpoint.pt") for d in ("one", "two"))
    torch.testing.assert_close(one["history"], two["history"], rtol=1e-5, atol=1e-6)
    for key in ("model", "ema"):
        for name, value in one[key].items():
            torch.testing.assert_close(two[key][name], value, rtol=1e-4, atol=1e-6)
    moved = sum((one["model"][k] - two["model"][k]).abs().sum() for k in one["model"])
    assert moved < 1e-3
