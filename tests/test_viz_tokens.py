"""Pictures and measurements of notebook 05 (mystic lens): each one shows what it claims."""

import numpy as np
import pytest
import torch

from dit_mini.course import viz_tokens
from dit_mini.models.attention import explicit_attention
from dit_mini.models.dit import patchify
from dit_mini.models.embeddings import sincos_2d
from dit_mini.viz import to_uint8


@pytest.fixture(scope="module")
def image():
    return torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_patch_grid_view_shows_every_token_as_a_row(image):
    fig = viz_tokens.patch_grid_view(image, 4)
    left, right = fig.axes
    assert "16 tokens" in left.get_title()
    assert [t.get_text() for t in left.texts] == [str(i) for i in range(16)]
    rows = right.images[0].get_array()
    assert rows.shape == (16, 16, 3)  # 16 tokens, each a strip of 4 * 4 pixels
    tokens = patchify(image[None], 4)[0].reshape(16, 16, 3)  # (L, p*p, C)
    expected = to_uint8(tokens.permute(2, 0, 1)[None])[0]  # (L, p*p, C) as pixels
    np.testing.assert_array_equal(rows, expected)
    # token 5 is the patch at grid row 1, column 1: its first pixel is image[:, 4, 4]
    np.testing.assert_array_equal(rows[5, 0], to_uint8(image[:, 4:5, 4:5][None])[0, 0, 0])
    assert len(viz_tokens.patch_grid_view(image, 1).axes[0].texts) == 0  # 256 tokens: no labels
    with pytest.raises(ValueError, match="patch size 3"):
        viz_tokens.patch_grid_view(image, 3)


def test_position_similarity_is_one_at_the_token_and_symmetric():
    emb = sincos_2d(64, 8)
    sim = viz_tokens.position_similarity(emb, 27)
    assert sim.shape == (64,) and torch.isclose(sim[27], torch.tensor(1.0))
    assert int(sim.argmax()) == 27 and float(sim.max()) <= 1 + 1e-6
    assert torch.isclose(sim[5], viz_tokens.position_similarity(emb, 5)[27])
    # neighbours are more alike than far tokens: (3, 3) vs (3, 4) and vs (7, 0)
    assert sim[3 * 8 + 4] > sim[7 * 8 + 0]


def test_position_view_marks_the_chosen_token():
    fig = viz_tokens.position_view(32, 4, row=1, col=2)
    heat = fig.axes[0].images[0].get_array()
    assert heat.shape == (4, 4) and np.isclose(heat[1, 2], 1.0)
    assert fig.axes[0].lines[0].get_xdata()[0] == 2 and fig.axes[0].lines[0].get_ydata()[0] == 1
    matrix = [ax for ax in fig.axes if ax.images][1]
    assert matrix.images[0].get_array().shape == (16, 32)


def test_time_call_returns_the_median_and_runs_the_warmup():
    calls = []
    seconds = viz_tokens.time_call(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and 0 <= seconds < 0.1
    with pytest.raises(ValueError, match="repeats"):
        viz_tokens.time_call(lambda: None, repeats=0)


def test_saved_bytes_counts_the_attention_matrix():
    L, d = 64, 8
    q = torch.randn(1, 2, L, d, requires_grad=True)
    total = viz_tokens.saved_bytes(lambda: explicit_attention(q, q, q)[0], exclude=[q])
    # at least the (1, 2, L, L) float32 softmax output is kept for the backward pass
    assert total >= 2 * L * L * 4
    bigger = torch.randn(1, 2, 2 * L, d, requires_grad=True)
    ratio = viz_tokens.saved_bytes(lambda: explicit_attention(bigger, bigger, bigger)[0]) / total
    assert 3.0 < ratio <= 4.5  # twice the tokens, about four times the memory
    with torch.no_grad():
        assert viz_tokens.saved_bytes(lambda: explicit_attention(q, q, q)[0]) == 0


def test_token_cost_curves_plot_the_rows():
    rows = [
        dict(
            tokens=L,
            ms=L**2 / 100,
            gflops_linear=L / 1e3,
            gflops_attention=L**2 / 1e5,
            saved_MB=L**2 / 1e4,
        )  # fmt: skip
        for L in (16, 64, 256)
    ]
    fig = viz_tokens.token_cost_curves(rows)
    assert len(fig.axes) == 3
    assert list(fig.axes[1].lines[1].get_ydata()) == [r["gflops_attention"] for r in rows]
    assert list(fig.axes[2].lines[0].get_xdata()) == [16, 64, 256]
    assert [t.get_text() for t in fig.axes[0].texts] == ["x16.0", "x16.0"]  # time grows as L^2
    with pytest.raises(ValueError, match="at least one"):
        viz_tokens.token_cost_curves([])
