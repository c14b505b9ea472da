import pytest
import torch
from matplotlib.figure import Figure

from dit_mini.course.viz_attention import (
    attention_distance_figure,
    attention_view,
    colour_words_view,
    head_grid_figure,
    query_weights,
)
from dit_mini.data.relics import make_relics


@pytest.fixture(scope="module")
def maps():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 16, 16, generator=g).softmax(-1)  # (layers, heads, L, L), 4x4 grid


def test_query_weights_is_the_query_row_on_the_grid(maps):
    w = query_weights(maps, 1, 2)
    assert w.shape == (2, 3, 4, 4)
    assert torch.equal(w[1, 2].flatten(), maps[1, 2, 1 * 4 + 2])
    with pytest.raises(ValueError, match="outside"):
        query_weights(maps, 4, 0)


def test_attention_view_draws_the_chosen_heads_weights(maps):
    image = torch.rand(3, 16, 16) * 2 - 1
    fig = attention_view(image, image, maps, 1, 2, 3, 0, level=0.5)
    heat = fig.axes[1].images[1].get_array()  # the overlay: weights scaled to their maximum
    expected = query_weights(maps[1, 2], 3, 0)
    assert torch.allclose(torch.as_tensor(heat.data).float(), expected / expected.max())
    numbers = fig.axes[2].images[0].get_array()  # the same weights in percent
    assert torch.allclose(torch.as_tensor(numbers.data).float(), 100 * expected)
    with pytest.raises(ValueError, match="do not exist"):
        attention_view(image, image, maps, 2, 0, 0, 0)


def test_head_grid_and_distance_figures(maps):
    image = torch.zeros(3, 16, 16)
    grid = head_grid_figure(image, maps, 0, 0)
    assert sum(1 for ax in grid.axes if ax.images) == 6  # 2 layers x 3 heads
    distances = torch.rand(4, 2, 3)
    fig = attention_distance_figure([0.1, 0.4, 0.7, 0.9], distances, uniform=2.0)
    means = [line for line in fig.axes[0].lines if line.get_linestyle() == "-"]
    assert len(means) == 4
    assert torch.allclose(torch.as_tensor(means[2].get_ydata()), distances[2].mean(-1).double())


def test_colour_words_view_repaints_with_the_words():
    relic = make_relics(1, seed=3).images[0]
    fig = colour_words_view(relic, ["snow", "crimson", "azure"], sharpness=8.0)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5  # relic, one panel per word, repainted
    with pytest.raises(ValueError, match="unknown colour words"):
        colour_words_view(relic, ["plaid"], 8.0)
