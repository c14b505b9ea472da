import pytest
import torch

from dit_mini.data.clips import NUM_CAPTIONS, caption_id, to_filmstrip, tokenize
from dit_mini.diffusion.guidance import guided
from dit_mini.diffusion.losses import generate
from dit_mini.diffusion.text2video import VIDEO_DIFFUSION, caption_guided, sample_clips
from dit_mini.models.video import (
    TubeletEmbed,
    VideoDiT,
    VideoDiTConfig,
    sincos_3d,
    tubeletify,
    untubeletify,
)
from dit_mini.registry import load_model
from dit_mini.train.config import TrainConfig
from dit_mini.train.trainer import fit

SMALL = VideoDiTConfig(hidden_size=48, depth=2, num_heads=2, text_width=32, text_depth=1)


def _trained_like(seed: int = 0) -> VideoDiT:
    """A small model with every weight random (so that zero-initialised paths matter)."""
    torch.manual_seed(seed)
    model = VideoDiT(SMALL)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_tubeletify_round_trip_and_layout():
    x = torch.randn(2, 3, 8, 16, 16)
    tokens = tubeletify(x, 2, 4)
    assert tokens.shape == (2, 64, 2 * 4 * 4 * 3)
    assert torch.equal(untubeletify(tokens, 2, 4, 3, (4, 4, 4)), x)
    # token 1 is time-block 0, row 0, column 1; its first value is frame 0, pixel (0, 4), channel 0
    assert tokens[0, 1, 0] == x[0, 0, 0, 0, 4]
    # token 16 starts the second time block (frames 2 and 3)
    assert tokens[0, 16, 0] == x[0, 0, 2, 0, 0]


def test_tubelet_embed_is_a_linear_map_of_tubeletify():
    torch.manual_seed(0)
    embed = TubeletEmbed(2, 4, 3, 24)
    x = torch.randn(2, 3, 8, 16, 16)
    w = embed.proj.weight  # (D, C, pt, P, P)
    flat = w.permute(0, 2, 3, 4, 1).reshape(24, -1)  # (D, pt*P*P*C), the tubeletify order
    expected = tubeletify(x, 2, 4) @ flat.T + embed.proj.bias
    assert torch.allclose(embed(x), expected, atol=1e-5)


def test_sincos_3d_separates_space_and_time():
    pos = sincos_3d(48, 4, 4, 4)
    assert pos.shape == (64, 48)
    # tokens 0 and 16 share row and column but not time: only the last third differs
    assert torch.equal(pos[0, :32], pos[16, :32]) and not torch.equal(pos[0, 32:], pos[16, 32:])
    with pytest.raises(ValueError, match="divisible by 6"):
        sincos_3d(32, 4, 4, 4)


def test_config_validation_names_the_fix():
    with pytest.raises(ValueError, match="frames=8 is not divisible by its tubelet side 3"):
        VideoDiTConfig(tubelet_t=3)
    with pytest.raises(ValueError, match="hidden_size 100"):
        VideoDiTConfig(hidden_size=100)
    assert VideoDiTConfig().num_tokens == 64 and VideoDiTConfig().grid == (4, 4, 4)
    assert VideoDiTConfig().null_class == NUM_CAPTIONS
    assert VideoDiTConfig(class_dropout_prob=0).null_class is None


def test_forward_shape_and_adaln_zero_identity_at_init():
    model = VideoDiT(SMALL)
    x = torch.randn(3, 3, 128, 16)
    out = model(x, torch.rand(3), torch.tensor([0, 5, NUM_CAPTIONS]))
    assert out.shape == x.shape
    assert torch.count_nonzero(out) == 0  # adaLN-Zero: the network starts at zero
    for block in model.blocks:  # and every block is the identity map
        tokens = torch.randn(3, 64, 48)
        context = torch.randn(3, 5, 32)
        assert torch.equal(block(tokens, torch.randn(3, 48), context), tokens)
    with pytest.raises(ValueError, match="film strip"):
        model(torch.randn(3, 3, 16, 16), torch.rand(3), None)


def test_caption_ids_tokens_and_none_agree():
    model = _trained_like()
    x, t = torch.randn(2, 3, 128, 16), torch.rand(2)
    text = ["a gold ring growing", "an azure sword spinning left"]
    ids = torch.as_tensor([caption_id(3, 1, 3), caption_id(0, 3, 0)])
    by_id, by_tokens = model(x, t, ids), model(x, t, tokenize(text))
    assert torch.allclose(by_id, by_tokens, atol=1e-6)
    empty = model(x, t, torch.full((2,), NUM_CAPTIONS))
    assert torch.allclose(model(x, t, None), empty, atol=1e-6)
    assert torch.allclose(model(x, t, tokenize(["", ""])), empty, atol=1e-6)
    assert not torch.allclose(by_id, empty, atol=1e-3)  # the caption changes the prediction


def test_caption_guidance_extrapolates_from_the_empty_caption():
    model = _trained_like()
    x, t = torch.randn(2, 3, 128, 16), torch.rand(2)
    y = tokenize(["a gold ring growing", "a violet key sliding right"])
    cond, uncond = model(x, t, y), model(x, t, tokenize(["", ""]))
    assert caption_guided(model, 1.0) is model
    assert torch.allclose(caption_guided(model, 0.0)(x, t, y), uncond, atol=1e-5)
    w = 3.0
    assert torch.allclose(
        caption_guided(model, w)(x, t, y), uncond + w * (cond - uncond), atol=1e-4
    )
    ids = torch.tensor([caption_id(3, 1, 3), 7])  # ids: the package's guided() agrees
    assert torch.allclose(
        caption_guided(model, w)(x, t, ids), guided(model, w)(x, t, ids), atol=1e-5
    )


def test_sampling_is_seeded_and_generate_runs_on_ids():
    model = _trained_like()
    a = sample_clips(
        model, ["a gold ring growing"], steps=3, generator=torch.Generator().manual_seed(1)
    )
    b = sample_clips(
        model, ["a gold ring growing"], steps=3, generator=torch.Generator().manual_seed(1)
    )
    assert a.shape == (1, 3, 8, 16, 16) and torch.equal(a, b)
    strips = generate(
        model, VIDEO_DIFFUSION, y=torch.tensor([4]), sampler="euler", steps=2, cfg_scale=2.0,
        shape=(3, 128, 16), generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    assert strips.shape == (1, 3, 128, 16)


def test_package_trainer_fits_clips_and_export_loads(tmp_path):
    from dit_mini.train.text2video import _export

    torch.manual_seed(0)
    clips = torch.rand(8, 3, 8, 16, 16) * 2 - 1
    labels = torch.arange(8) * 20
    model = VideoDiT(SMALL)
    from dit_mini.diffusion.losses import make_loss

    config = TrainConfig(steps=3, batch_size=4, lr=1e-3, log_every=1)
    result = fit(
        model, make_loss(VIDEO_DIFFUSION), (to_filmstrip(clips), labels), config, quiet=True
    )
    assert result.step == 3 and len(result.history) == 3
    path = tmp_path / "v.safetensors"
    _export(result.ema, path, {"model": {}})
    loaded = load_model(path)
    x, t, y = torch.randn(2, 3, 128, 16), torch.rand(2), torch.tensor([1, 2])
    assert torch.allclose(loaded(x, t, y), result.ema.eval()(x, t, y), atol=2e-2)
    with pytest.raises(ValueError, match="caption ids"):
        loaded(x, t, torch.tensor([0, NUM_CAPTIONS + 1]))
