import pytest
import torch

from dit_mini.diffusion.guidance import combine_guidance, drop_labels, guided
from dit_mini.models.dit import DiT, dit_config


def _random_dit(**kw):
    torch.manual_seed(0)
    model = DiT(dit_config("nano", hidden_size=48, depth=2, num_heads=2, input_size=16, **kw))
    for p in model.parameters():
        p.data.normal_(0, 0.1)
    return model


@pytest.mark.parametrize("scale", [0.5, 1.0 + 1e-6, 2.5, 4.0])
def test_guided_output_is_uncond_plus_scale_times_the_difference(scale):
    """Both passes computed separately here, the null label spelled out: nothing short-circuits
    (scale 1 + 1e-6 goes through the batched 2B pass and must land on the conditional output)."""
    model = _random_dit()
    x, t, y = torch.randn(2, 3, 16, 16), torch.tensor([10, 500]), torch.tensor([1, 2])
    with torch.no_grad():
        cond = model(x, t, y)
        uncond = model(x, t, torch.full_like(y, model.null_class))
        out = guided(model, scale)(x, t, y)
    torch.testing.assert_close(out, uncond + scale * (cond - uncond), atol=1e-5, rtol=1e-5)
    if scale == 1.0 + 1e-6:
        torch.testing.assert_close(out, cond, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(cond, uncond, atol=1e-3)  # the label matters, so the test can fail


def test_guides_all_channels_and_passes_learned_sigma():
    model = _random_dit(in_channels=4, learn_sigma=True)
    x, t, y = torch.randn(2, 4, 16, 16), torch.tensor([10, 500]), torch.tensor([1, 2])
    cond, uncond = model(x, t, y), model(x, t, None)
    out = guided(model, 3.0)(x, t, y)
    assert out.shape == (2, 8, 16, 16)
    expected = uncond[:, :4] + 3.0 * (cond[:, :4] - uncond[:, :4])
    assert torch.allclose(out[:, :4], expected, atol=1e-5)  # all 4 channels, not just 3
    assert torch.allclose(out[:, 4:], cond[:, 4:], atol=1e-6)  # variance from the conditional pass


def test_scale_zero_is_unconditional():
    cond, uncond = torch.randn(1, 2, 2, 2), torch.randn(1, 2, 2, 2)
    assert torch.equal(combine_guidance(cond, uncond, 0.0, 2), uncond)


def test_drop_labels_rate_and_seed():
    y = torch.zeros(10000, dtype=torch.long)
    a = drop_labels(y, 0.1, 10, torch.Generator().manual_seed(0))
    b = drop_labels(y, 0.1, 10, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert 0.08 < (a == 10).float().mean().item() < 0.12
    assert set(a.unique().tolist()) == {0, 10}
    with pytest.raises(ValueError, match="null class"):
        drop_labels(y, 0.1, None)


def test_guidance_needs_null_class():
    model = _random_dit(class_dropout_prob=0.0)
    with pytest.raises(ValueError, match="null class"):
        guided(model, 2.0)
