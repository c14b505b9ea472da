"""Fault injection, files (issue 25): full disks (a real tmpfs, and torch.save's RuntimeError),
read-only targets, folders in the way, two processes on one run folder, flipped bytes in each
part of a checkpoint, old checkpoints. Each test checks the message and that nothing on disk
was lost or replaced."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from dit_mini import storage
from dit_mini.diffusion.losses import make_loss
from dit_mini.registry import load_model, save_model
from dit_mini.storage import (
    CheckpointError,
    WriteError,
    atomic_write,
    load_checkpoint,
    part_checksums,
    save_checkpoint,
)
from dit_mini.train.lock import LOCK_NAME, RunFolderBusy, run_lock
from dit_mini.viz import save_image_grid

sys.path.insert(0, str(Path(__file__).parent))
from test_train import assert_same_state, config, fit, tiny_data, tiny_model  # noqa: E402

TORCH_ENOSPC = "[enforce fail at inline_container.cc:672] . unexpected pos 4416 vs 4330"


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def try_mount(options: list[str], mount: Path) -> str | None:
    """Mount a tmpfs at `mount`; None on success, else why not (not root, no mount command)."""
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", *options, "tmpfs", str(mount)],
                              capture_output=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    return None if proc.returncode == 0 else proc.stderr.decode().strip()[:100] or "failed"


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs: a real file system that fills up (root only; skipped elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    problem = try_mount(["-o", "size=2m"], mount)
    if problem:
        pytest.skip(f"cannot mount a tmpfs here: {problem}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the disk of `folder`, leaving about `leave` bytes free."""
    with open(folder / "filler", "wb") as f:
        try:
            while os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize > leave + 4096:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError:
            pass


# ----- full disks -----


def test_a_real_full_disk_keeps_the_previous_checkpoint(small_disk):
    path = small_disk / "c.pt"
    model = tiny_model()
    state = {"model": model.state_dict(), "ema": model.state_dict(), "opt": {}, "step": 1,
             "config": {}, "rng": {}, "history": torch.zeros(2, dtype=torch.float64)}  # fmt: skip
    save_checkpoint(path, state)
    before = path.read_bytes()
    fill(small_disk)
    with pytest.raises(WriteError, match=r"the disk is full: could not write .*c.pt; the "
                       r"previous c.pt is intact") as caught:  # fmt: skip
        save_checkpoint(path, {**state, "step": 2, "history": torch.zeros(10**5)})
    assert caught.value.disk_full and path.read_bytes() == before
    assert listing(small_disk) == ["c.pt", "filler"]  # the temporary file is gone


def test_torch_reports_a_full_disk_as_runtime_error_and_it_is_caught(tmp_path, monkeypatch):
    path = atomic_write(tmp_path / "c.pt", lambda f: f.write(b"old"))

    def torch_enospc(obj, f):
        f.write(b"half")
        raise RuntimeError(TORCH_ENOSPC)

    monkeypatch.setattr(storage.torch, "save", torch_enospc)
    model = tiny_model()
    state = {"model": model.state_dict(), "ema": model.state_dict(), "opt": {}, "step": 1,
             "config": {}, "rng": {}, "history": torch.zeros(2)}  # fmt: skip
    with pytest.raises(WriteError, match="the disk is full: could not write .*the previous"):
        save_checkpoint(path, state)
    assert path.read_bytes() == b"old" and listing(tmp_path) == ["c.pt"]


def test_any_writer_error_is_a_write_error_naming_the_target(tmp_path):
    target = atomic_write(tmp_path / "x.bin", lambda f: f.write(b"old"))

    def broken(f):
        raise RuntimeError("some writer failed")

    with pytest.raises(WriteError, match=r"cannot write .*x.bin \(some writer failed\); the "
                       "previous x.bin is intact"):  # fmt: skip
        atomic_write(target, broken)
    assert target.read_bytes() == b"old" and listing(tmp_path) == ["x.bin"]


def test_a_full_disk_at_the_final_save_of_a_run_says_what_is_on_disk(small_disk):
    out = small_disk / "run"

    def fill_after_step_3(step, loss):
        if step == 3:  # the periodic checkpoint of step 3 is on disk: now the disk fills
            fill(small_disk, leave=20_000)

    with pytest.raises(WriteError) as caught:
        fit(tiny_model(), make_loss(), tiny_data(), config(steps=5), out, quiet=True,
            callback=fill_after_step_3)  # fmt: skip
    message = str(caught.value)
    assert "the disk is full: step 5 could not be saved" in message
    assert "the last checkpoint on disk is step 3" in message and "--resume" in message
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 3
    assert listing(out) == ["checkpoint.pt"]  # no temporary file, no lock left
    (small_disk / "filler").unlink()
    resumed = fit(tiny_model(9), make_loss(), tiny_data(), config(steps=5), out, resume=True,
                  quiet=True)  # fmt: skip
    assert resumed.step == 5


