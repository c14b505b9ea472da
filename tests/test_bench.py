"""Tests for dit_mini.studies.bench: keys, arithmetic and table of the report (no timing
thresholds)."""

import json
import math
import time

import pytest
import torch

from dit_mini.models.dit import DiT, dit_config
from dit_mini.studies.bench import (
    FLOPS_PER_MAC,
    TRAIN_PASSES,
    format_report,
    run_benchmark,
    sample_rate,
    time_call,
    train_rate,
)

CPU = torch.device("cpu")
FAST = dict(seconds=0.0, windows=2, warmup=0, device="cpu")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread: on a busy shared machine, a second one mostly waits at barriers."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def result(one_thread):
    return run_benchmark(
        presets=("nano",),
        batch_size=4,
        sample_presets=("nano",),
        ddim_steps=10,
        measured_steps=2,
        matmul_sizes=(64, 128),
        threads=1,
        **FAST,
    )


def test_result_has_every_section_and_is_json(result):
    assert set(result) == {"machine", "matmul", "train", "sample", "settings"}
    assert result["machine"]["threads"] == 1
    assert json.loads(json.dumps(result)) == result
    assert [r["preset"] for r in result["train"]] == ["nano"]
    assert [(s["sampler"], s["steps"]) for s in result["sample"]] == [("ddpm", 1000), ("ddim", 10)]


def test_numbers_are_positive_and_consistent(result):
    runs = result["matmul"]["runs"]
    assert len(runs) == 2  # before and after the one preset
    assert result["matmul"]["gflops"] == max(r["best"] for r in runs) > 0
    for r in runs:
        assert r["best"] == max(r["n=64"], r["n=128"])
    (t,) = result["train"]
    assert t["gflops"] > 0 and t["params"] > 0 and t["images_per_s"] > 0
    assert len(t["step_s_windows"]) == 2
    assert t["images_per_s"] == pytest.approx(4 / t["step_s"], rel=1e-12)
    achieved = t["gflops"] * FLOPS_PER_MAC * TRAIN_PASSES * t["images_per_s"]
    assert FLOPS_PER_MAC * TRAIN_PASSES == 6
    assert t["achieved_gflops"] == pytest.approx(achieved, rel=1e-12)
    assert t["fraction_of_matmul"] == pytest.approx(achieved / result["matmul"]["gflops"])
    for s in result["sample"]:
        assert s["images_per_s"] == pytest.approx(4 / (s["step_s"] * s["steps"]), rel=1e-12)
        assert s["measured_steps"] == 2 and s["extrapolated"]


def test_threads_are_restored():
    before = torch.get_num_threads()
    r = run_benchmark(presets=(), sample_presets=(), matmul_sizes=(32,), threads=2, **FAST)
    assert r["machine"]["threads"] == 2 and torch.get_num_threads() == before


def test_format_report_shows_every_row(result):
    text = format_report(result)
    t = result["train"][0]
    assert "nano" in text and "1 threads" in text
    assert f"{result['matmul']['gflops']:.1f} GFLOP/s" in text
    assert f"{t['images_per_s']:.1f}" in text and f"{t['fraction_of_matmul']:.0%}" in text
    assert text.count("extrapolated from 2 steps") == 2
    rows = [line.split() for line in text.splitlines()]
    assert ["ddpm", "1000"] in [row[:2] for row in rows]
    assert ["ddim", "10"] in [row[:2] for row in rows]


def test_time_call_times_each_window():
    calls = []

    def nap():
        calls.append(1)
        time.sleep(0.01)

    per_call = time_call(nap, CPU, seconds=0.0, windows=3, warmup=2)
    assert len(per_call) == 3 and len(calls) == 5
    assert all(s >= 0.01 for s in per_call)
    calls.clear()
    per_call = time_call(nap, CPU, seconds=0.05, windows=1, warmup=0)
    assert per_call[0] >= 0.01 and per_call[0] * len(calls) >= 0.05  # the window lasts >= 0.05 s


def test_sample_rate_without_extrapolation():
    s = sample_rate("nano", "ddim", steps=2, batch_size=2, measured_steps=5, **FAST)
    assert s["measured_steps"] == 2 and not s["extrapolated"]
    assert math.isfinite(s["images_per_s"]) and s["images_per_s"] > 0


def test_compile_failure_falls_back_to_eager(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    r = train_rate("nano", batch_size=2, compile=True, **FAST)
    assert r["compile_s"] is None and r["mode"].startswith("compile failed")
    assert r["images_per_s"] > 0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sample_rate("nano", "euler", **FAST), "sampler"),
        (lambda: sample_rate("nano", "ddim", steps=0, **FAST), "steps"),
        (lambda: train_rate("nano", batch_size=0, **FAST), "batch_size"),
        (lambda: train_rate("DiT-Q/4", batch_size=2, **FAST), "preset"),
        (lambda: time_call(lambda: None, CPU, windows=0), "windows"),
        (lambda: run_benchmark(presets=(), sample_presets=(), threads=0, **FAST), "threads"),
    ],
)
def test_bad_settings_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_residual_stream_is_contiguous():
    """The benchmark's speed relies on contiguous tokens: strided ones copy in every block."""
    model = DiT(dit_config("nano"))
    tokens = model.x_embedder(torch.zeros(2, 3, 32, 32))
    c = model.embed_condition(torch.zeros(2), torch.zeros(2, dtype=torch.long), 2)
    assert tokens.is_contiguous()
    assert model.blocks[0](tokens, c).is_contiguous()
