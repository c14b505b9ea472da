import pytest
import torch

from dit_mini.diffusion.losses import DiffusionConfig
from dit_mini.metrics.flops import count_gflops_by_op
from dit_mini.models.attention import attention_weights
from dit_mini.models.dit import DiT, dit_config, modulate
from dit_mini.studies.attention_maps import (
    COLOUR_WORDS,
    attention_cost,
    attention_maps,
    colour_cross_attention,
    mean_attention_distance,
    merge_heads,
    noisy_input,
    patch_colour_tokens,
    split_heads,
    word_tokens,
)


@pytest.fixture(scope="module")
def trained_like():
    """A small DiT with every weight random (adaLN-Zero zeros would make attention trivial)."""
    torch.manual_seed(0)
    model = DiT(dit_config("nano", depth=2, input_size=16))
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.1)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 16, 16, generator=g)
    return model.eval(), x, torch.tensor([100.0, 900.0]), torch.tensor([3, 10])


def test_maps_have_one_distribution_per_query(trained_like):
    model, x, t, y = trained_like
    maps = attention_maps(model, x, t, y)
    assert maps.shape == (2, 2, 3, 16, 16)  # (B, layers, heads, L, L), L = (16 / 4)^2
    assert torch.allclose(maps.sum(-1), torch.ones(2, 2, 3, 16))
    assert (maps >= 0).all()
    assert not torch.allclose(maps[0], maps[1])  # different inputs, different maps


def test_maps_match_running_the_blocks_by_hand(trained_like):
    model, x, t, y = trained_like
    maps = attention_maps(model, x, t, y)
    with torch.no_grad():
        tokens = model.x_embedder(x) + model.pos_embed
        c = model.embed_condition(t, y, len(x))
        for i, block in enumerate(model.blocks):
            shift, scale = block.adaLN_modulation(c).chunk(6, dim=1)[:2]
            h = modulate(block.norm1(tokens), shift, scale)
            _, weights = block.attn(h, return_weights=True)
            assert torch.allclose(maps[:, i], weights, atol=1e-6)
            tokens = block(tokens, c)


def test_capture_leaves_the_model_and_its_output_unchanged(trained_like):
    model, x, t, y = trained_like
    with torch.no_grad():
        before = model(x, t, y)
    attention_maps(model, x, t, y)
    with torch.no_grad():
        after = model(x, t, y)
    assert torch.equal(before, after)
    assert all(not m._forward_hooks for m in model.modules())
    assert all(block.attn.fused for block in model.blocks)


def test_maps_need_attention_layers():
    with pytest.raises(ValueError, match="no Attention layers"):
        attention_maps(torch.nn.Conv2d(3, 3, 1), torch.zeros(1, 3, 4, 4), torch.zeros(1))


def test_split_and_merge_heads_are_inverse_and_match_attention_layout():
    x = torch.arange(2 * 5 * 12.0).reshape(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    assert torch.equal(heads[1, 2, 4], x[1, 4, 8:12])  # head h holds channels h*d ... (h+1)*d
    assert torch.equal(merge_heads(heads), x)
    with pytest.raises(ValueError, match="must divide"):
        split_heads(x, 5)


def test_attention_cost_matches_the_flop_counter():
    config = dit_config("nano", depth=2, input_size=16)
    cost = attention_cost(config.num_patches, config.hidden_size, config.num_heads)
    assert cost["weights"] == 3 * 16 * 16
    measured = count_gflops_by_op(DiT(config))["aten.bmm"] * 1e9
    assert measured == pytest.approx(config.depth * cost["macs"])
    with pytest.raises(ValueError, match="dividing width"):
        attention_cost(64, 100, 3)


def test_noisy_input_follows_each_objective():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 3, 8, 8, generator=g)
    x_t, t = noisy_input(x0, eps, 0.25, DiffusionConfig(objective="flow"))
    assert torch.allclose(x_t, 0.75 * x0 + 0.25 * eps) and torch.all(t == 250.0)
    config = DiffusionConfig(objective="eps", num_timesteps=101)
    x_t, t = noisy_input(x0, eps, 0.5, config)
    assert t.dtype == torch.long and torch.all(t == 50)
    assert torch.allclose(x_t, config.make_schedule().add_noise(x0, eps, t))
    with pytest.raises(ValueError, match="must lie in"):
        noisy_input(x0, eps, 1.5, config)


def test_mean_attention_distance_of_simple_maps():
    L = 16
    assert mean_attention_distance(torch.eye(L), 4) == 0  # every patch looks at itself
    # every query looking at patch 0 (top-left corner) averages the distances to the corner
    corner = torch.zeros(L, L)
    corner[:, 0] = 1.0
    r, c = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    expected = (r**2 + c**2).sqrt().mean()
    assert torch.allclose(mean_attention_distance(corner[None], 4), expected[None])
    with pytest.raises(ValueError, match="grid"):
        mean_attention_distance(torch.eye(15), 4)


def test_colour_cross_attention_listens_to_the_nearest_colour():
    words = ["crimson", "azure", "snow"]
    colours = torch.tensor([COLOUR_WORDS[w] for w in words])  # (3, 3)
    images = colours[[0, 1, 2, 1]].reshape(1, 4, 3).permute(0, 2, 1).reshape(1, 3, 2, 2)
    images = images.repeat_interleave(4, -1).repeat_interleave(4, -2)  # 2x2 patches of 4x4
    patches = patch_colour_tokens(images, 4)
    assert patches.shape == (1, 4, 4) and torch.all(patches[..., 3] == 1)
    layer = colour_cross_attention(sharpness=50.0)
    out, weights = layer(patches, word_tokens(words)[None], return_weights=True)
    assert weights.shape == (1, 1, 4, 3)
    assert weights[0, 0].argmax(-1).tolist() == [0, 1, 2, 1]
    assert torch.allclose(out[0, :, :3], colours[[0, 1, 2, 1]], atol=1e-3)  # repainted
    # the scores are -sharpness * squared colour distance, up to a per-query constant
    q, k = 2 * 50.0**0.5 * patches, 2 * 50.0**0.5 * word_tokens(words)
    assert torch.allclose(weights[0, 0], attention_weights(q[0], k), atol=1e-6)
    with pytest.raises(ValueError, match="unknown colour words"):
        word_tokens(["plaid"])
