"""Ctrl-C and SIGTERM: training stops at the end of the step, saves, says how to resume, and the
run continues exactly; a second signal stops at once. Real signals, sent to real processes."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from dit_mini.diffusion.losses import make_loss
from dit_mini.storage import load_checkpoint
from dit_mini.train.trainer import TrainingInterrupted

sys.path.insert(0, str(Path(__file__).parent))
from test_train import assert_same_state, config, fit, tiny_data, tiny_model  # noqa: E402

SCRIPT = """
import os, signal, sys, time
# As in a terminal: Ctrl-C raises KeyboardInterrupt. A process started in the background by a
# non-interactive shell inherits SIGINT ignored, and the trainer rightly restores that.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tests!r})
from test_train import config, fit, tiny_data, tiny_model
from dit_mini.diffusion.losses import make_loss
from dit_mini.train.trainer import TrainingInterrupted

def send(step, loss):
    if step == 5:
        for _ in range({times}):
            os.kill(os.getpid(), signal.{name})
            time.sleep(0.2)  # a person's two presses are apart: the handler sees each one

try:
    fit(tiny_model(), make_loss(), tiny_data(), config(steps=10, checkpoint_every=3), {out!r},
        quiet=True, callback=send)
except TrainingInterrupted as stop:
    print("STOPPED:", stop)
    sys.exit(130)
"""


def run_script(tmp_path, name, times=1):
    code = SCRIPT.format(tests=str(Path(__file__).parent), times=times, name=name,
                         out=str(tmp_path / "run"))  # fmt: skip
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_saves_the_step_it_ends_and_the_run_resumes_exactly(tmp_path, name):
    proc = run_script(tmp_path, name)
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert f"{name} stopped training after step 5; saved" in proc.stdout
    assert "--resume" in proc.stdout
    folder = tmp_path / "run"
    assert load_checkpoint(folder / "checkpoint.pt")["step"] == 5  # not the periodic one (3)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.pt", "ema.safetensors"]
    cfg = config(steps=10, checkpoint_every=3)
    resumed = fit(tiny_model(7), make_loss(), tiny_data(), cfg, folder, resume=True, quiet=True)
    full = fit(tiny_model(), make_loss(), tiny_data(), cfg, tmp_path / "full", quiet=True)
    assert_same_state(load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint))


def test_a_second_ctrl_c_stops_at_once(tmp_path):
    proc = run_script(tmp_path, "SIGINT", times=2)
    assert proc.returncode != 130 and "KeyboardInterrupt" in proc.stderr
    assert "STOPPED" not in proc.stdout
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 3  # the last periodic


def test_in_process_interrupt_returns_the_result_and_restores_handlers(tmp_path):
    before = signal.getsignal(signal.SIGINT)

    def send(step, loss):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as stop:
        fit(tiny_model(), make_loss(), tiny_data(), config(steps=6), tmp_path, quiet=True,
            callback=send)  # fmt: skip
    assert stop.value.result.step == 2 and len(stop.value.result.history) == 2
    assert signal.getsignal(signal.SIGINT) is before


def test_ctrl_c_on_the_command_line_prints_the_resume_command(tmp_path):
    out = tmp_path / "cli"
    args = ["train", "--preset", "nano", "--n-images", "64", "--steps", "100000",
            "--batch-size", "8", "--checkpoint-every", "1000", "--device", "cpu",
            "--out", str(out)]  # fmt: skip
    env = {**os.environ, "DIT_MINI_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dit_mini.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read(1), "")))
    reader.start()
    try:
        # The folder is locked before the data is made, so wait for the progress bar to count
        # training steps (far from the first checkpoint at step 1000), however loaded the machine.
        deadline = time.time() + 120
        while time.time() < deadline and not re.search(r"\| *[1-9]\d*/100000", "".join(chunks)):
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        reader.join(timeout=10)
    err = "".join(chunks)
    assert proc.returncode == 130, err[-2000:]
    assert "SIGINT stopped training after step" in err
    resume = next(line for line in err.splitlines() if "continue with:" in line)
    assert resume.endswith("--resume") and "dit-mini train" in resume
    step = load_checkpoint(out / "checkpoint.pt")["step"]
    assert 0 < step < 1000  # saved where it stopped, not lost until the first checkpoint
