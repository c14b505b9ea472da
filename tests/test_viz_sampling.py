"""Pictures of notebooks 00 and 03: each shows exactly the images and numbers it is given, and the
recorded sampling paths are the samplers' own paths."""

import numpy as np
import pytest
import torch

from dit_mini.course import viz_sampling as vs
from dit_mini.data.relics import RELIC_CLASSES, make_relics
from dit_mini.diffusion.samplers import ddpm_sample, euler_sample
from dit_mini.diffusion.schedules import linear_schedule
from dit_mini.viz import to_uint8


def shown(fig):
    """The pixel arrays of every image panel, in drawing order."""
    return [ax.images[0].get_array() for ax in fig.axes if ax.images]


def test_boss_grid_puts_each_class_on_its_own_row():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(6, 3, 4, 4, generator=g) * 2 - 1
    labels = torch.tensor([2, 0, 2, 0, 1, 1])
    fig = vs.boss_grid(images, labels, ["sword", "shield", "flask"])
    rows = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert rows == ["sword", "shield", "flask"]
    order = [1, 3, 4, 5, 0, 2]  # class 0 first, then 1, then 2, each in the order given
    for pixels, i in zip(shown(fig), order):
        assert np.array_equal(np.asarray(pixels), to_uint8(images[i : i + 1])[0])
    with pytest.raises(ValueError, match="counts"):
        vs.boss_grid(images[:5], labels[:5], ["sword", "shield", "flask"])


def test_relic_browser_shows_the_datasets_relics_of_the_class():
    fig = vs.relic_browser("flask", seed=3, n=4)
    data = make_relics(40, seed=3, cache=False)
    k = RELIC_CLASSES.index("flask")
    expected = to_uint8(data.images[data.labels == k][:4])
    pixels = shown(fig)
    assert len(pixels) == 4
    for got, want in zip(pixels, expected):
        assert np.array_equal(np.asarray(got), want)
    captions = [" ".join(ax.get_xlabel().split()) for ax in fig.axes if ax.images]
    wanted = [c for c, lab in zip(data.captions, data.labels.tolist()) if lab == k][:4]
    assert captions == wanted and all("flask" in c for c in captions)
    other = shown(vs.relic_browser(k, seed=4, n=4))
    assert not np.array_equal(np.asarray(other[0]), np.asarray(pixels[0]))
    with pytest.raises(ValueError, match="unknown relic class"):
        vs.relic_browser("spear", seed=0)


class ShrinkingEps:
    """A fake eps-model: predicts 0.3 x_t (deterministic, depends on x_t and on nothing else)."""

    def __call__(self, x, t, y=None):
        return 0.3 * x


def test_ddpm_path_is_ddpm_samples_path_with_its_guesses():
    schedule = linear_schedule(50)
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    model = ShrinkingEps()
    path = vs.ddpm_path(model, schedule, x_T, every=10, generator=torch.Generator().manual_seed(2))
    final, xs = ddpm_sample(model, schedule, x_T, generator=torch.Generator().manual_seed(2),
                            trajectory=True)  # fmt: skip
    assert path.times == ["t = 49", "t = 39", "t = 29", "t = 19", "t = 9", "t = 0", "done"]
    assert torch.equal(path.x_t[-1], final) and torch.equal(path.x0_hat[-1], final)
    for frame, t in enumerate([49, 39, 29, 19, 9, 0]):
        x_t = xs[49 - t]  # xs[k] is the image after k steps
        assert torch.equal(path.x_t[frame], x_t)
        _, x0 = schedule.to_eps_x0(0.3 * x_t, x_t, torch.full((2,), t), "eps")
        assert torch.allclose(path.x0_hat[frame], x0.clamp(-1, 1))


def test_flow_path_guesses_are_exact_for_a_straight_path():
    # a model whose velocity is a constant c: from x_T the path is x_t = x_T - (1 - t) c, so the
    # guess x_t - t c is x_T - c at every step, which is also where the sampler ends
    c = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(4))

    def model(x, t, y=None):
        return c.expand_as(x)

    path = vs.flow_path(model, x_T, steps=5)
    assert len(path) == 6 and path.times[0] == "t = 1.00" and path.times[-1] == "done"
    assert torch.allclose(path.x_t[-1], euler_sample(model, x_T, steps=5))
    assert torch.allclose(path.x0_hat, (x_T - c).expand(6, -1, -1, -1, -1), atol=1e-6)
    assert torch.allclose(path.x_t[0], x_T)


def test_trajectory_view_draws_the_frame_it_is_asked_for():
    g = torch.Generator().manual_seed(5)
    xs, guesses = torch.rand(3, 2, 3, 4, 4, generator=g), torch.rand(3, 2, 3, 4, 4, generator=g)
    path = vs.SamplingPath("DDPM", ["t = 9", "t = 0", "done"], xs * 2 - 1, guesses * 2 - 1)
    pixels = shown(vs.trajectory_view(path, 1))
    expected = list(to_uint8(path.x_t[1])) + list(to_uint8(path.x0_hat[1]))
    assert all(np.array_equal(np.asarray(a), b) for a, b in zip(pixels, expected))
    with pytest.raises(ValueError, match="outside"):
        vs.trajectory_view(path, 3)


def test_speedrun_figure_plots_the_measured_numbers():
    rows = [
        dict(steps=s, seconds_per_image=0.01 * s, rms_to_finest=1 / s, class_accuracy=0.2 * i,
             fid=10.0 / s, fid_floor=0.5)
        for i, s in enumerate([1, 2, 4, 8])
    ]  # fmt: skip
    fig = vs.speedrun_figure(rows)
    keys = ["seconds_per_image", "rms_to_finest", "class_accuracy", "fid"]
    for ax, key in zip(fig.axes, keys):
        line = ax.lines[0]
        assert list(line.get_xdata()) == [1, 2, 4, 8]
        assert np.allclose(line.get_ydata(), [r[key] for r in rows])
    assert fig.axes[3].lines[1].get_ydata()[0] == 0.5  # the real-vs-real floor
    with pytest.raises(ValueError):
        vs.speedrun_figure([])


def test_loss_figure_plots_history_and_its_average():
    history = [1.0, 0.5, 0.25, 0.125]
    fig = vs.loss_figure(history)
    raw, mean = fig.axes[0].lines
    assert list(raw.get_ydata()) == history
    assert np.allclose(mean.get_ydata(), history)  # window 1 for four steps
    with pytest.raises(ValueError, match="empty"):
        vs.loss_figure([])


def test_objective_race_figure_draws_both_runs_losses_and_accuracies():
    from dit_mini.course.viz_sampling import objective_race_figure

    points = [{"step": 2, "class_accuracy": 0.2}, {"step": 4, "class_accuracy": 0.5}]
    fig = objective_race_figure(
        {"eps": ([1.0, 0.5, 0.4, 0.3], points), "flow": ([2.0] * 4, points)}
    )
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["eps", "flow"]
    assert list(acc_ax.get_lines()[0].get_ydata()) == [0.2, 0.5]
    with pytest.raises(ValueError, match="no runs"):
        objective_race_figure({})
    with pytest.raises(ValueError, match="empty loss"):
        objective_race_figure({"eps": ([], points)})
