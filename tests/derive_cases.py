"""The derive-and-predict exercises in tests/test_mistakes.py's harness: how each one's check
runs on small inputs (`run_derive`, the way its notebook's check cell does) and its common wrong
answers with the text their failure must contain (`DERIVE_WRONG`). The notebooks' own check cells
are run on wrong answers in tests/test_exercises_derive.py."""

import math

import torch
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from dit_mini.course.derivations import (
    first_step_gradients,
    marginal_velocity,
    tilted_score,
    two_class_scores,
    two_moons,
)
from dit_mini.course.hints import EXERCISES
from dit_mini.diffusion.samplers import ddpm_step
from dit_mini.diffusion.schedules import cosine_schedule, linear_schedule
from dit_mini.models.dit import DiT, dit_config
from dit_mini.models.video import attention_flops, token_count

SCHEDULE = linear_schedule(100)
MOONS = two_moons(40, generator=torch.Generator().manual_seed(0))
PROBE = torch.randn(8, 2, generator=torch.Generator().manual_seed(1))
TOY_X = torch.linspace(-3, 3, 13, dtype=torch.float64)
TOY_Y = torch.arange(13) % 2
TOY_U, TOY_C = two_class_scores(TOY_X, TOY_Y)
torch.manual_seed(3)
NEWBORN = DiT(dit_config("nano", depth=1))
LEARNERS = first_step_gradients(
    NEWBORN, torch.randn(2, 3, 32, 32), torch.tensor([50.0, 800.0]), torch.tensor([1, 7])
)


def snr_midpoint_ref(s):
    return float(10 * torch.log10(cosine_schedule(1000, s).snr()[499]))


def posterior_step_ref(x0, x_t, t, seed):
    generator = torch.Generator().manual_seed(seed)
    return ddpm_step(x0, x_t, t, SCHEDULE, "x0", generator, clip_x0=False)[0]


def posterior_step(posterior):
    """The learner's posterior as the notebook's check uses it: mean + sqrt(variance) z."""

    def step(x0, x_t, t, seed):
        mean, variance = posterior(x0, x_t, t, SCHEDULE.betas)
        z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(seed))
        return mean + float(variance) ** 0.5 * z

    return step


def posterior_wrong(variance_is_beta=False, swap=False, a_bar_now=False):
    def posterior(x0, x_t, t, betas):
        ab = torch.cumprod(1 - betas, 0)
        b, a, abt = float(betas[t]), 1 - float(betas[t]), float(ab[t])
        abp = abt if a_bar_now else (float(ab[t - 1]) if t > 0 else 1.0)
        first, second = (x_t, x0) if swap else (x0, x_t)
        mean = (abp**0.5 * b * first + a**0.5 * (1 - abp) * second) / (1 - abt)
        return mean, b if variance_is_beta else b * (1 - abp) / (1 - abt)

    return posterior_step(posterior)


def kl_ref(m1, l1, m2, l2):
    return torch_kl(Normal(m1, (0.5 * l1).exp()), Normal(m2, (0.5 * l2).exp()))


def price_ref(frames, size, pt, p):
    clip, image = token_count(frames, size, pt, p), token_count(1, size, 1, p)
    ratio = attention_flops(clip, 64) / attention_flops(image, 64)
    return {"tokens": clip, "token_ratio": clip / image, "attention_ratio": ratio}


def learners_test(answer):
    if not isinstance(answer, (set, list, tuple)):
        return f"expected a set of parameter names, got {type(answer).__name__}"
    missing, extra = sorted(set(LEARNERS) - set(answer)), sorted(set(answer) - set(LEARNERS))
    if missing:
        return f"{missing[0]} does get a gradient ({len(missing)} name(s) missing)"
    if extra:
        return f"{extra[0]} gets no gradient on the first step ({len(extra)} name(s) too many)"
    return True


def ratio_test(r):
    if isinstance(r, bool) or not isinstance(r, (int, float)):
        return f"expected one number, FID at 4 steps divided by FID at 8, got {r!r}"
    if r <= 0:
        return f"{r} is not a ratio of two FIDs (both are positive): divide, do not subtract"
    if r > 10:
        return f"{r} reads like a percentage or an FID value: give the ratio (1.5 for +50 %)"
    return 0.6 <= r <= 3.0 or f"a ratio of {r} is far from 1; defend a smaller change"


