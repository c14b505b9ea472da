"""Runtime: FAST mode switch, device choice, mixed precision only on CUDA, process info."""

import contextlib

import pytest
import torch

from dit_mini.runtime import (
    autocast_context,
    autocast_dtype,
    course_mode,
    dist_info,
    fast_mode,
    init_distributed,
    make_grad_scaler,
    pick_device,
)


@pytest.mark.parametrize(
    "env, expected",
    [({}, False), ({"CI": "true"}, True), ({"CI": "1", "DIT_MINI_FAST": "0"}, False),
     ({"DIT_MINI_FAST": "1"}, True), ({"DIT_MINI_FAST": "yes"}, True)],
)  # fmt: skip
def test_fast_mode_follows_the_environment(monkeypatch, env, expected):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("DIT_MINI_FAST", raising=False)
    monkeypatch.delenv("DIT_MINI_MODE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert fast_mode() is expected


@pytest.mark.parametrize(
    "env, expected",
    [({}, "medium"), ({"CI": "true"}, "fast"), ({"DIT_MINI_FAST": "0"}, "full"),
     ({"DIT_MINI_FAST": "1"}, "fast"), ({"DIT_MINI_MODE": "full", "CI": "1"}, "full"),
     ({"DIT_MINI_MODE": " Medium ", "DIT_MINI_FAST": "1"}, "medium"),
     ({"DIT_MINI_MODE": "fast", "DIT_MINI_FAST": "0"}, "fast")],
)  # fmt: skip
def test_course_mode_one_switch_three_speeds(monkeypatch, env, expected):
    for key in ("CI", "DIT_MINI_FAST", "DIT_MINI_MODE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert course_mode() == expected
    assert fast_mode() is (expected == "fast")


def test_course_mode_rejects_unknown_values(monkeypatch):
    monkeypatch.setenv("DIT_MINI_MODE", "laptop")
    with pytest.raises(ValueError, match="DIT_MINI_MODE='laptop'.*fast, medium or full"):
        course_mode()


def test_fast_mode_rejects_unknown_values(monkeypatch):
    monkeypatch.delenv("DIT_MINI_MODE", raising=False)
    monkeypatch.setenv("DIT_MINI_FAST", "maybe")
    with pytest.raises(ValueError, match="DIT_MINI_FAST='maybe'"):
        fast_mode()


def test_device_choice_and_cpu_precision():
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert pick_device().type in ("cpu", "mps")
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")
    assert autocast_dtype("cpu") is None and make_grad_scaler("cpu") is None
    assert isinstance(autocast_context("cpu"), contextlib.nullcontext)
    with autocast_context("cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_process_info_from_torchrun_variables(monkeypatch):
    assert dist_info().world_size == 1 and dist_info().is_main
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = dist_info()
    assert (info.rank, info.world_size, info.local_rank) == (1, 2, 1)
    assert info.distributed and not info.is_main


def test_init_distributed_alone_is_a_no_op():
    info = init_distributed("cpu")
    assert info.world_size == 1 and not torch.distributed.is_initialized()
