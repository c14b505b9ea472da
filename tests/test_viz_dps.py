import pytest
import torch
from matplotlib.figure import Figure

from dit_mini.course.viz_dps import (
    cost_view,
    gflops_map_figure,
    plot_scaling,
    steps_vs_size_figure,
    table4_figure,
)
from dit_mini.metrics.flops import count_gflops, gflops_report
from dit_mini.models.dit import DiT, dit_config


def _row(name, gflops, loss, fid):
    size, patch = name.split("/")
    curve = [[160 * i, loss + 1.0 / i] for i in range(1, 6)]
    return dict(name=name, size=size, patch_size=int(patch), gflops=gflops, final_loss=loss,
                fid=fid, fid_floor=0.8, n=100, images=800, loss_curve=curve)  # fmt: skip


ROWS = [_row("S/8", 0.001, 0.9, 110.0), _row("M/4", 0.03, 0.4, 40.0), _row("L/2", 0.3, 0.3, 20.0)]


def test_table4_figure_draws_the_papers_numbers_beside_the_counts():
    reports = [gflops_report(name) for name in ("DiT-S/8", "DiT-B/4")]
    fig = table4_figure(reports)
    bars = fig.axes[0].patches
    heights = sorted(b.get_height() for b in bars)
    expected = sorted([0.36, 5.56] + [r["gflops"] for r in reports])
    assert heights == pytest.approx(expected)
    with pytest.raises(ValueError, match="paper"):
        table4_figure([gflops_report("nano")])  # a toy preset has no paper numbers


def test_gflops_map_grows_with_width_and_with_smaller_patches():
    fig = gflops_map_figure(widths=(32, 64), patches=(8, 4), depth=1, heads=2)
    by_patch, by_width = fig.axes[:2]
    for line in by_patch.get_lines():  # Gflops against patch sizes 8, 4: rising
        y = line.get_ydata()
        assert y[1] > y[0]
    for line in by_width.get_lines():  # against widths 32, 64: rising
        y = line.get_ydata()
        assert y[1] > y[0]


def test_cost_view_bill_adds_up_to_the_counted_gflops():
    fig = cost_view(64, 2, 4)
    segments = fig.axes[0].patches
    config = dit_config("nano", hidden_size=64, depth=2, num_heads=4, patch_size=4)
    with torch.device("meta"):
        total = count_gflops(DiT(config))
    assert sum(s.get_width() for s in segments) == pytest.approx(total, rel=1e-9)
    assert not fig.axes[1].axison  # no study rows: the right panel stays empty
    with_rows = cost_view(64, 2, 4, rows=ROWS)
    assert len(with_rows.axes[1].collections) == len(ROWS)


def test_plot_scaling_draws_each_config_and_the_overlay():
    fig = plot_scaling(ROWS, overlay=[_row("S/8", 0.001, 1.1, 150.0)])
    assert isinstance(fig, Figure)
    loss_ax, fid_ax, curve_ax = fig.axes[:3]
    assert len(loss_ax.collections) == len(ROWS) + 1  # one marker per config + the FAST point
    assert len(fid_ax.collections) == len(ROWS)
    assert len(curve_ax.get_lines()) == len(ROWS) + 1  # curves + the overlay's dots
    with pytest.raises(ValueError, match="no results"):
        plot_scaling([])


def test_steps_vs_size_figure_draws_one_line_per_model_and_labels_the_steps():
    def row(name, steps, per_pass, fid, acc):
        return dict(name=name, steps=steps, gflops_per_pass=per_pass,
                    gflops_per_sample=2 * steps * per_pass, fid=fid, fid_floor=0.5,
                    class_accuracy=acc, n=30)  # fmt: skip

    rows = [row("big", 4, 0.2, 6.0, 0.97), row("big", 8, 0.2, 5.5, 0.98),
            row("small", 16, 0.03, 12.0, 0.8), row("small", 32, 0.03, 11.5, 0.82)]  # fmt: skip
    left, right = steps_vs_size_figure(rows).axes
    assert len(left.lines) == 3  # two models and the floor
    assert list(left.lines[0].get_xdata()) == pytest.approx([1.6, 3.2])
    assert list(right.lines[1].get_ydata()) == pytest.approx([80.0, 82.0])
    assert sorted(t.get_text() for t in left.texts) == ["16", "32", "4", "8"]
    for ax in (left, right):  # plain powers of two on the Gflops axis, no minor-tick labels
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]
        assert all(t.get_text() == "" for t in ax.get_xticklabels(minor=True))
    with pytest.raises(ValueError, match="no rows"):
        steps_vs_size_figure([])
