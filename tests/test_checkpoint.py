"""Checkpoints: atomic writes, safe loading, clear errors, and models rebuilt from files."""

import pytest
import torch

from dit_mini.models.dit import DiT, dit_config
from dit_mini.models.unet import UNet, unet_config
from dit_mini.train import checkpoint as ckpt
from dit_mini.train.checkpoint import (
    CheckpointError,
    build_model,
    config_diff,
    export_weights,
    load_checkpoint,
    load_model,
    model_config_dict,
    read_config,
    save_checkpoint,
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
        "config": {"model": model_config_dict(model), "train": {"lr": 1e-4}},
        "rng": {"noise": torch.Generator().manual_seed(1).get_state()},
        "history": torch.tensor([1.0, 0.5], dtype=torch.float64),
    }


def test_round_trip_with_weights_only_loading(tmp_path):
    model = small_dit()
    path = save_checkpoint(tmp_path / "c.pt", state_for(model))
    raw = torch.load(path, weights_only=True)  # plain data only: the safe loader accepts it
    assert raw["format"] == "dit-mini" and raw["step"] == 3
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

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, state_for(model, step=2))
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left


class Foreign:
    pass


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*missing.pt"):
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


def test_load_model_from_checkpoint_and_export_gives_the_same_network(tmp_path):
    model = small_dit().eval()
    state = state_for(model)
    path = save_checkpoint(tmp_path / "c.pt", {**state, "ema": model.state_dict()})
    export = export_weights(model, tmp_path / "w.safetensors", state["config"])
    x, t, y = torch.randn(2, 3, 16, 16), torch.tensor([1, 500]), torch.tensor([0, 3])
    expected = model(x, t, y)
    for file in (path, export):
        rebuilt = load_model(file)
        assert not rebuilt.training
        torch.testing.assert_close(rebuilt(x, t, y), expected, rtol=0, atol=0)
    assert read_config(export) == read_config(path)
    torch.save({"x": 1}, tmp_path / "fake.safetensors")
    with pytest.raises(CheckpointError, match="fake.safetensors"):
        load_model(tmp_path / "fake.safetensors")


def test_which_selects_ema_or_raw_weights(tmp_path):
    model = small_dit()
    path = save_checkpoint(tmp_path / "c.pt", state_for(model))
    w = model.final_layer.linear.weight
    assert torch.equal(load_model(path, which="model").final_layer.linear.weight, w)
    assert torch.equal(load_model(path).final_layer.linear.weight, 2 * w)
    with pytest.raises(ValueError, match="which"):
        load_model(path, which="best")


def test_unet_configs_rebuild_and_configs_diff():
    unet = UNet(unet_config("unet-nano", input_size=16))
    cfg = model_config_dict(unet)
    assert cfg["kind"] == "unet" and cfg["channel_mults"] == [1, 2]  # plain JSON data
    assert build_model(cfg).config == unet.config
    with pytest.raises(CheckpointError, match="unknown model kind"):
        build_model({"kind": "gan"})
    with pytest.raises(ValueError, match="cannot describe"):
        model_config_dict(torch.nn.Linear(2, 2))
    diff = config_diff({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 1, "c": 5}}, ignore=("d",))
    assert diff == ["a.c: 2 (checkpoint) -> 5 (now)"]