def test_checkpoints_are_also_written_by_time(tmp_path, monkeypatch):
    """checkpoint_minutes: a run without step checkpoints still saves every few minutes."""
    clock = iter(range(0, 10_000, 100))  # every call: 100 s later
    monkeypatch.setattr("dit_mini.train.trainer.time.monotonic", lambda: next(clock))
    saved = []
    monkeypatch.setattr("dit_mini.train.session.save_checkpoint",
                        lambda path, state: saved.append(state["step"]))  # fmt: skip
    fit(tiny_model(), make_loss(), tiny_data(), config(steps=6, checkpoint_every=0,
        checkpoint_minutes=2.5), tmp_path / "run", quiet=True)  # fmt: skip
    assert saved[:2] == [2, 4] and saved[-1] == 6  # 200 s > 150 s: saved after steps 2 and 4
    assert TrainDefaults.checkpoint_minutes > 0  # on by default


class TrainDefaults:
    from dit_mini.train.config import TrainConfig

    checkpoint_minutes = TrainConfig().checkpoint_minutes


# ----- read-only targets and folders in the way -----


@pytest.fixture
def read_only(tmp_path):
    """A read-only folder: a read-only tmpfs where mount is allowed, else /proc."""
    mount = tmp_path / "ro"
    mount.mkdir()
    if try_mount(["-o", "ro,size=1m"], mount):
        yield Path("/proc")
        return
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_save_model_onto_a_folder_or_a_read_only_mount_names_the_target(tmp_path, read_only):
    model = tiny_model()
    folder = tmp_path / "model.safetensors"
    folder.mkdir()
    with pytest.raises(WriteError, match=r"cannot write .*model.safetensors: it is a folder"):
        save_model(model, folder)
    target = read_only / "model.safetensors"
    with pytest.raises(WriteError) as caught:
        save_model(model, target)
    assert f"cannot write {target} (" in str(caught.value) and ".tmp-" not in str(caught.value)
    assert listing(folder) == []


def test_a_png_writer_failure_keeps_the_previous_grid(tmp_path, monkeypatch):
    path = save_image_grid(torch.zeros(4, 3, 8, 8), tmp_path / "grid.png")
    before = path.read_bytes()

    def broken(self, fp, format=None, **params):
        fp.write(b"half a png")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("PIL.Image.Image.save", broken)
    with pytest.raises(WriteError, match="the disk is full: could not write .*grid.png"):
        save_image_grid(torch.ones(4, 3, 8, 8), path)
    assert path.read_bytes() == before and listing(tmp_path) == ["grid.png"]


# ----- one process per run folder -----

HOLDER = """
import sys, time
from dit_mini.train.lock import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_second_trainer_on_the_same_folder_is_refused_with_the_holders_pid(tmp_path, capsys):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLDER), str(out)],
                              stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderBusy, match=rf"in use by process {holder.pid}.*kill "
                           rf"{holder.pid}.*another output folder"):  # fmt: skip
            fit(tiny_model(), make_loss(), tiny_data(), config(steps=2), out, quiet=True)
        assert listing(out) == [LOCK_NAME]  # the refused trainer wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The holder died without releasing: its lock file is stale and is taken over, with a note.
    capsys.readouterr()
    result = fit(tiny_model(), make_loss(), tiny_data(), config(steps=2), out, quiet=True)
    assert result.step == 2
    assert f"took over the lock of {out} from process {holder.pid}" in capsys.readouterr().err
    assert listing(out) == ["checkpoint.pt", "ema.safetensors"]  # released: no lock file


def test_the_lock_is_reentrant_in_one_process(tmp_path):
    with run_lock(tmp_path), run_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_new_run_never_replaces_weights_it_did_not_write(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    weights = save_model(tiny_model(3), out / "ema.safetensors")
    before = weights.read_bytes()
    for resume in (False, "auto"):
        with pytest.raises(CheckpointError, match="holds ema.safetensors but no checkpoint.pt.*"
                           "--overwrite"):  # fmt: skip
            fit(tiny_model(), make_loss(), tiny_data(), config(steps=2), out, resume=resume,
                quiet=True)  # fmt: skip
    assert weights.read_bytes() == before and listing(out) == ["ema.safetensors"]
    fit(tiny_model(), make_loss(), tiny_data(), config(steps=2), out, quiet=True, overwrite=True)
    assert weights.read_bytes() != before


# ----- checksums over every part -----


def flip_bytes_of(path: Path, tensor: torch.Tensor) -> None:
    """Flip one bit inside `tensor`'s bytes where they are stored in the file."""
    data = bytearray(path.read_bytes())
    needle = tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    assert data.count(needle) == 1, "the tensor's bytes must occur once in the file"
    at = data.index(needle) + len(needle) // 2
    data[at] ^= 0x40
    path.write_bytes(bytes(data))


