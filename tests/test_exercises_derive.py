"""The derive-and-predict exercises: each check cell, run as the grader runs it, lights the
bonfire for the solution and rejects the common wrong answers (at least two per exercise)."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"

# exercise: (notebook, solution cell id, check cell id, setup code the notebook ran before)
EXERCISES = {
    "01.cosine_midpoint": (
        "01_fog",
        "derive-01-midpoint-solution",
        "derive-01-midpoint-check",
        "from dit_mini.diffusion.schedules import cosine_schedule",
    ),
    "03.ddpm_posterior": (
        "03_clearing_the_fog",
        "derive-03-posterior-solution",
        "derive-03-posterior-check",
        "from dit_mini.diffusion.schedules import linear_schedule\n"
        "from dit_mini.data.relics import make_relics\n"
        "schedule, relics = linear_schedule(1000), make_relics(4, seed=0)",
    ),
    "03.marginal_velocity": (
        "03_clearing_the_fog",
        "derive-03-flow-solution",
        "derive-03-flow-check",
        "",
    ),
    "07.first_gradients": (
        "07_legendary_gear",
        "derive-07-first-solution",
        "derive-07-first-check",
        "from dit_mini.models.dit import DiT, dit_config",
    ),
    "08.cfg_bayes": ("08_summon_signs", "derive-08-bayes-solution", "derive-08-bayes-check", ""),
    "09.halve_steps": ("09_dps", "predict-09-halve-solution", "predict-09-halve-check", ""),
    "10.kl_two_gaussians": (
        "10_dream_factory",
        "derive-10-kl-solution",
        "derive-10-kl-check",
        "mean = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(0))\n"
        "logvar = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(1))",
    ),
    "13.price_of_time": (
        "13_mastering_the_art",
        "predict-13-time-solution",
        "predict-13-time-check",
        "from dit_mini.models.video import attention_flops, token_count",
    ),
}

# common wrong answers: learner code, and a piece of the reason the check must give
WRONG = {
    "01.cosine_midpoint": {
        "the offset ignored: 0 dB": (
            "def cosine_midpoint_snr_db(s):\n    return 0.0",
            "ignores the offset s",
        ),
        "no division by f(0)": (
            "def cosine_midpoint_snr_db(s):\n"
            "    a = math.cos((0.5 + s) / (1 + s) * math.pi / 2) ** 2\n"
            "    return 10 * math.log10(a / (1 - a))",
            "expected",
        ),
        "amplitude decibels (20 log10)": (
            "def cosine_midpoint_snr_db(s):\n"
            "    f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2\n"
            "    a = f(0.5) / f(0.0)\n"
            "    return 20 * math.log10(a / (1 - a))",
            "you took 20 log10",
        ),
    },
    "03.ddpm_posterior": {
        "variance beta_t instead of beta_tilde": (
            "def posterior(x0, x_t, t, betas):\n"
            "    ab = torch.cumprod(1 - betas, 0)\n"
            "    b, a, abt = float(betas[t]), 1 - float(betas[t]), float(ab[t])\n"
            "    abp = float(ab[t - 1]) if t > 0 else 1.0\n"
            "    m = (abp**0.5 * b * x0 + a**0.5 * (1 - abp) * x_t) / (1 - abt)\n"
            "    return m, b",
            "the first wrong value is at",
        ),
        "the two weights swapped": (
            "def posterior(x0, x_t, t, betas):\n"
            "    ab = torch.cumprod(1 - betas, 0)\n"
            "    b, a, abt = float(betas[t]), 1 - float(betas[t]), float(ab[t])\n"
            "    abp = float(ab[t - 1]) if t > 0 else 1.0\n"
            "    m = (abp**0.5 * b * x_t + a**0.5 * (1 - abp) * x0) / (1 - abt)\n"
            "    return m, b * (1 - abp) / (1 - abt)",
            "the weights of x0 and x_t are swapped",
        ),
        "alpha_bar_t where alpha_bar_{t-1} belongs": (
            "def posterior(x0, x_t, t, betas):\n"
            "    ab = torch.cumprod(1 - betas, 0)\n"
            "    b, a, abt = float(betas[t]), 1 - float(betas[t]), float(ab[t])\n"
            "    m = (abt**0.5 * b * x0 + a**0.5 * (1 - abt) * x_t) / (1 - abt)\n"
            "    return m, b",
            "the first wrong value is at",
        ),
    },
    "03.marginal_velocity": {
        "no posterior weights (a plain average)": (
            "def my_marginal_velocity(x, t, data):\n    return (x - data.mean(0)) / t",
            "the first wrong value is at",
        ),
        "the velocity backwards": (
            "def my_marginal_velocity(x, t, data):\n"
            "    w = torch.softmax(-(x[:, None] - (1 - t) * data[None]).square().sum(-1)"
            " / (2 * t**2), 1)\n"
            "    return (w[..., None] * (data[None] - x[:, None]) / t).sum(1)",
            "your velocity points the wrong way",
        ),
        "the weights' variance (1 - t)^2 instead of t^2": (
            "def my_marginal_velocity(x, t, data):\n"
            "    w = torch.softmax(-(x[:, None] - (1 - t) * data[None]).square().sum(-1)"
            " / (2 * (1 - t) ** 2 + 1e-12), 1)\n"
            "    return (w[..., None] * (x[:, None] - data[None]) / t).sum(1)",
            "the first wrong value is at",
        ),
    },
    "07.first_gradients": {
        "everything learns": (
            "first_learners = {n for n, _ in DiT(dit_config('nano')).named_parameters()}",
            "too many",
        ),
        "nothing learns: zero output, zero gradient": ("first_learners = set()", "missing"),
        "the weight but not the bias": (
            "first_learners = {'final_layer.linear.weight'}",
            "missing",
        ),
        "the final modulation too": (
            "first_learners = {'final_layer.linear.weight', 'final_layer.linear.bias',"
            " 'final_layer.adaLN_modulation.1.weight', 'final_layer.adaLN_modulation.1.bias'}",
            "no gradient",
        ),
    },
    "08.cfg_bayes": {
        "the prior dropped: w times the conditional score": (
            "def my_guided_score(u, c, w):\n    return w * c",
            "the first wrong value is at",
        ),
        "conditional and unconditional swapped": (
            "def my_guided_score(u, c, w):\n    return c + w * (u - c)",
            "scores are swapped",
        ),
        "the difference added to the conditional score": (
            "def my_guided_score(u, c, w):\n    return c + w * (c - u)",
            "one step too strong",
        ),
    },
    "09.halve_steps": {
        "a percentage": ("predicted_ratio = 110", "percentage"),
        "a difference, not a ratio": ("predicted_ratio = -0.5", "divide"),
        "the bill halves, so the FID halves": ("predicted_ratio = 0.5", "much better"),
        "a word": ("predicted_ratio = 'worse'", "one number"),
    },
    "10.kl_two_gaussians": {
        "the two clouds swapped": (
            "def kl_two_gaussians(m1, l1, m2, l2):\n"
            "    return 0.5 * ((l2 - l1).exp() + (m1 - m2) ** 2 / l1.exp() - 1 - (l2 - l1))",
            "the first wrong value is at",
        ),
        "no division of the mean gap by sigma2^2": (
            "def kl_two_gaussians(m1, l1, m2, l2):\n"
            "    return 0.5 * ((l1 - l2).exp() + (m1 - m2) ** 2 - 1 - (l1 - l2))",
            "the first wrong value is at",
        ),
        "exercise 2's KL to the standard cloud": (
            "def kl_two_gaussians(m1, l1, m2, l2):\n    return 0.5 * (m1**2 + l1.exp() - 1 - l1)",
            "the first wrong value is at",
        ),
    },
    "13.price_of_time": {
        "every frame its own token block (pt forgotten)": (
            "def price_of_time(frames, size, pt, p):\n"
            "    per = (size // p) ** 2\n"
            "    return {'tokens': frames * per, 'token_ratio': frames,"
            " 'attention_ratio': frames**2}",
            "every frame got its own tokens",
        ),
        "attention grows linearly": (
            "def price_of_time(frames, size, pt, p):\n"
            "    per = (size // p) ** 2\n"
            "    r = frames // pt\n"
            "    return {'tokens': r * per, 'token_ratio': r, 'attention_ratio': r}",
            "attention_ratio",
        ),
    },
}


def _cells(notebook, *ids):
    nb = nbformat.read(SOLUTIONS / f"{notebook}.ipynb", as_version=4)
    by_id = {c.id: c.source for c in nb.cells}
    return [by_id[i] for i in ids]


def _namespace(setup: str) -> dict:
    import math

    import torch

    namespace = {"torch": torch, "math": math}
    exec(setup, namespace)
    return namespace


def _run(name: str, answer_code: str):
    from dit_mini.course import exercises

    notebook, _, check_id, setup = EXERCISES[name]
    (check_source,) = _cells(notebook, check_id)
    namespace = _namespace(setup)
    exec(answer_code, namespace)
    exercises.reset_results()
    namespace["check"] = exercises.check  # the check cell as a learner's kernel runs it
    exec(check_source, namespace)
    passed = exercises.results()[name]["passed"]
    reasons = [p["reason"] or "" for p in exercises.results()[name]["parts"]]
    return passed, " ".join(reasons)


@pytest.fixture(autouse=True)
def _not_grading(monkeypatch):
    monkeypatch.delenv("DIT_MINI_GRADING", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


def test_every_new_exercise_is_registered_and_has_wrong_answers():
    from dit_mini.course.hints import EXERCISES as REGISTERED

    assert set(WRONG) == set(EXERCISES)
    for name in EXERCISES:
        assert name in REGISTERED and len(WRONG[name]) >= 2, name


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_the_solution_lights_the_bonfire(name, capsys):
    notebook, solution_id, _, _ = EXERCISES[name]
    (solution,) = _cells(notebook, solution_id)
    passed, reason = _run(name, solution)
    assert passed, reason


@pytest.mark.parametrize("name, mistake", [(n, m) for n in sorted(WRONG) for m in sorted(WRONG[n])])
def test_common_wrong_answers_are_deaths_that_say_why(name, mistake, capsys):
    code, reason_part = WRONG[name][mistake]
    passed, reason = _run(name, code)
    assert not passed, f"{name}: the wrong answer '{mistake}' lit the bonfire"
    assert reason_part in reason, reason
