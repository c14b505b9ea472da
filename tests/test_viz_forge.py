"""Tests of dit_mini.course.viz_forge: cost counts that encode the math, and the forge pictures."""

import pytest
import torch
from matplotlib.figure import Figure

from dit_mini.course.viz_forge import (
    attention_cost,
    decode_path,
    forge_view,
    sampling_gflops,
    size_sweep,
    size_sweep_figure,
    training_rate,
    vae_gflops,
)
from dit_mini.course.viz_sampling import SamplingPath
from dit_mini.diffusion.losses import DiffusionConfig, make_loss
from dit_mini.metrics.flops import count_gflops
from dit_mini.models.dit import DiT, dit_config
from dit_mini.models.vae import VAE, vae_config


def test_attention_cost_is_two_square_matmuls_per_block():
    for size, patch, width, depth in [(32, 4, 192, 6), (8, 1, 96, 2), (32, 2, 192, 6)]:
        tokens, gflops = attention_cost(size, patch, width, depth)
        assert tokens == (size // patch) ** 2
        assert gflops == pytest.approx(depth * 2 * tokens**2 * width / 1e9, rel=1e-9)


def test_halving_the_patch_quadruples_tokens_and_multiplies_attention_by_16():
    t4, a4 = attention_cost(32, 4)
    t2, a2 = attention_cost(32, 2)
    assert t2 == 4 * t4
    assert a2 == pytest.approx(16 * a4)


def test_vae_gflops_match_a_hand_count_of_the_first_conv():
    vae = VAE(vae_config("vae-nano"))
    cost = vae_gflops(vae)
    assert set(cost) == {"encoder", "decoder"}
    first_conv = 32 * 32 * 16 * 3 * 3 * 3 / 1e9  # encoder's 3x3 conv, 3 -> 16 channels
    assert first_conv < cost["encoder"] < 1.0 and 0 < cost["decoder"] < 1.0


def test_sampling_gflops_counts_steps_guidance_and_one_decode():
    with torch.device("meta"):
        model = DiT(dit_config("nano", num_classes=10))
    one = count_gflops(model)
    assert sampling_gflops(model, 10, guidance=False) == pytest.approx(10 * one)
    assert sampling_gflops(model, 10, True, decoder_gflops=0.5) == pytest.approx(20 * one + 0.5)
    with pytest.raises(ValueError, match="steps"):
        sampling_gflops(model, 0)


def test_size_sweep_latents_have_factor_squared_fewer_tokens():
    rows = size_sweep([32, 64], patch_size=2, factor=8, preset="nano")
    assert [r["pixel_tokens"] for r in rows] == [256, 1024]
    assert [r["latent_tokens"] for r in rows] == [4, 16]
    # attention is quadratic, so the saving grows with the image
    ratios = [r["pixel_gflops"] / r["latent_gflops"] for r in rows]
    assert ratios[1] > ratios[0] > 16
    with pytest.raises(ValueError, match="divisible"):
        size_sweep([40], patch_size=2, factor=8)
    assert isinstance(size_sweep_figure(rows), Figure)


def test_training_rate_trains_and_reports_images_per_second():
    torch.manual_seed(0)
    model = DiT(dit_config("nano", input_size=8, patch_size=2, in_channels=4, num_classes=10))
    before = [p.detach().clone() for p in model.parameters()]
    x0 = torch.randn(4, 4, 8, 8)
    rate = training_rate(model, make_loss(DiffusionConfig()), x0, torch.arange(4), seconds=0.0,
                         windows=1, generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert rate > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def _latent_path(S: int = 3, B: int = 2) -> SamplingPath:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(S, B, 4, 8, 8, generator=g)
    return SamplingPath("Euler", [f"t = {i}" for i in range(S)], z, 0.5 * z)


def test_decode_path_decodes_every_frame_in_order():
    path = _latent_path()
    decoded = decode_path(
        path, lambda z: z.repeat_interleave(4, -1).repeat_interleave(4, -2)[:, :3]
    )
    assert decoded.x_t.shape == (3, 2, 3, 32, 32) and decoded.times == path.times
    assert torch.equal(decoded.x_t[1, 0, :, ::4, ::4], path.x_t[1, 0, :3].clamp(-1, 1))
    assert torch.equal(decoded.x0_hat[2, 1, :, ::4, ::4], path.x0_hat[2, 1, :3].clamp(-1, 1))


def test_forge_view_rows_and_bad_index():
    latent = _latent_path()
    decoded = SamplingPath(
        "d", latent.times, torch.zeros(3, 2, 3, 32, 32), torch.zeros(3, 2, 3, 32, 32)
    )
    fig = forge_view(latent, decoded, 1, columns=["a", "b"])
    assert len(fig.axes) == 6 * 2  # four latent channels, decoded x_t and guess; two columns
    assert len(forge_view(latent, decoded, 2, pixel=decoded).axes) == 8 * 2
    with pytest.raises(ValueError, match="outside"):
        forge_view(latent, decoded, 3)