PARTS = {
    "model weights": lambda s: s["model"]["final_layer.linear.weight"],
    "EMA weights": lambda s: s["ema"]["final_layer.linear.weight"],
    "optimizer state": lambda s: list(s["opt"]["state"].values())[-1]["exp_avg_sq"],
    "random-generator states": lambda s: s["rng"]["noise"],
    "loss history": lambda s: s["history"],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    fit(tiny_model(), make_loss(), tiny_data(), config(steps=4, checkpoint_every=0), out,
        quiet=True)  # fmt: skip
    return out / "checkpoint.pt"


@pytest.mark.parametrize("part", PARTS)
def test_a_flipped_bit_in_any_part_refuses_to_resume_and_names_it(tmp_path, trained, part):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(trained.read_bytes())
    flip_bytes_of(path, PARTS[part](torch.load(path, weights_only=True)))
    damaged = path.read_bytes()
    with pytest.raises(CheckpointError, match=f"is corrupted: its {part} do not match"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match=f"its {part} do not match"):
        fit(tiny_model(), make_loss(), tiny_data(), config(steps=6), tmp_path, resume=True,
            quiet=True)  # fmt: skip
    assert path.read_bytes() == damaged and listing(tmp_path) == ["checkpoint.pt"]


def test_checkpoints_written_the_old_way_still_load_and_resume(tmp_path, trained):
    state = torch.load(trained, weights_only=True)
    for version in (2, 1):  # 2: one checksum of model and EMA; 1: none
        old = {k: v for k, v in state.items() if k != "sha256"}
        old["version"] = version
        if version == 2:
            old["sha256"] = storage._weights_checksum(old)
        folder = tmp_path / f"v{version}"
        folder.mkdir()
        torch.save(old, folder / "checkpoint.pt")
        assert load_checkpoint(folder / "checkpoint.pt")["step"] == 4
        resumed = fit(tiny_model(5), make_loss(), tiny_data(), config(steps=6), folder,
                      resume=True, quiet=True)  # fmt: skip
        assert resumed.step == 6
    a, b = (load_checkpoint(tmp_path / f"v{v}" / "checkpoint.pt") for v in (2, 1))
    assert_same_state(a, b)
    assert set(part_checksums(a)) >= {"model", "ema", "opt", "rng", "history"}


def test_a_version_2_checkpoint_with_changed_weights_is_still_refused(tmp_path, trained):
    old = torch.load(trained, weights_only=True)
    old["version"] = 2
    old["sha256"] = storage._weights_checksum(old)
    old["ema"]["final_layer.linear.weight"] += 1e-3
    torch.save(old, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="its model weights or EMA weights do not match"):
        load_checkpoint(tmp_path / "c.pt")


def test_a_renamed_model_file_says_the_extension_is_the_problem(tmp_path, trained):
    weights = save_model(tiny_model(), tmp_path / "model.safetensors")
    renamed = weights.rename(tmp_path / "model.bin")
    with pytest.raises(CheckpointError, match=r"model.bin is a safetensors model file, but its "
                       r"extension '.bin' says .*rename it to model.safetensors"):  # fmt: skip
        load_model(renamed)
    pt = tmp_path / "run.safetensors"
    pt.write_bytes(trained.read_bytes())
    with pytest.raises(CheckpointError, match="is a PyTorch training checkpoint.*rename it to "
                       "run.pt"):  # fmt: skip
        load_model(pt)


def test_lock_file_of_a_sigkilled_trainer_does_not_block_the_resume(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_train import config, fit, tiny_data, tiny_model
        from dit_mini.diffusion.losses import make_loss

        def die(step, loss):
            if step == 3:
                os.kill(os.getpid(), signal.SIGKILL)

        fit(tiny_model(), make_loss(), tiny_data(), config(), {str(tmp_path)!r}, quiet=True,
            callback=die)
    """)  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / LOCK_NAME).exists()
    start = time.time()
    assert fit(tiny_model(), make_loss(), tiny_data(), config(), tmp_path, resume=True,
               quiet=True).step == 10  # fmt: skip
    assert time.time() - start < 60 and not (tmp_path / LOCK_NAME).exists()
