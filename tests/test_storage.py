"""dit_mini.storage: atomic writes, safe loading, checksums, and clear errors for bad files."""

import os
import subprocess
import sys

import pytest
import torch

from dit_mini import storage
from dit_mini.models.dit import DiT, dit_config
from dit_mini.registry import describe
from dit_mini.storage import (
    CheckpointError,
    atomic_write,
    load_checkpoint,
    load_tensors,
    read_header,
    remove_stale_temporaries,
    save_checkpoint,
    save_tensors,
    tensor_checksum,
)


def small_dit():
    torch.manual_seed(0)
    model = DiT(dit_config("nano", hidden_size=32, depth=1, num_heads=2, input_size=16))
    for p in model.parameters():  # leave adaLN-Zero's all-zero output behind
        p.data.normal_(0, 0.02)
    return model


def state_for(model, step=3):
    return {
        "model": model.state_dict(),
        "ema": {k: v * 2 for k, v in model.state_dict().items()},
        "opt": {},
        "step": step,
        "config": {"model": describe(model), "train": {"lr": 1e-4}},
        "rng": {"noise": torch.Generator().manual_seed(1).get_state()},
        "history": torch.tensor([1.0, 0.5], dtype=torch.float64),
    }


def test_round_trip_with_weights_only_loading(tmp_path):
    model = small_dit()
    path = save_checkpoint(tmp_path / "c.pt", state_for(model))
    raw = torch.load(path, weights_only=True)  # plain data only: the safe loader accepts it
    assert raw["format"] == "dit-mini" and raw["step"] == 3
    assert {len(v) for v in raw["sha256"].values()} == {64}
    assert set(raw["sha256"]) >= {"model", "ema", "opt", "rng", "history"}
    state = load_checkpoint(path)
    assert torch.equal(state["model"]["pos_embed"], model.pos_embed)
    assert state["config"]["model"]["kind"] == "dit"
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = small_dit()
    path = save_checkpoint(tmp_path / "c.pt", state_for(model, step=1))

    def crash(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(storage.torch, "save", crash)
    with pytest.raises(
        storage.WriteError, match=r"c.pt \(disk full\); the previous c.pt is intact"
    ):
        save_checkpoint(path, state_for(model, step=2))
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left


class Foreign:
    pass


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    good = save_checkpoint(tmp_path / "good.pt", state_for(small_dit()))
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt: the file is truncated or corrupt"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt is a PyTorch file but not a dit-mini"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save({"obj": Foreign()}, tmp_path / "code.pt")
    with pytest.raises(CheckpointError, match="code.pt is not a dit-mini checkpoint"):
        load_checkpoint(tmp_path / "code.pt")
    (tmp_path / "text.pt").write_bytes(b"these are not the weights you are looking for")
    with pytest.raises(CheckpointError, match="text.pt"):
        load_checkpoint(tmp_path / "text.pt")


def test_a_checkpoint_with_changed_weights_is_refused(tmp_path):
    state = state_for(small_dit())
    path = save_checkpoint(tmp_path / "c.pt", state)
    raw = torch.load(path, weights_only=True)
    raw["ema"]["pos_embed"] = raw["ema"]["pos_embed"] + 1e-3  # a bit flip would do the same
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="c.pt is corrupted: its EMA weights do not"):
        load_checkpoint(path)


def test_model_file_checksum_catches_flipped_bytes(tmp_path):
    tensors = {"w": torch.randn(64, 64), "b": torch.zeros(3, dtype=torch.int64)}
    path = save_tensors(tmp_path / "m.safetensors", tensors, {"model": {"kind": "x"}})
    header, again = load_tensors(path)
    assert header["model"] == {"kind": "x"} and header["sha256"] == tensor_checksum(tensors)
    assert torch.equal(again["w"], tensors["w"])
    data = bytearray(path.read_bytes())
    for i in range(len(data) - 4000, len(data), 7):  # flip bytes inside the tensor data
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    assert read_header(path)["format"] == "dit-mini"  # the header itself is intact
    with pytest.raises(CheckpointError, match="m.safetensors is corrupted"):
        load_tensors(path)


def test_checksum_depends_on_names_dtypes_shapes_and_values():
    base = {"a": torch.ones(2, 3)}
    variants = [
        {"b": torch.ones(2, 3)},
        {"a": torch.ones(3, 2)},
        {"a": torch.ones(2, 3, dtype=torch.float64)},
        {
            "a": torch.ones(2, 3).index_put_(
                (torch.tensor([0]), torch.tensor([0])), torch.tensor(2.0)
            )
        },
    ]
    assert len({tensor_checksum(t) for t in [base, *variants]}) == 5
    assert tensor_checksum({"s": torch.tensor(1.0)}) != tensor_checksum({"s": torch.tensor(2.0)})


def test_files_without_a_header_or_from_the_future_are_explained(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.ones(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="no dit-mini header.*--upgrade"):
        read_header(tmp_path / "plain.safetensors")
    path = save_tensors(tmp_path / "new.safetensors", {"w": torch.ones(1)}, {"version": 99})
    with pytest.raises(CheckpointError, match="version 99.*upgrade dit-mini"):
        read_header(path)
    with pytest.raises(CheckpointError, match="no model file at"):
        read_header(tmp_path / "absent.safetensors")


def test_atomic_write_removes_its_temporary_file_on_failure(tmp_path):
    target = tmp_path / "x.bin"
    atomic_write(target, lambda f: f.write(b"old"))

    def fail(f):
        f.write(b"new, half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, fail)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f".checkpoint.pt.tmp-{dead}"
    live = tmp_path / f".checkpoint.pt.tmp-{os.getppid()}"  # a running process: kept
    stale.write_bytes(b"x")
    live.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and live.exists()
