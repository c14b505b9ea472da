"""The probes of notebooks 09-13 (DPS, dream factory, forge, fidelity, mastering the art): the
compute bill, the VAE's latents and KL terms, Frechet distance and KID, and the text-to-video
tokens of clips.

One `entry` per graded call (see `dit_mini.course.grading.probe`); the functions above the
table are the references the package has no single function for, and the tests of answers that
are not one value. Assembled by `dit_mini.course.grading.probes`.
"""

from __future__ import annotations

import torch

from .codec import Generator, Pretrained
from .probe import Probe, entry, integer, randn

__all__ = ["PROBES"]


def _halving_ratio_test(output, args) -> str | None:
    """The notebook's check: a ratio FID(4 steps) / FID(8 steps) one could defend."""
    if isinstance(output, bool) or not isinstance(output, (int, float)):
        return f"expected one number, FID at 4 steps divided by FID at 8, got {output!r}"
    return None if 0.6 <= output <= 3.0 else f"{output} is not a defensible ratio (0.6 to 3)"


def _latent_values() -> dict:
    """The VAE's latent shape, compression and token ratio, measured by encoding one image."""
    # deferred: imported where needed, not at the grader's start
    from ...models.pretrained import load_pretrained

    x = torch.zeros(1, 3, 32, 32)
    with torch.no_grad():
        mean = load_pretrained("vae").encode(x)[0]
    shape = tuple(mean.shape[1:])
    ratio = (x.shape[-1] // 2) ** 2 / (mean.shape[-1] // 2) ** 2
    return {
        "latent_shape": shape,
        "compression": x[0].numel() / mean[0].numel(),
        "token_ratio": ratio,
    }


def _kl_normal(mu1, logvar1, mu2, logvar2):
    from torch.distributions import Normal, kl_divergence  # deferred: only this probe needs it

    return kl_divergence(Normal(mu1, (0.5 * logvar1).exp()), Normal(mu2, (0.5 * logvar2).exp()))


def _frechet_1d(mu1, sigma1, mu2, sigma2):
    # deferred: imported where needed, not at the grader's start
    from ...metrics.fid import frechet_distance

    m1, m2 = torch.tensor([mu1], dtype=torch.float64), torch.tensor([mu2], dtype=torch.float64)
    c1 = torch.tensor([[sigma1**2]], dtype=torch.float64)
    c2 = torch.tensor([[sigma2**2]], dtype=torch.float64)
    return float(frechet_distance(m1, c1, m2, c2))


def _one_subset_kid(x, y):
    # deferred: imported where needed, not at the grader's start
    from ...metrics.fid import kid_from_features

    return kid_from_features(x, y, subsets=1, subset_size=len(x))[0]


def _captions(g) -> list[str]:
    # deferred: imported where needed, not at the grader's start
    from ...data.clips import caption_of

    draws = torch.randint(0, 4, (5, 3), generator=g).tolist()
    return [caption_of(c, k, m) for c, k, m in draws] + ["", "A Crimson Sword Spinning Left"]


def _price_of_time(frames, size, pt, p):
    # deferred: imported where needed, not at the grader's start
    from ...models.video import attention_flops, token_count

    clip, image = token_count(frames, size, pt, p), token_count(1, size, 1, p)
    return {
        "tokens": clip,
        "token_ratio": clip / image,
        "attention_ratio": attention_flops(clip, 64) / attention_flops(image, 64),
    }


def _price_cases(g) -> list[tuple]:
    cases = [(8, 16, 2, 4), (6, 12, 3, 2)]
    for _ in range(3):
        pt, p = integer(g, 1, 4), 2 ** integer(g, 1, 5)
        cases.append((pt * integer(g, 1, 40), p * integer(g, 1, 16), pt, p))
    return cases


VAE, FID = "dit_mini.models.vae:", "dit_mini.metrics.fid:"
LATENTS = "dit_mini.models.latents:"

PROBES: list[Probe] = [
    # 09 dps
    entry(
        "09.block_gflops",
        "my_block_gflops",
        lambda g: [(16 * integer(g, 1, 20), 48 * integer(g, 1, 20), 4.0), (64, 96, 2.0)],
        "dit_mini.metrics.flops:block_gflops",
        rtol=1e-6,
    ),
    entry(
        "09.sampling_bill",
        "my_sampling_bill",
        lambda g: [
            (float(torch.rand(1, generator=g)), integer(g, 1, 100)),
            (0.2, integer(g, 1, 50), False),
            (0.05, 64, True, float(torch.rand(1, generator=g))),
        ],
        "dit_mini.studies.steps_vs_size:sampling_bill",
        rtol=1e-6,
    ),
    entry("09.halve_steps", "predicted_ratio", harness="value", test=_halving_ratio_test),
    # 10 dream factory
    *[
        entry(
            "10.latent_shape",
            name,
            harness="value",
            expected=lambda name=name: _latent_values()[name],
            part=part,
        )
        for name, part in [
            ("latent_shape", "latent shape"),
            ("compression", "compression factor"),
            ("token_ratio", "token ratio at patch size 2"),
        ]
    ],
    entry(
        "10.kl",
        "kl_diag_gaussian",
        lambda g: [(randn(g, 2, 4, 8, 8), randn(g, 2, 4, 8, 8)), (randn(g, 5), randn(g, 5))],
        VAE + "kl_divergence",
        own=True,
    ),
    entry(
        "10.kl_two_gaussians",
        "kl_two_gaussians",
        lambda g: [
            tuple(randn(g, 2, 4, 3, 3) for _ in range(4)),
            tuple(randn(g, 7) for _ in range(4)),
        ],
        _kl_normal,
    ),
    entry(
        "10.reparameterize",
        "sample_latent",
        lambda g: [
            (randn(g, 2, 4, 8, 8), randn(g, 2, 4, 8, 8, scale=0.5), Generator(integer(g, 0, 2**31)))
        ],
        VAE + "VAE.reparameterize",
        own=True,
    ),
    # 11 forge
    entry(
        "11.frechet_1d",
        "frechet_1d",
        lambda g: [tuple(float(v) for v in torch.rand(4, generator=g) * 3 + 0.1) for _ in range(3)],
        _frechet_1d,
        atol=1e-6,
    ),
    entry(
        "11.latent_scale",
        "latent_scale_of",
        lambda g: [(Pretrained("vae"), torch.rand(16, 3, 32, 32, generator=g) * 2 - 1)],
        LATENTS + "measure_latent_scale",
        harness="call_no_grad",
        own=True,
    ),
    entry(
        "11.smelt_finish",
        "smelt",
        lambda g: [(Pretrained("vae"), torch.rand(4, 3, 32, 32, generator=g) * 2 - 1)],
        LATENTS + "encode_latents",
        part="smelt",
        harness="call_no_grad",
        own=True,
    ),
    entry(
        "11.smelt_finish",
        "finish",
        lambda g: [(Pretrained("vae"), randn(g, 4, 4, 8, 8))],
        LATENTS + "decode_latents",
        part="finish",
        harness="call_no_grad",
        own=True,
        atol=1e-4,
    ),
    # 12 fidelity
    entry(
        "12.gaussian_fit", "fit_gaussian", lambda g: [(randn(g, 300, 6),)], FID + "gaussian_stats"
    ),
    entry(
        "12.frechet",
        "frechet",
        lambda g: [(torch.zeros(4), torch.eye(4), randn(g, 4), torch.eye(4) * 2)],
        FID + "frechet_distance",
        atol=1e-4,
    ),
    entry(
        "12.kid",
        "kid_estimate",
        lambda g: [(randn(g, 50, 6), randn(g, 50, 6) * 1.3 + 0.2)],
        _one_subset_kid,
        atol=1e-6,
    ),
    # 13 mastering the art
    entry(
        "13.tokenize",
        "my_tokenize",
        lambda g: [(_captions(g), integer(g, 5, 9))],
        "dit_mini.data.clips:tokenize",
        own=True,
    ),
    entry(
        "13.tubelets",
        "my_tubeletify",
        lambda g: [(randn(g, 2, 1, 6, 8, 12), 3, 2)],
        "dit_mini.models.video:tubeletify",
    ),
    entry("13.price_of_time", "price_of_time", _price_cases, _price_of_time),
]