def run_derive(name: str, c):
    """The check of exercise `name`, `c` being check(name, answer, ...) with its part bound."""
    g = torch.Generator().manual_seed(2)
    if name == "01.cosine_midpoint":
        return c(snr_midpoint_ref, cases=[(0.008,), (0.0,), (0.3,)], atol=1e-6)
    if name == "03.ddpm_posterior":
        x0, x_t = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
        cases = [(x0, x_t, t, seed) for t in (99, 40, 1, 0) for seed in (0, 1)]
        return c(posterior_step_ref, cases=cases, atol=1e-5)
    if name == "03.marginal_velocity":
        cases = [(PROBE, t, MOONS) for t in (1.0, 0.5, 0.1)]
        return c(marginal_velocity, cases=cases, atol=1e-4)
    if name == "07.first_gradients":
        return c(test=learners_test)
    if name == "08.cfg_bayes":
        return c(lambda w: tilted_score(TOY_X, TOY_Y, w), cases=[3.0, 0.0, 1.0], atol=1e-8)
    if name == "09.halve_steps":
        return c(test=ratio_test)
    if name == "10.kl_two_gaussians":
        m1, l1, m2, l2 = (torch.randn(2, 4, 3, 3, generator=g) for _ in range(4))
        return c(kl_ref, cases=[(m1, l1, m2, l2), (m2, l2, m1, l1)])
    if name == "13.price_of_time":
        return c(price_ref, cases=[(8, 16, 2, 4), (240, 256, 2, 16), (6, 12, 3, 2)])
    return None


def _cosine(power=10.0, normalise=True):
    def answer(s):
        f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
        a = f(0.5) / (f(0.0) if normalise else 1.0)
        return power * math.log10(a / (1 - a))

    return answer


def _velocity(sign=1.0, variance=None, weighted=True):
    def answer(x, t, data):
        if not weighted:
            return (x - data.mean(0)) / t
        var = t**2 if variance is None else variance(t)
        w = torch.softmax(-(x[:, None] - (1 - t) * data[None]).square().sum(-1) / (2 * var), 1)
        return sign * (w[..., None] * (x[:, None] - data[None]) / t).sum(1)

    return answer


def attention_linear(frames, size, pt, p):
    return {**price_ref(frames, size, pt, p), "attention_ratio": frames / pt}


def said(name: str, i: int) -> str:
    """What the data file's i-th common mistake of exercise `name` says."""
    return EXERCISES[name].mistakes[i].says


_ALL_NAMES = [n for n, _ in NEWBORN.named_parameters()]
_AT = "the first wrong value is at"
DERIVE_WRONG = [
    ("01.cosine_midpoint", "", lambda s: 0.0, said("01.cosine_midpoint", 0)),
    ("01.cosine_midpoint", "", _cosine(power=20.0), said("01.cosine_midpoint", 1)),
    ("01.cosine_midpoint", "", _cosine(normalise=False), "on input set 1 of 3: expected -0.106953"),
    ("03.ddpm_posterior", "", posterior_wrong(swap=True), said("03.ddpm_posterior", 0)),
    ("03.ddpm_posterior", "", posterior_wrong(variance_is_beta=True), _AT),
    ("03.ddpm_posterior", "", posterior_wrong(a_bar_now=True), _AT),
    ("03.marginal_velocity", "", _velocity(sign=-1.0), said("03.marginal_velocity", 0)),
    ("03.marginal_velocity", "", _velocity(weighted=False), f"{_AT} point 0, coordinate 0"),
    ("03.marginal_velocity", "", _velocity(variance=lambda t: (1 - t) ** 2 + 1e-12), _AT),
    ("07.first_gradients", "", set(), "final_layer.linear.bias does get a gradient"),
    ("07.first_gradients", "", set(_ALL_NAMES), "gets no gradient on the first step"),
    ("07.first_gradients", "", {"final_layer.linear.weight"}, "(1 name(s) missing)"),
    ("08.cfg_bayes", "", lambda w: TOY_C + w * (TOY_U - TOY_C), said("08.cfg_bayes", 0)),
    ("08.cfg_bayes", "", lambda w: TOY_C + w * (TOY_C - TOY_U), said("08.cfg_bayes", 1)),
    ("08.cfg_bayes", "", lambda w: w * TOY_C, f"{_AT} point"),
    ("09.halve_steps", "", 110, "reads like a percentage"),
    ("09.halve_steps", "", -0.5, "divide, do not subtract"),
    ("09.halve_steps", "", "worse", "expected one number"),
    ("10.kl_two_gaussians", "", lambda *a: 2 * kl_ref(*a), said("10.kl_two_gaussians", 0)),
    ("10.kl_two_gaussians", "", lambda a, b, c, d: kl_ref(c, d, a, b), f"{_AT} image 0, channel 0"),
    ("13.price_of_time", "", lambda f, s, _, p: price_ref(f, s, 1, p), said("13.price_of_time", 0)),
    ("13.price_of_time", "", attention_linear, "['attention_ratio']: expected 16, got 4"),
]  # fmt: skip
