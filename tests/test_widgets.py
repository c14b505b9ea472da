"""The notebooks' pictures: each figure shows exactly the data its arguments describe."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from dit_mini.course import widgets
from dit_mini.diffusion.schedules import cosine_schedule, linear_schedule
from dit_mini.viz import to_uint8


@pytest.fixture(scope="module")
def schedules():
    return [linear_schedule(1000), cosine_schedule(1000)]


@pytest.fixture(scope="module")
def image():
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 8, 8, generator=g) * 2 - 1
    return x0, torch.randn(3, 8, 8, generator=g)


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def test_snr_db_is_ten_log10_of_the_snr(schedules):
    linear = schedules[0]
    assert torch.allclose(widgets.snr_db(linear), 10 * torch.log10(linear.snr()))
    t = torch.tensor([0, 259, 999])
    assert torch.allclose(widgets.snr_db(linear, t), widgets.snr_db(linear)[t])
    # alpha_bar crosses 1/2 (0 dB) between t = 258 and 259 for the linear schedule
    assert widgets.snr_db(linear)[258] > 0 > widgets.snr_db(linear)[259]


def test_image_rows_draws_every_image_unchanged():
    rows = {"a": torch.rand(3, 3, 4, 4) * 2 - 1, "b": torch.rand(3, 3, 4, 4) * 2 - 1}
    fig = widgets.image_rows(rows, ["x", "y", "z"], captions={"b": ["1", "2", "3"]}, title="t")
    axes = image_axes(fig)
    assert len(axes) == 6
    np.testing.assert_array_equal(axes[4].images[0].get_array(), to_uint8(rows["b"])[1])
    assert [ax.get_title() for ax in axes[:3]] == ["x", "y", "z"]
    assert axes[0].get_ylabel() == "a" and axes[5].get_xlabel() == "3"
    with pytest.raises(ValueError, match="same number"):
        widgets.image_rows({"a": torch.zeros(2, 3, 4, 4), "b": torch.zeros(3, 3, 4, 4)})
    with pytest.raises(ValueError, match="column titles"):
        widgets.image_rows({"a": torch.zeros(2, 3, 4, 4)}, ["only one"])


def test_fog_grid_shows_the_forward_process(schedules, image):
    x0, eps = image
    steps = [0, 250, 999]
    fig = widgets.fog_grid(x0, eps, schedules, steps)
    axes = image_axes(fig)
    assert len(axes) == len(schedules) * len(steps)
    for r, s in enumerate(schedules):
        expected = s.add_noise(
            x0.expand(3, -1, -1, -1), eps.expand(3, -1, -1, -1), torch.tensor(steps)
        )
        for c in range(len(steps)):
            shown = axes[r * len(steps) + c].images[0].get_array()
            np.testing.assert_array_equal(shown, to_uint8(expected)[c])
    assert axes[1].get_xlabel() == f"SNR {float(widgets.snr_db(schedules[0])[250]):+.1f} dB"


def test_schedule_curves_plot_alpha_bar_snr_and_crossings(schedules):
    fig = widgets.schedule_curves(schedules, t=300)
    left, right = fig.axes
    curves = [line.get_ydata() for line in left.lines if len(line.get_ydata()) == 1000]
    np.testing.assert_allclose(curves[1], schedules[1].alpha_bar.numpy())
    markers = {round(line.get_xdata()[0]) for line in right.lines if line.get_marker() == "o"}
    assert markers == {259, 496}  # first steps below 0 dB, linear and cosine
    cursors = [line for line in right.lines if line.get_linestyle() == "--"]
    assert [float(line.get_xdata()[0]) for line in cursors] == [300.0]


def test_fog_view_matches_the_slider(schedules, image):
    x0, eps = image
    fig = widgets.fog_view(x0, eps, 420, schedules)
    axes = image_axes(fig)
    assert len(axes) == 2
    expected = schedules[1].add_noise(x0[None], eps[None], torch.tensor([420]))
    np.testing.assert_array_equal(axes[1].images[0].get_array(), to_uint8(expected)[0])
    assert "t = 420" in axes[1].get_title()
    snr_axis = [ax for ax in fig.axes if not ax.images][0]
    assert any(
        line.get_linestyle() == "--" and line.get_xdata()[0] == 420 for line in snr_axis.lines
    )


def test_reparam_view_links_each_eps_to_mu_plus_sigma_eps():
    eps = torch.randn(500, generator=torch.Generator().manual_seed(1))
    fig = widgets.reparam_view(1.5, 0.5, eps, lines=10)
    links = [line for line in fig.axes[0].lines if len(line.get_xdata()) == 2]
    assert len(links) == 10
    for line, e in zip(links, eps[:10].tolist()):
        start, end = line.get_xdata()
        assert start == pytest.approx(e) and end == pytest.approx(1.5 + 0.5 * e)
    assert f"mean {float(1.5 + 0.5 * eps.double().mean()):+.2f}" in fig.axes[0].get_title()


def test_histogram_figure_reports_measured_statistics():
    g = torch.Generator().manual_seed(2)
    samples = {"a": torch.randn(4000, generator=g) * 2 + 1, "b": torch.randn(4000, generator=g)}
    fig = widgets.histogram_figure(samples, gaussian=(1.0, 2.0), truth=1.0, xlim=(-5, 7))
    ax = fig.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    a = samples["a"].double()
    assert labels[0] == f"a: mean {a.mean():+.3f}, std {a.std():.3f}"
    assert any("true value" in label for label in labels)
    pdf = [line for line in ax.lines if line.get_linestyle() == "--"][0]
    x, y = pdf.get_xdata(), pdf.get_ydata()
    assert x[0] == -5 and x[-1] == 7
    area = float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)))
    assert area == pytest.approx(1.0, abs=0.01)  # a density, drawn over +-3 std
    assert y.max() == pytest.approx(1 / (2.0 * math.sqrt(2 * math.pi)), rel=1e-3)


def test_show_displays_a_png(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    widgets.show(widgets.histogram_figure({"a": torch.randn(100)}))
    assert len(shown) == 1 and shown[0].data[:8] == b"\x89PNG\r\n\x1a\n"


def test_interactive_view_redraws_on_every_change(monkeypatch):
    ipw = pytest.importorskip("ipywidgets")
    calls = []
    monkeypatch.setattr(widgets, "show", lambda fig: calls.append(fig))

    def render(t, name):
        calls.append((t, name))
        return Figure()

    slider, menu = ipw.IntSlider(value=3, min=0, max=9), ipw.Dropdown(options=["a", "b"], value="a")
    box = widgets.interactive_view(render, t=slider, name=menu)
    assert isinstance(box, ipw.VBox) and list(box.children[0].children) == [slider, menu]
    slider.value = 7
    menu.value = "b"
    values = [c for c in calls if isinstance(c, tuple)]
    assert values == [(3, "a"), (7, "a"), (7, "b")]
    assert sum(isinstance(c, Figure) for c in calls) == 3
