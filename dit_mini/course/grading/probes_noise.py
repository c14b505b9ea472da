"""The probes of notebooks 00-02 (bonfire, fog, nameless king): data in the model's range,
the forward process (alpha-bar, noising, the SNR and its cosine midpoint), the reparameterization
and its gradients, step-by-step noising against the jump.

One `entry` per graded call (see `dit_mini.course.grading.probe`); the functions above the
table are the references the package has no single function for, and the tests of answers that
are random by nature. Assembled by `dit_mini.course.grading.probes`.
"""

from __future__ import annotations

import torch

from .codec import Generator
from .probe import Probe, entry, integer, randn

__all__ = ["PROBES"]


def _alpha_bars(g):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.schedules import cosine_schedule, linear_schedule

    T = integer(g, 200, 1000)
    return [linear_schedule(T).alpha_bar, cosine_schedule(T).alpha_bar]


def _q_sample(x0, eps, t, alpha_bar):
    a = alpha_bar[t].to(x0.dtype).reshape(-1, 1, 1, 1)  # (B, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def _first_below_0db(output, args) -> str | None:
    ab = args[0]
    snr = ab / (1 - ab)
    if isinstance(output, bool) or not isinstance(output, int) or not 0 < output < len(ab):
        return f"expected an int step in (0, {len(ab)}), got {output!r}"
    return (
        None if snr[output] < 1 <= snr[output - 1] else f"step {output} is not the first below 0 dB"
    )


def _cosine_midpoint(s: float) -> float:
    """SNR in dB at t = T / 2 of the package's cosine schedule with offset s."""
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.schedules import cosine_schedule

    return float(10 * torch.log10(cosine_schedule(1000, s).snr()[499]))


def _chain_test(output, args) -> str | None:
    x0, betas = args[0], args[1]
    if not isinstance(output, torch.Tensor) or output.shape != x0.shape:
        return f"expected a tensor shaped like x0, {tuple(x0.shape)}"
    a = float(torch.prod(1 - betas.double()))
    mean, std, n = a**0.5 * float(x0[0]), (1 - a) ** 0.5, output.numel()
    m, s = output.double().mean().item(), output.double().std().item()
    ok = abs(m - mean) < 5 * std / n**0.5 and abs(s - std) < 5 * std / (2 * n) ** 0.5
    return (
        None
        if ok
        else f"measured mean {m:.3f} and std {s:.3f}; the jump gives {mean:.3f}, {std:.3f}"
    )


def _autograd_grads(mu, sigma, eps, target):
    mu = torch.tensor(mu, requires_grad=True, dtype=torch.float64)
    sigma = torch.tensor(sigma, requires_grad=True, dtype=torch.float64)
    loss = ((mu + sigma * eps - target) ** 2).mean()
    return tuple(float(grad) for grad in torch.autograd.grad(loss, (mu, sigma)))


def _to_model_range(pixels):
    # deferred: imported where needed, not at the grader's start
    from ...data.image_dataset import ImageDataset

    return ImageDataset.from_uint8(pixels.numpy(), [0] * len(pixels), ("x",)).images


PROBES: list[Probe] = [
    # 00 bonfire
    entry(
        "00.to_model_range",
        "to_model_range",
        lambda g: [(torch.randint(0, 256, (5, 32, 32, 3), generator=g, dtype=torch.uint8),)],
        _to_model_range,
    ),
    entry(
        "00.class_accuracy",
        "class_accuracy",
        lambda g: [(randn(g, 40, 10), torch.randint(0, 10, (40,), generator=g))],
        lambda logits, y: float((logits.argmax(1) == y).float().mean()),
    ),
    # 01 fog
    entry(
        "01.alpha_bar",
        "alpha_bar_from_betas",
        lambda g: [(torch.rand(integer(g, 20, 300), generator=g, dtype=torch.float64) * 0.05,)],
        lambda b: torch.cumprod(1 - b, 0),
    ),
    entry(
        "01.q_sample",
        "q_sample",
        lambda g: [
            (
                randn(g, 6, 3, 8, 8),
                randn(g, 6, 3, 8, 8),
                torch.randint(0, len(ab), (6,), generator=g),
                ab,
            )
            for ab in _alpha_bars(g)
        ],
        _q_sample,
    ),
    entry(
        "01.snr",
        "snr_in_db",
        lambda g: [(ab,) for ab in _alpha_bars(g)],
        lambda ab: 10 * torch.log10(ab / (1 - ab)),
        part="SNR in dB",
        atol=1e-3,
    ),
    entry(
        "01.snr",
        "first_step_below_0db",
        lambda g: [(ab,) for ab in _alpha_bars(g)],
        part="first step below 0 dB",
        test=_first_below_0db,
    ),
    entry(
        "01.cosine_midpoint",
        "cosine_midpoint_snr_db",
        lambda g: [(0.0,), (0.008,)] + [(0.3 * float(v),) for v in torch.rand(2, generator=g)],
        _cosine_midpoint,
        atol=1e-6,
    ),
    # 02 nameless king
    entry(
        "02.reparameterize",
        "reparameterize",
        lambda g: [
            (randn(g, 4, 3, 8, 8), torch.rand(4, 1, 1, 1, generator=g), randn(g, 4, 3, 8, 8))
        ],
        lambda mu, sigma, eps: mu + sigma * eps,
        part="the forward process",
    ),  # fmt: skip
    entry(
        "02.reparameterize",
        "reparameterize",
        lambda g: [(float(randn(g, 1)), 1.0 + float(torch.rand(1, generator=g)), randn(g, 5))],
        lambda mu, sigma, eps: mu + sigma * eps,
        part="gradients reach mu and sigma",
        harness="grads",
    ),
    entry(
        "02.forward_chain",
        "forward_step",
        lambda g: [
            (randn(g, 4, 3, 8, 8), randn(g, 4, 3, 8, 8), float(b))
            for b in torch.rand(3, generator=g) * 0.5
        ],
        lambda x, eps, b: (1 - b) ** 0.5 * x + b**0.5 * eps,
        part="forward_step",
    ),
    entry(
        "02.forward_chain",
        "noise_step_by_step",
        lambda g: [
            (
                torch.full((20_000,), 0.5 + float(torch.rand(1, generator=g))),
                torch.linspace(1e-4, 0.02, 1000)[: integer(g, 100, 400)],
                Generator(integer(g, 0, 2**31)),
            )
        ],
        part="steps match the jump",
        test=_chain_test,
    ),
    entry(
        "02.gradients_by_hand",
        "gradients_by_hand",
        lambda g: [
            (
                float(randn(g, 1)),
                0.2 + float(torch.rand(1, generator=g)),
                torch.randn(500, generator=g, dtype=torch.float64),
                float(randn(g, 1)),
            )
            for _ in range(2)
        ],
        _autograd_grads,
    ),
]
