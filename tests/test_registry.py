"""dit_mini.registry: one registry of model kinds and one save/load path for all of them."""

import pytest
import torch

from dit_mini import PRETRAINED, load_pretrained
from dit_mini.models.dit import DiT, dit_config
from dit_mini.models.pretrained import asset_path
from dit_mini.models.unet import UNet, unet_config
from dit_mini.registry import (
    MODEL_KINDS,
    RENAMED_FIELDS,
    build_model,
    describe,
    kind_of,
    load_model,
    read_config,
    save_model,
    upgrade_legacy_file,
    with_current_names,
)
from dit_mini.storage import CheckpointError, read_header, save_checkpoint


def small_dit():
    torch.manual_seed(0)
    model = DiT(dit_config("nano", hidden_size=32, depth=1, num_heads=2, input_size=16))
    for p in model.parameters():
        p.data.normal_(0, 0.02)
    return model.eval()


def checkpoint_state(model):
    return {
        "model": model.state_dict(),
        "ema": {k: v * 2 for k, v in model.state_dict().items()},
        "opt": {},
        "step": 3,
        "config": {"model": describe(model), "train": {"lr": 1e-4}},
        "rng": {},
        "history": torch.zeros(1, dtype=torch.float64),
    }


def test_every_kind_round_trips_through_save_model(tmp_path):
    for kind, (cls, config_cls) in MODEL_KINDS.items():
        torch.manual_seed(0)
        model = cls(config_cls()).eval()
        assert kind_of(model) == kind
        path = save_model(model, tmp_path / f"{kind}.safetensors", extra={"card": {"n": 1}})
        again = load_model(path)
        assert type(again) is cls and again.config == model.config and not again.training
        for k, v in model.state_dict().items():
            assert torch.equal(again.state_dict()[k], v), (kind, k)
        assert read_config(path)["card"] == {"n": 1}


def test_checkpoint_and_model_file_give_the_same_network(tmp_path):
    model = small_dit()
    state = checkpoint_state(model)
    path = save_checkpoint(tmp_path / "c.pt", {**state, "ema": model.state_dict()})
    export = save_model(model, tmp_path / "w.safetensors", extra={"train": {"lr": 1e-4}})
    x, t, y = torch.randn(2, 3, 16, 16), torch.tensor([1, 500]), torch.tensor([0, 3])
    expected = model(x, t, y)
    for file in (path, export):
        torch.testing.assert_close(load_model(file)(x, t, y), expected, rtol=0, atol=0)
    assert read_config(export) == read_config(path)
    torch.save({"x": 1}, tmp_path / "fake.safetensors")
    with pytest.raises(CheckpointError, match="fake.safetensors"):
        load_model(tmp_path / "fake.safetensors")


def test_which_selects_ema_or_raw_weights(tmp_path):
    model = small_dit()
    path = save_checkpoint(tmp_path / "c.pt", checkpoint_state(model))
    w = model.final_layer.linear.weight
    assert torch.equal(load_model(path, which="model").final_layer.linear.weight, w)
    assert torch.equal(load_model(path).final_layer.linear.weight, 2 * w)
    with pytest.raises(ValueError, match="which"):
        load_model(path, which="best")


def test_float16_storage_loads_as_float32(tmp_path):
    model = small_dit()
    path = save_model(model, tmp_path / "h.safetensors", dtype=torch.float16)
    again = load_model(path)
    assert all(p.dtype == torch.float32 for p in again.parameters())
    torch.testing.assert_close(again.pos_embed, model.pos_embed, atol=1e-3, rtol=1e-3)


def test_descriptions_build_and_refuse_what_they_do_not_know():
    unet = UNet(unet_config("unet-nano", input_size=16))
    cfg = describe(unet)
    assert cfg["kind"] == "unet" and cfg["channel_mults"] == [1, 2]  # plain JSON data
    assert build_model(cfg).config == unet.config
    with pytest.raises(CheckpointError, match="unknown model kind"):
        build_model({"kind": "gan"})
    with pytest.raises(CheckpointError, match="no field.*'colour'.*newer dit-mini"):
        build_model({**cfg, "colour": "red"})
    with pytest.raises(ValueError, match="cannot describe"):
        describe(torch.nn.Linear(2, 2))
    assert kind_of(torch.nn.Linear(2, 2)) is None


def test_weights_that_do_not_fit_the_config_are_explained(tmp_path):
    model = small_dit()
    path = save_model(model, tmp_path / "w.safetensors")
    from dit_mini.storage import load_tensors, save_tensors

    header, tensors = load_tensors(path)
    del tensors["pos_embed"]
    save_tensors(path, tensors, {"model": header["model"]})
    with pytest.raises(CheckpointError, match="do not fit its dit config"):
        load_model(path)


def test_every_shipped_model_is_a_current_model_file():
    for name in PRETRAINED:
        header = read_header(asset_path(name))
        assert header["version"] == 1 and header["model"]["kind"] in MODEL_KINDS, name
        model = load_pretrained(name)
        assert not model.training and kind_of(model) == header["model"]["kind"]


def test_legacy_files_upgrade_with_their_tensors_unchanged(tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    model = small_dit()
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    old = tmp_path / "old.safetensors"
    meta = {"format": "dit-mini", "config": json.dumps({"model": describe(model), "x": 1})}
    save_file(tensors, str(old), metadata=meta)
    with pytest.raises(CheckpointError, match="--upgrade"):
        load_model(old)
    upgrade_legacy_file(old)
    assert read_config(old) == {"model": describe(model), "x": 1}
    assert all(torch.equal(v, load_file(str(old))[k]) for k, v in tensors.items())
    assert load_model(old).config == model.config


def test_files_written_with_the_old_label_dropout_names_still_load():
    """The shipped assets were written when the label dropout was `cfg_dropout` (training) and
    `caption_dropout` (the video DiT): both read under the one current name."""
    assert "caption_dropout" in read_header(asset_path("video-dit"))["model"]
    video = load_model(asset_path("video-dit"))
    assert video.config.class_dropout_prob == 0.1 and video.config.null_class is not None
    run = read_config(asset_path("dit-tiny"))
    assert run["train"]["class_dropout_prob"] == 0.1 and "cfg_dropout" not in run["train"]
    assert set(RENAMED_FIELDS.values()) == {"class_dropout_prob"}
    assert with_current_names({"train": {"cfg_dropout": 0.2}, "n": 1}) == {
        "train": {"class_dropout_prob": 0.2},
        "n": 1,
    }
