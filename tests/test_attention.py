import pytest
import torch

from dit_mini.models.attention import (
    Attention,
    CrossAttention,
    attention_weights,
    use_explicit_attention,
)


def test_weights_are_a_distribution():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 3, 5, 8, generator=g), torch.randn(2, 3, 7, 8, generator=g)
    w = attention_weights(q, k)
    assert w.shape == (2, 3, 5, 7)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, 5))


def test_explicit_and_fused_paths_agree():
    torch.manual_seed(0)
    attn = Attention(48, 3)
    x = torch.randn(2, 16, 48)
    fast = attn(x)
    explicit, weights = attn(x, return_weights=True)
    assert weights.shape == (2, 3, 16, 16)
    assert torch.allclose(fast, explicit, atol=1e-5)
    with use_explicit_attention(attn):
        assert attn.fused is False
        assert torch.allclose(attn(x), fast, atol=1e-5)
    assert attn.fused is True


def test_attention_matches_hand_written_formula():
    torch.manual_seed(1)
    attn = Attention(8, 2)
    x = torch.randn(1, 4, 8)
    q, k, v = attn.qkv(x).reshape(1, 4, 3, 2, 4).permute(2, 0, 3, 1, 4)
    w = torch.softmax(q @ k.transpose(-1, -2) / 2.0, -1)
    expected = attn.proj((w @ v).transpose(1, 2).reshape(1, 4, 8))
    assert torch.allclose(attn(x), expected, atol=1e-6)


def test_cross_attention_shapes_and_paths():
    torch.manual_seed(2)
    ca = CrossAttention(32, 16, 4)
    x, ctx = torch.randn(2, 10, 32), torch.randn(2, 5, 16)
    out, w = ca(x, ctx, return_weights=True)
    assert out.shape == (2, 10, 32) and w.shape == (2, 4, 10, 5)
    assert torch.allclose(ca(x, ctx), out, atol=1e-5)


def test_heads_must_divide_width():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        Attention(10, 3)
