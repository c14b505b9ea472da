"""dit_mini.threads: the thread count is measured and chosen, fixed on request, re-measured when
steps slow down, and restored afterwards."""

import pytest
import torch

import dit_mini.threads as threads_module
from dit_mini.diffusion.losses import make_loss
from dit_mini.threads import (
    THREADS_ENV,
    ThreadTuner,
    fastest_threads,
    requested_threads,
    thread_candidates,
)
from dit_mini.train.trainer import fit


@pytest.fixture
def tuning(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    saved = torch.get_num_threads()
    yield
    torch.set_num_threads(saved)


def test_requested_threads(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setattr(threads_module, "available_cores", lambda: 4)
    assert requested_threads() is None and requested_threads(3) == 3
    monkeypatch.setenv(THREADS_ENV, "2")
    assert requested_threads() == 2 and requested_threads(1) == 1
    monkeypatch.setenv(THREADS_ENV, "two")
    with pytest.raises(ValueError, match="DIT_MINI_THREADS='two' must be a positive integer"):
        requested_threads()
    with pytest.raises(ValueError, match="threads=0 must be >= 1"):
        requested_threads(0)


def test_more_threads_than_cores_are_capped_with_a_note(monkeypatch, capsys):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setattr(threads_module, "available_cores", lambda: 2)
    assert requested_threads(999) == 2 and requested_threads(999) == 2
    err = capsys.readouterr().err
    assert err.count("note: 999 threads asked for but this process may use 2") == 1  # once
    monkeypatch.setenv(THREADS_ENV, "64")
    assert requested_threads() == 2


def test_candidates():
    assert thread_candidates(1) == [1]
    assert thread_candidates(2) == [1, 2]
    assert thread_candidates(8) == [1, 4, 8]


def simulate(tuner, cost, steps):
    """Drive a tuner with a fake step time `cost(threads, step)`."""
    for step in range(steps):
        tuner.before_step()
        tuner.after_step(cost(torch.get_num_threads(), step))


def test_tuner_picks_the_fastest_count_and_measures_again_when_steps_slow_down(tuning, capsys):
    tuner = ThreadTuner(most=2)
    assert tuner.candidates == [1, 2]

    def idle_then_busy(threads, step):
        if step < 100:
            return 0.10 if threads == 2 else 0.18  # idle machine: 2 threads win
        return 2.0 if threads == 2 else 0.3  # another process is busy: 2 threads collapse

    simulate(tuner, idle_then_busy, 100)
    assert tuner.chosen == 2 and torch.get_num_threads() == 2
    simulate(tuner, lambda threads, step: idle_then_busy(threads, 100 + step), 100)
    assert tuner.chosen == 1 and torch.get_num_threads() == 1
    assert [choice[1] for choice in tuner.history] == [2, 1]
    printed = capsys.readouterr().out
    assert "training with 2 torch thread(s)" in printed and "measured again" in printed
    tuner.close()


def test_a_fixed_count_is_never_changed(tuning):
    tuner = ThreadTuner(fixed=1, most=2)
    simulate(tuner, lambda threads, step: 0.1 if threads == 2 else 9.0, 30)
    assert torch.get_num_threads() == 1 and tuner.history == []


def test_fastest_threads_times_each_candidate(tuning):
    calls = []
    result = fastest_threads(lambda: calls.append(torch.get_num_threads()), [1, 2], repeats=2)
    assert sorted(set(calls)) == [1, 2] and len(calls) == 6  # warm-up + 2 timed per candidate
    assert result["threads"] in (1, 2) and set(result["seconds"]) == {1, 2}


def test_fit_tunes_on_the_cpu_and_restores_the_count(tuning):
    from test_train import config, tiny_data, tiny_model

    before = torch.get_num_threads()
    result = fit(tiny_model(), make_loss(), tiny_data(), config(steps=12), quiet=True,
                 device="cpu")  # fmt: skip
    assert result.threads in thread_candidates(before)
    assert torch.get_num_threads() == before
    fixed = fit(tiny_model(), make_loss(), tiny_data(), config(steps=2), quiet=True,
                device="cpu", threads=1)  # fmt: skip
    assert fixed.threads == 1 and torch.get_num_threads() == before
