"""Every bad input of the issue list gets one line naming the problem and the fix (exit 2), or
for a diverging run exit 1, before work is wasted; nothing is lost or left behind."""

import errno
import math
import re

import pytest
import torch

from dit_mini import storage
from dit_mini.cli.main import main
from dit_mini.models.dit import DiT, dit_config
from dit_mini.registry import save_model
from dit_mini.storage import load_checkpoint

TRAIN = ["train", "--preset", "nano", "--n-images", "32", "--steps", "2", "--batch-size", "8",
         "--quiet", "--device", "cpu"]  # fmt: skip
UNWRITABLE = "/proc/dit-mini-cannot-write-here"  # not writable, not even by root


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = DiT(dit_config("nano", hidden_size=32, depth=1, num_heads=2))
    path = tmp_path_factory.mktemp("w") / "ema.safetensors"
    return str(save_model(model, path, extra={"diffusion": {"objective": "flow"}}))


def error_of(capsys, argv, code=2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dit-mini: error: "), err
    return err[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n", "-2"], "n=-2.*must all be >= 1"),
        (["--n", "0"], "n=0.*must all be >= 1"),
        (["--batch-size", "0"], "batch=0.*must all be >= 1"),
        (["--cfg-scale", "nan"], "cfg_scale=nan is not a usable guidance scale"),
        (["--cfg-scale", "inf"], "cfg_scale=inf is not a usable guidance scale"),
    ],
)
def test_bad_sample_options(capsys, tmp_path, weights, extra, message):
    out = tmp_path / "grid.png"
    err = error_of(capsys, ["sample", "--checkpoint", weights, "--out", str(out), *extra])
    assert re.search(message, err), err
    assert not out.exists()


def test_fid_of_a_file_that_holds_no_samples(capsys, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not samples")
    err = error_of(capsys, ["fid", "--samples", str(text), "--n", "4"])
    assert "notes.txt is not a samples file" in err and "--save-samples" in err


def test_unwritable_out_fails_before_training(capsys):
    err = error_of(capsys, [*TRAIN, "--out", UNWRITABLE])
    assert "cannot write in /proc/dit-mini-cannot-write-here" in err and "writable" in err


def test_out_that_is_a_file(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    assert "is a file, not a folder" in error_of(capsys, [*TRAIN, "--out", str(tmp_path / "f")])


def test_too_little_disk_for_one_checkpoint(capsys, tmp_path, monkeypatch):
    usage = storage.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(storage.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    err = error_of(capsys, [*TRAIN, "--out", str(tmp_path / "run")])
    assert "MiB free but one checkpoint needs about" in err


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(capsys, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    capsys.readouterr()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", full)
    err = error_of(capsys, [*TRAIN, "--steps", "4", "--out", str(out), "--resume"])
    assert "the disk is full: step 4 could not be saved" in err
    assert "the last checkpoint on disk is step 2" in err and "--resume" in err
    monkeypatch.undo()
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "ema.safetensors"]


def test_course_student_into_an_unwritable_folder_or_onto_a_file(capsys, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.ipynb").write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    err = error_of(capsys, ["course", "student", str(src), UNWRITABLE])
    assert "cannot write" in err
    (tmp_path / "file.txt").write_text("x")
    err = error_of(capsys, ["course", "student", str(src), str(tmp_path / "file.txt")])
    assert "file.txt is a file" in err and "folder" in err


def test_a_diverging_run_stops_with_advice(capsys, tmp_path):
    argv = [*TRAIN, "--steps", "60", "--lr", "1e10", "--out", str(tmp_path / "run")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "training diverged" in err and "Lower the learning rate" in err
    assert not (tmp_path / "run" / "ema.safetensors").exists()  # no garbage to sample


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*TRAIN, "--minutes", "-1"], "--minutes -1.0: give a positive training budget"),
        ([*TRAIN, "--checkpoint-every", "0"], "--checkpoint-every 0: write a checkpoint every K"),
        (["quickstart", "--steps", "0", "--quiet", "--device", "cpu"], "steps=0: train at least"),
        (["quickstart", "--minutes", "0", "--quiet"], "minutes=0.0: give a positive"),
    ],
)
def test_bad_numbers_are_refused_up_front(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert message in error_of(capsys, argv)
    assert not (tmp_path / "quickstart").exists()


def test_resume_on_a_mistyped_folder(capsys, tmp_path):
    err = error_of(capsys, [*TRAIN, "--out", str(tmp_path / "rnu"), "--resume"])
    assert "there is no checkpoint.pt in" in err and "--resume auto" in err
    assert main([*TRAIN, "--out", str(tmp_path / "new"), "--resume", "auto"]) == 0


def test_resume_removes_what_a_killed_writer_left(capsys, tmp_path):
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    stale = out / ".checkpoint.pt.tmp-999999999"  # a pid that cannot be running
    stale.write_bytes(b"half a checkpoint")
    assert main([*TRAIN, "--steps", "3", "--out", str(out), "--resume"]) == 0
    assert not stale.exists() and math.isfinite(load_checkpoint(out / "checkpoint.pt")["step"])
