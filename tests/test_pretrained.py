"""Every shipped model loads by name from safetensors, in eval mode, and runs."""

import pytest
import torch

from dit_mini.models.pretrained import PRETRAINED, asset_path, assets_dir, load_pretrained


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_every_shipped_model_loads_and_runs(name):
    model = load_pretrained(name)
    assert not model.training and asset_path(name).suffix == ".safetensors"
    assert all(p.dtype == torch.float32 for p in model.parameters())  # float16 files cast back
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        if name in ("dit-tiny", "unet-tiny", "latent-dit-tiny"):
            c, s = model.in_channels, model.config.input_size
            x = torch.randn(2, c, s, s, generator=g)
            out = model(x, torch.tensor([10.0, 900.0]), torch.tensor([0, 3]))
            assert out.shape == x.shape and torch.isfinite(out).all()
        elif name == "vae":
            x = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
            mean, logvar = model.encode(x)
            assert model.decode(mean).shape == x.shape
        elif name == "relic-classifier":
            assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
        else:  # the video DiT and the clip checker run in notebook 13 and their own tests
            assert sum(p.numel() for p in model.parameters()) > 10_000


def test_unknown_names_and_missing_files_are_explained(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown pretrained model 'dit-huge'"):
        load_pretrained("dit-huge")
    monkeypatch.setenv("DIT_MINI_ASSETS", str(tmp_path))
    assert assets_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="known models"):
        asset_path("dit-tiny")
