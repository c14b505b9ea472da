"""Notebook 12's pictures report the FID of exactly the points they draw."""

import re

import numpy as np
import pytest
import torch

from dit_mini.course.viz_fid import frechet_playground, sample_count_figure
from dit_mini.metrics.fid import frechet_distance, gaussian_stats


def numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+\.\d+", text)]


def test_playground_scores_the_points_it_draws():
    fig = frechet_playground(shift=1.5, spread=0.5, n=40, seed=3)
    ax = fig.axes[0]
    real, fake = (torch.as_tensor(c.get_offsets(), dtype=torch.float64) for c in ax.collections)
    assert real.shape == fake.shape == (40, 2)
    fid = frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))
    shown_fid, mean_term, cov_term, true_fd = numbers(ax.get_title())
    assert shown_fid == pytest.approx(fid, abs=1e-3)
    assert mean_term == pytest.approx(float((real.mean(0) - fake.mean(0)).square().sum()), abs=1e-3)
    assert mean_term + cov_term == pytest.approx(shown_fid, abs=2e-3)
    assert true_fd == pytest.approx(1.5**2 + 2 * 0.5**2)
    # the generated cloud really is shifted and shrunk
    assert fake[:, 0].mean() > 1.0 and fake[:, 1].std() < 0.7 < real[:, 1].std()


def test_playground_ellipses_are_two_standard_deviations():
    ax = frechet_playground(shift=2.0, spread=0.5, n=100).axes[0]
    lines = {line.get_label(): line.get_xydata() for line in ax.get_lines()}
    radius_real = np.linalg.norm(lines["real: true Gaussian"], axis=1)
    np.testing.assert_allclose(radius_real, 2.0, rtol=1e-9)
    radius_fake = np.linalg.norm(lines["generated: true Gaussian"] - [2.0, 0.0], axis=1)
    np.testing.assert_allclose(radius_fake, 1.0, rtol=1e-9)


def test_playground_shows_the_small_sample_bias():
    """Same distribution on both sides: the true distance is 0, the FID of few points is not."""
    small = numbers(frechet_playground(0.0, 1.0, 10, seed=0).axes[0].get_title())[0]
    large = numbers(frechet_playground(0.0, 1.0, 2000, seed=0).axes[0].get_title())[0]
    assert small > 0.1 > 0.01 > large


def test_playground_rejects_bad_controls():
    with pytest.raises(ValueError, match="n >= 3"):
        frechet_playground(0.0, 1.0, 2)
    with pytest.raises(ValueError, match="spread"):
        frechet_playground(0.0, 0.0, 10)


def test_sample_count_figure_plots_means_bands_and_the_mark():
    ns = [10, 100, 1000]
    fid = torch.tensor([[10.0, 1.0, 0.1], [12.0, 1.2, 0.1]])
    kid = torch.tensor([[0.1, 0.0, -0.01], [-0.1, 0.02, 0.01]])
    fig = sample_count_figure(ns, {"real vs real": fid}, {"real vs real": kid}, mark=100)
    left, right = fig.axes
    assert left.get_xscale() == "log" and left.get_ylabel() == "FID"
    curve = left.get_lines()[0]
    np.testing.assert_allclose(curve.get_xdata(), ns)
    np.testing.assert_allclose(curve.get_ydata(), [11.0, 1.1, 0.1])
    np.testing.assert_allclose(right.get_lines()[0].get_ydata(), [0.0, 0.01, 0.0], atol=1e-12)
    marks = [line for line in left.get_lines() if line.get_linestyle() == ":"]
    assert len(marks) == 1 and np.allclose(marks[0].get_xdata(), [100, 100])
    band = left.collections[0].get_paths()[0].vertices  # mean +- std (std of 10 and 12 is 1.41)
    assert band[:, 1].max() == pytest.approx(11.0 + float(fid[:, 0].std()), rel=1e-6)
    assert len(sample_count_figure(ns, {"x": fid[0]}).axes) == 1  # no KID panel, one repeat
