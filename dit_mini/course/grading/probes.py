"""The probe table: for each exercise, which learner names to call, on which fresh inputs, and
which package reference the grader compares the outputs with.

A `Probe` is one call (an exercise may have several; it passes when all do). `make(g)` draws the
inputs from the grader's generator `g`, seeded from a secret drawn for each grading run, so no
submission can know them while its own cells run. `reference()` returns the package object that
the same `harness` is applied to in the grader's process; `test(output, args)` replaces the
comparison for answers that are random by nature (a statistic instead of a value). `package`
names the package objects a learner must not hand in as their own answer (alias, subclass, thin
wrapper). Exercises not in the table are "not probed" and earn no points from the grader.

Used by `dit_mini.course.grading.runner`.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .codec import Config, Generator, Pretrained

__all__ = ["Probe", "PROBES", "probes_of", "NOT_PROBED"]


@dataclass(frozen=True)
class Probe:
    """One graded call of an exercise's answer (see the module docstring)."""

    exercise: str
    part: str
    names: tuple[str, ...]
    harness: str
    make: Callable[[torch.Generator], list[tuple]]
    reference: Callable[[], object] | None = None
    test: Callable[[object, tuple], str | None] | None = None
    package: tuple[str, ...] = field(default=())
    atol: float = 1e-5
    rtol: float = 1e-4


def ref(path: str) -> Callable[[], object]:
    """A lazy reference: "module:attr" of the package, imported in the grader when needed."""

    def load():
        module, _, attr = path.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    return load


def _randn(g, *shape, scale=1.0):
    return scale * torch.randn(*shape, generator=g)


def _int(g, low: int, high: int) -> int:
    return int(torch.randint(low, high, (1,), generator=g))


def _state(make_module: Callable[[], torch.nn.Module], g) -> dict:
    """A fresh random state dict for the reference module (no zero gates: every weight shows)."""
    module = make_module()
    return {
        k: 0.05 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone()
        for k, v in module.state_dict().items()
    }


def _alpha_bars(g):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.schedules import cosine_schedule, linear_schedule

    T = _int(g, 200, 1000)
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


def _dropout_test(output, args) -> str | None:
    y, p, null = args[0], args[1], args[2]
    if not isinstance(output, torch.Tensor) or output.shape != y.shape:
        return f"expected a tensor of shape {tuple(y.shape)}"
    dropped = output == null
    share, error = dropped.float().mean().item(), 5 * (p * (1 - p) / len(y)) ** 0.5
    if abs(share - p) > error:
        return f"{share:.3f} of the labels were dropped; expected {p:.3f}"
    return None if torch.equal(output[~dropped], y[~dropped]) else "kept labels changed"


def _autograd_grads(mu, sigma, eps, target):
    mu = torch.tensor(mu, requires_grad=True, dtype=torch.float64)
    sigma = torch.tensor(sigma, requires_grad=True, dtype=torch.float64)
    loss = ((mu + sigma * eps - target) ** 2).mean()
    return tuple(float(grad) for grad in torch.autograd.grad(loss, (mu, sigma)))


def _loop_test(trace, args) -> str | None:
    if not isinstance(trace, dict) or not {"lrs", "history", "called", "good"} <= set(trace):
        return "the loop did not return a trace"
    _, steps, batch, lr, warmup = args
    expected = [lr * min(1.0, (s + 1) / warmup) for s in range(steps)]
    history = [9.0 - s for s in range(steps)]
    if len(trace["lrs"]) != steps:
        return f"{steps} steps asked for, the step function ran {len(trace['lrs'])} times"
    if any(abs(a - b) > 1e-9 for a, b in zip(trace["lrs"], expected)):
        return "the learning rates do not warm up linearly over `warmup`"
    if not trace["good"]:
        return "the step got batches of the wrong shape or with labels of other images"
    if list(trace["history"]) != history:
        return "return the list of the losses the step function returned"
    if [list(c) for c in trace["called"]] != [[s, v] for s, v in zip(range(steps), history)]:
        return "call on_step(step, loss) after every step"
    if len({tuple(b) for b in trace["batches"]}) < 2:
        return "every step got the same batch"
    return None if trace["zero_budget_steps"] <= 1 else "with seconds=0 the loop kept going"


def _is_input(output, args) -> str | None:
    """A fresh adaLN-Zero block returns its input tokens exactly."""
    tokens = args[1][0]
    if not isinstance(output, torch.Tensor) or output.shape != tokens.shape:
        return f"expected a tensor of shape {tuple(tokens.shape)}"
    return (
        None if torch.equal(output, tokens) else "a fresh block changed its input (gates not zero)"
    )


def _is_zero(output, args) -> str | None:
    """A fresh final layer (and so a fresh DiT) outputs exactly zero."""
    if not isinstance(output, torch.Tensor):
        return "expected a tensor"
    return None if not output.any() else "a fresh one does not output zeros (zero-init missing)"


def _hash_test(digest: str) -> Callable:
    def test(output, args) -> str | None:
        return (
            None if hashlib.sha1(str(output).encode()).hexdigest()[:8] == digest else "wrong answer"
        )

    return test


def _context_window(input_size, patch_size, num_heads, depth):
    tokens = (input_size // patch_size) ** 2
    entries = depth * num_heads * tokens * tokens
    return {"tokens": tokens, "entries": entries, "megabytes": entries * 4 / 1e6}


def _to_model_range(pixels):
    # deferred: imported where needed, not at the grader's start
    from ...data.image_dataset import ImageDataset

    return ImageDataset.from_uint8(pixels.numpy(), [0] * len(pixels), ("x",)).images


def _combine(c, u, w):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.guidance import combine_guidance

    return combine_guidance(c, u, w, pred_channels=c.shape[1])


def _flow_times(n, generator):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.losses import make_loss

    # deferred: imported where needed, not at the grader's start
    from ..new_game_plus import FLOW

    return make_loss(FLOW).draw(torch.zeros(n, 1, 1, 1), generator)[0]


def _flow_loss(model, x0, y, t, eps):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.losses import make_loss

    # deferred: imported where needed, not at the grader's start
    from ..new_game_plus import FLOW

    return make_loss(FLOW)(model, x0, y, t=t, eps=eps)


def _label_embedder(*_):
    # deferred: imported where needed, not at the grader's start
    from ...models.embeddings import LabelEmbedder

    return LabelEmbedder(10, 192, 0.1)


def _eps_loss(model, x0, y, t, eps, alpha_bar):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.losses import DiffusionConfig, make_loss

    config = DiffusionConfig(objective="eps", schedule="linear", num_timesteps=len(alpha_bar))
    return make_loss(config)(model, x0, y, t=t, eps=eps)


def _ddim_jump(eps, x, t, t_prev, alpha_bar):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.samplers import ddim_step

    # deferred: imported where needed, not at the grader's start
    from ...diffusion.schedules import NoiseSchedule

    before = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
    schedule = NoiseSchedule(1 - alpha_bar / before)
    return ddim_step(eps, x, t, t_prev, schedule, "eps", eta=0.0, clip_x0=False)[0]


def _euler_step(model, x, t, t_next, y):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.samplers import FLOW_TIME_SCALE

    return x + (t_next - t) * model(x, torch.full((x.shape[0],), t * FLOW_TIME_SCALE), y)


def _block_forward(block, x, c):
    return block(x, c)


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


def _captions(g) -> list[str]:
    # deferred: imported where needed, not at the grader's start
    from ...data.clips import caption_of

    draws = torch.randint(0, 4, (5, 3), generator=g).tolist()
    return [caption_of(c, k, m) for c, k, m in draws] + ["", "A Crimson Sword Spinning Left"]


def _cosine_midpoint(s: float) -> float:
    """SNR in dB at t = T / 2 of the package's cosine schedule with offset s."""
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.schedules import cosine_schedule

    return float(10 * torch.log10(cosine_schedule(1000, s).snr()[499]))


def _posterior(x0, x_t, t, betas):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.samplers import ddpm_posterior
    from ...diffusion.schedules import NoiseSchedule  # deferred, as above

    return ddpm_posterior(x0, x_t, t, NoiseSchedule(betas))


def _posterior_cases(g) -> list[tuple]:
    T = _int(g, 50, 1000)
    betas = torch.linspace(1e-4, 0.02 + 0.03 * float(torch.rand(1, generator=g)), T).double()
    x0, x_t = _randn(g, 3, 3, 8, 8), _randn(g, 3, 3, 8, 8)
    return [(x0, x_t, t, betas) for t in (T - 1, _int(g, 1, T - 1), 1, 0)]


def _first_learners() -> list[str]:
    """The parameters of a fresh nano DiT that get a gradient on the first step, measured."""
    # deferred: imported where needed, not at the grader's start
    from ... import DiT, dit_config
    from ..derivations import first_step_gradients  # deferred, as above

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31, (1,))))
        model = DiT(dit_config("nano"))
        x = torch.randn(2, 3, 32, 32)
    return first_step_gradients(model, x, torch.tensor([50.0, 800.0]), torch.tensor([1, 7]))


def _first_learners_test(output, args) -> str | None:
    if not isinstance(output, list) or not all(isinstance(n, str) for n in output):
        return "expected a set of parameter names (strings)"
    answer, truth = set(output), set(_first_learners())
    missing, extra = sorted(truth - answer), sorted(answer - truth)
    if missing:
        return f"{missing[0]} does get a gradient ({len(missing)} name(s) missing)"
    if extra:
        return f"{extra[0]} gets no gradient on the first step ({len(extra)} name(s) too many)"
    return None


def _guided_score(uncond, cond, w):
    """The package's guidance combination (a score is an eps prediction up to a factor)."""
    return _combine(cond[:, None, None, None], uncond[:, None, None, None], w)[:, 0, 0, 0]


def _score_cases(g) -> list[tuple]:
    # deferred: imported where needed, not at the grader's start
    from ..derivations import two_class_scores

    x = 3 * (2 * torch.rand(40, generator=g, dtype=torch.float64) - 1)
    y = torch.randint(0, 2, (40,), generator=g)
    means, std = (
        (-float(torch.rand(1, generator=g)) - 0.2, 1.0),
        0.4 + float(torch.rand(1, generator=g)),
    )
    uncond, cond = two_class_scores(x, y, means, std)
    return [(uncond, cond, w) for w in (0.0, 1.0, 6 * float(torch.rand(1, generator=g)))]


def _halving_ratio_test(output, args) -> str | None:
    """The notebook's check: a ratio FID(4 steps) / FID(8 steps) one could defend."""
    if isinstance(output, bool) or not isinstance(output, (int, float)):
        return f"expected one number, FID at 4 steps divided by FID at 8, got {output!r}"
    return None if 0.6 <= output <= 3.0 else f"{output} is not a defensible ratio (0.6 to 3)"


def _kl_normal(mu1, logvar1, mu2, logvar2):
    from torch.distributions import Normal, kl_divergence  # deferred: only this probe needs it

    return kl_divergence(Normal(mu1, (0.5 * logvar1).exp()), Normal(mu2, (0.5 * logvar2).exp()))


def _price_of_time(frames, size, pt, p):
    # deferred: imported where needed, not at the grader's start
    from ...models.video import attention_flops, token_count

    clip, image = token_count(frames, size, pt, p), token_count(1, size, 1, p)
    return {
        "tokens": clip,
        "token_ratio": clip / image,
        "attention_ratio": attention_flops(clip, 64) / attention_flops(image, 64),
    }


def _module(cls_path: str, ctor: tuple, inputs: Callable) -> Callable:
    def make(g):
        cls = ref(cls_path)()
        return [(ctor, _state(lambda: cls(*ctor), g), inputs(g))]

    return make


M, E = "dit_mini.models.", "dit_mini.models.embeddings:"
A, B = "dit_mini.models.attention:", "dit_mini.models.dit_block:"
NGP = "dit_mini.course.new_game_plus:"
TOKENS = lambda g: _randn(g, 3, 64, 192)  # noqa: E731 - (B, L, D) of the tiny DiT
COND = lambda g: _randn(g, 3, 192)  # noqa: E731 - (B, D)

PROBES: list[Probe] = [
    # 00 bonfire
    Probe(
        "00.to_model_range",
        "",
        ("to_model_range",),
        "call",
        lambda g: [(torch.randint(0, 256, (5, 32, 32, 3), generator=g, dtype=torch.uint8),)],
        lambda: _to_model_range,
    ),
    Probe(
        "00.class_accuracy",
        "",
        ("class_accuracy",),
        "call",
        lambda g: [(_randn(g, 40, 10), torch.randint(0, 10, (40,), generator=g))],
        lambda: lambda logits, y: float((logits.argmax(1) == y).float().mean()),
    ),
    # 01 fog
    Probe(
        "01.alpha_bar",
        "",
        ("alpha_bar_from_betas",),
        "call",
        lambda g: [(torch.rand(_int(g, 20, 300), generator=g, dtype=torch.float64) * 0.05,)],
        lambda: lambda b: torch.cumprod(1 - b, 0),
    ),
    Probe(
        "01.q_sample",
        "",
        ("q_sample",),
        "call",
        lambda g: [
            (
                _randn(g, 6, 3, 8, 8),
                _randn(g, 6, 3, 8, 8),
                torch.randint(0, len(ab), (6,), generator=g),
                ab,
            )
            for ab in _alpha_bars(g)
        ],
        lambda: _q_sample,
    ),
    Probe(
        "01.snr",
        "SNR in dB",
        ("snr_in_db",),
        "call",
        lambda g: [(ab,) for ab in _alpha_bars(g)],
        lambda: lambda ab: 10 * torch.log10(ab / (1 - ab)),
        atol=1e-3,
    ),
    Probe(
        "01.snr",
        "first step below 0 dB",
        ("first_step_below_0db",),
        "call",
        lambda g: [(ab,) for ab in _alpha_bars(g)],
        test=_first_below_0db,
    ),
    Probe(
        "01.cosine_midpoint",
        "",
        ("cosine_midpoint_snr_db",),
        "call",
        lambda g: [(0.0,), (0.008,)] + [(0.3 * float(v),) for v in torch.rand(2, generator=g)],
        lambda: _cosine_midpoint,
        atol=1e-6,
    ),
    # 02 nameless king
    Probe(
        "02.reparameterize",
        "the forward process",
        ("reparameterize",),
        "call",
        lambda g: [
            (_randn(g, 4, 3, 8, 8), torch.rand(4, 1, 1, 1, generator=g), _randn(g, 4, 3, 8, 8))
        ],
        lambda: lambda mu, sigma, eps: mu + sigma * eps,
    ),
    Probe(
        "02.reparameterize",
        "gradients reach mu and sigma",
        ("reparameterize",),
        "grads",
        lambda g: [(float(_randn(g, 1)), 1.0 + float(torch.rand(1, generator=g)), _randn(g, 5))],
        lambda: lambda mu, sigma, eps: mu + sigma * eps,
    ),
    Probe(
        "02.forward_chain",
        "forward_step",
        ("forward_step",),
        "call",
        lambda g: [
            (_randn(g, 4, 3, 8, 8), _randn(g, 4, 3, 8, 8), float(b))
            for b in torch.rand(3, generator=g) * 0.5
        ],
        lambda: lambda x, eps, b: (1 - b) ** 0.5 * x + b**0.5 * eps,
    ),
    Probe(
        "02.forward_chain",
        "steps match the jump",
        ("noise_step_by_step",),
        "call",
        lambda g: [
            (
                torch.full((20_000,), 0.5 + float(torch.rand(1, generator=g))),
                torch.linspace(1e-4, 0.02, 1000)[: _int(g, 100, 400)],
                Generator(_int(g, 0, 2**31)),
            )
        ],
        test=_chain_test,
    ),
    Probe(
        "02.gradients_by_hand",
        "",
        ("gradients_by_hand",),
        "call",
        lambda g: [
            (
                float(_randn(g, 1)),
                0.2 + float(torch.rand(1, generator=g)),
                torch.randn(500, generator=g, dtype=torch.float64),
                float(_randn(g, 1)),
            )
            for _ in range(2)
        ],
        lambda: _autograd_grads,
    ),
    # 03 clearing the fog
    Probe(
        "03.eps_loss",
        "",
        ("eps_prediction_loss",),
        "call_no_grad",
        lambda g: [
            (
                Pretrained("dit-tiny"),
                _randn(g, 3, 3, 32, 32),
                torch.randint(0, 10, (3,), generator=g),
                torch.randint(0, 1000, (3,), generator=g),
                _randn(g, 3, 3, 32, 32),
                ref("dit_mini.diffusion.schedules:linear_schedule")()(1000).alpha_bar,
            )
        ],
        lambda: _eps_loss,
    ),
    Probe(
        "03.ddim_jump",
        "",
        ("ddim_jump",),
        "call",
        lambda g: [
            (
                _randn(g, 2, 3, 8, 8),
                _randn(g, 2, 3, 8, 8),
                t,
                tp,
                ref("dit_mini.diffusion.schedules:linear_schedule")()(1000).alpha_bar,
            )
            for t, tp in [(_int(g, 500, 1000), _int(g, 100, 500)), (_int(g, 1, 60), -1)]
        ],
        lambda: _ddim_jump,
    ),
    Probe(
        "03.ddpm_posterior",
        "",
        ("posterior",),
        "call",
        _posterior_cases,
        lambda: _posterior,
        package=("dit_mini.diffusion.samplers:ddpm_posterior",),
        atol=1e-4,
    ),
    Probe(
        "03.ddim_timesteps",
        "",
        ("trailing_timesteps",),
        "call",
        lambda g: [(1000, _int(g, 2, 60)), (_int(g, 20, 200), 7), (50, 50)],
        ref("dit_mini.diffusion.samplers:ddim_timesteps"),
        package=("dit_mini.diffusion.samplers:ddim_timesteps",),
    ),
    Probe(
        "03.flow_loss",
        "",
        ("flow_matching_loss",),
        "call_no_grad",
        lambda g: [
            (
                Pretrained("dit-tiny"),
                _randn(g, 3, 3, 32, 32),
                torch.randint(0, 10, (3,), generator=g),
                torch.rand(3, generator=g),
                _randn(g, 3, 3, 32, 32),
            )
        ],
        lambda: _flow_loss,
    ),
    Probe(
        "03.euler_step",
        "",
        ("euler_step",),
        "call_no_grad",
        lambda g: [
            (
                Pretrained("dit-tiny"),
                _randn(g, 2, 3, 32, 32),
                t,
                t - 0.25,
                torch.randint(0, 10, (2,), generator=g),
            )
            for t in (1.0, 0.25 + 0.5 * float(torch.rand(1, generator=g)))
        ],
        lambda: _euler_step,
        atol=1e-4,
    ),
    Probe(
        "03.marginal_velocity",
        "",
        ("my_marginal_velocity",),
        "call",
        lambda g: [
            (_randn(g, 32, 2), t, _randn(g, _int(g, 20, 200), 2))
            for t in (1.0, 0.05 + 0.9 * float(torch.rand(1, generator=g)), 0.05)
        ],
        ref("dit_mini.course.derivations:marginal_velocity"),
        package=("dit_mini.course.derivations:marginal_velocity",),
        atol=1e-4,
    ),
    # 04 cartographer
    Probe(
        "04.receptive_field",
        "",
        ("receptive_field_of",),
        "call",
        lambda g: [
            ([(2 * _int(g, 0, 3) + 1, _int(g, 1, 3)) for _ in range(_int(g, 1, 7))],)
            for _ in range(3)
        ],
        ref("dit_mini.course.viz_unet:receptive_field"),
        package=("dit_mini.course.viz_unet:receptive_field",),
    ),
    # 05 mystic lens
    Probe(
        "05.patchify",
        "",
        ("my_patchify",),
        "call",
        lambda g: [
            (_randn(g, 2, 3, 16, 16), 4),
            (_randn(g, 2, 3, 16, 16), 8),
            (_randn(g, 1, 2, 4, 12), 2),
        ],
        ref(M + "dit:patchify"),
        package=(M + "dit:patchify",),
    ),
    Probe(
        "05.context_window",
        "",
        ("context_window",),
        "call",
        lambda g: [
            (32 * _int(g, 1, 3), 2 ** _int(g, 0, 3), _int(g, 1, 8), _int(g, 1, 12))
            for _ in range(3)
        ],
        lambda: _context_window,
    ),
    Probe(
        "05.sincos",
        "",
        ("my_sincos_1d",),
        "call",
        lambda g: [
            (2 * _int(g, 2, 64), torch.arange(_int(g, 3, 20))),
            (8, 50 * torch.rand(4, generator=g)),
        ],
        ref(E + "sincos_1d"),
        package=(E + "sincos_1d",),
    ),
    # 06 whispers
    Probe(
        "06.attention_weights",
        "",
        ("my_attention_weights",),
        "call",
        lambda g: [(_randn(g, 2, 3, 9, 16), _randn(g, 2, 3, 5, 16))],
        ref(A + "attention_weights"),
        package=(A + "attention_weights",),
    ),
    Probe(
        "06.heads",
        "split",
        ("my_split_heads",),
        "call",
        lambda g: [(_randn(g, 2, 10, 48), 3)],
        ref("dit_mini.studies.attention_maps:split_heads"),
    ),
    Probe(
        "06.heads",
        "merge",
        ("my_merge_heads",),
        "call",
        lambda g: [(_randn(g, 2, 3, 10, 16),)],
        ref("dit_mini.studies.attention_maps:merge_heads"),
    ),
    Probe(
        "06.attention_distance",
        "",
        ("my_mean_attention_distance",),
        "call",
        lambda g: [(torch.softmax(_randn(g, 2, 3, 16, 16), -1), 4)],
        ref("dit_mini.studies.attention_maps:mean_attention_distance"),
    ),
    # 07 legendary gear
    Probe(
        "07.modulate",
        "",
        ("my_modulate",),
        "call",
        lambda g: [(TOKENS(g), COND(g), COND(g))],
        ref(B + "modulate"),
        package=(B + "modulate",),
    ),
    Probe(
        "07.timestep_embedding",
        "",
        ("my_timestep_embedding",),
        "call",
        lambda g: [
            (1000 * torch.rand(5, generator=g), 256),
            (1000 * torch.rand(3, generator=g), 8),
        ],
        ref(E + "timestep_embedding"),
        package=(E + "timestep_embedding",),
    ),
    Probe(
        "07.dit_block",
        "",
        ("my_dit_block",),
        "call_no_grad",
        lambda g: [(Pretrained("dit-tiny", f"blocks.{_int(g, 0, 6)}"), TOKENS(g), COND(g))],
        lambda: _block_forward,
        atol=1e-4,
    ),
    Probe(
        "07.first_gradients",
        "",
        ("first_learners",),
        "names",
        lambda g: [()],
        test=_first_learners_test,
    ),
    # 08 summon signs
    Probe(
        "08.label_dropout",
        "",
        ("my_drop_labels",),
        "call",
        lambda g: [
            (
                torch.arange(20_000) % 10,
                0.05 + 0.3 * float(torch.rand(1, generator=g)),
                10,
                Generator(_int(g, 0, 2**31)),
            )
        ],
        test=_dropout_test,
    ),
    Probe(
        "08.guidance",
        "",
        ("my_combine",),
        "call",
        lambda g: [(_randn(g, 2, 3, 8, 8), _randn(g, 2, 3, 8, 8), w) for w in (0.0, 1.0, 4.5)],
        lambda: _combine,
    ),
    Probe(
        "08.diversity",
        "",
        ("my_diversity",),
        "call",
        lambda g: [(_randn(g, 40, 8), torch.randint(0, 4, (40,), generator=g))],
        ref("dit_mini.studies.guidance_study:within_class_diversity"),
    ),
    Probe(
        "08.cfg_bayes",
        "",
        ("my_guided_score",),
        "call",
        _score_cases,
        lambda: _guided_score,
        package=("dit_mini.diffusion.guidance:combine_guidance",),
        atol=1e-8,
    ),
    # 09 dps
    Probe(
        "09.block_gflops",
        "",
        ("my_block_gflops",),
        "call",
        lambda g: [(16 * _int(g, 1, 20), 48 * _int(g, 1, 20), 4.0), (64, 96, 2.0)],
        ref("dit_mini.metrics.flops:block_gflops"),
        rtol=1e-6,
    ),
    Probe(
        "09.sampling_bill",
        "",
        ("my_sampling_bill",),
        "call",
        lambda g: [
            (float(torch.rand(1, generator=g)), _int(g, 1, 100)),
            (0.2, _int(g, 1, 50), False),
            (0.05, 64, True, float(torch.rand(1, generator=g))),
        ],
        ref("dit_mini.studies.steps_vs_size:sampling_bill"),
        rtol=1e-6,
    ),
    Probe(
        "09.halve_steps",
        "",
        ("predicted_ratio",),
        "value",
        lambda g: [()],
        test=_halving_ratio_test,
    ),
    # 10 dream factory
    Probe(
        "10.latent_shape",
        "latent shape",
        ("latent_shape",),
        "value",
        lambda g: [()],
        lambda: _latent_values()["latent_shape"],
    ),
    Probe(
        "10.latent_shape",
        "compression factor",
        ("compression",),
        "value",
        lambda g: [()],
        lambda: _latent_values()["compression"],
    ),
    Probe(
        "10.latent_shape",
        "token ratio at patch size 2",
        ("token_ratio",),
        "value",
        lambda g: [()],
        lambda: _latent_values()["token_ratio"],
    ),
    Probe(
        "10.kl",
        "",
        ("kl_diag_gaussian",),
        "call",
        lambda g: [(_randn(g, 2, 4, 8, 8), _randn(g, 2, 4, 8, 8)), (_randn(g, 5), _randn(g, 5))],
        ref("dit_mini.models.vae:kl_divergence"),
        package=("dit_mini.models.vae:kl_divergence",),
    ),
    Probe(
        "10.kl_two_gaussians",
        "",
        ("kl_two_gaussians",),
        "call",
        lambda g: [
            tuple(_randn(g, 2, 4, 3, 3) for _ in range(4)),
            tuple(_randn(g, 7) for _ in range(4)),
        ],
        lambda: _kl_normal,
    ),
    Probe(
        "10.reparameterize",
        "",
        ("sample_latent",),
        "call",
        lambda g: [
            (_randn(g, 2, 4, 8, 8), _randn(g, 2, 4, 8, 8, scale=0.5), Generator(_int(g, 0, 2**31)))
        ],
        ref("dit_mini.models.vae:VAE.reparameterize"),
        package=("dit_mini.models.vae:VAE.reparameterize",),
    ),
    # 11 forge
    Probe(
        "11.frechet_1d",
        "",
        ("frechet_1d",),
        "call",
        lambda g: [tuple(float(v) for v in torch.rand(4, generator=g) * 3 + 0.1) for _ in range(3)],
        lambda: _frechet_1d,
        atol=1e-6,
    ),
    Probe(
        "11.latent_scale",
        "",
        ("latent_scale_of",),
        "call_no_grad",
        lambda g: [(Pretrained("vae"), torch.rand(16, 3, 32, 32, generator=g) * 2 - 1)],
        ref("dit_mini.models.latents:measure_latent_scale"),
        package=("dit_mini.models.latents:measure_latent_scale",),
    ),
    Probe(
        "11.smelt_finish",
        "smelt",
        ("smelt",),
        "call_no_grad",
        lambda g: [(Pretrained("vae"), torch.rand(4, 3, 32, 32, generator=g) * 2 - 1)],
        ref("dit_mini.models.latents:encode_latents"),
        package=("dit_mini.models.latents:encode_latents",),
    ),
    Probe(
        "11.smelt_finish",
        "finish",
        ("finish",),
        "call_no_grad",
        lambda g: [(Pretrained("vae"), _randn(g, 4, 4, 8, 8))],
        ref("dit_mini.models.latents:decode_latents"),
        package=("dit_mini.models.latents:decode_latents",),
        atol=1e-4,
    ),
    # 12 fidelity
    Probe(
        "12.gaussian_fit",
        "",
        ("fit_gaussian",),
        "call",
        lambda g: [(_randn(g, 300, 6),)],
        ref("dit_mini.metrics.fid:gaussian_stats"),
    ),
    Probe(
        "12.frechet",
        "",
        ("frechet",),
        "call",
        lambda g: [(torch.zeros(4), torch.eye(4), _randn(g, 4), torch.eye(4) * 2)],
        ref("dit_mini.metrics.fid:frechet_distance"),
        atol=1e-4,
    ),
    Probe(
        "12.kid",
        "",
        ("kid_estimate",),
        "call",
        lambda g: [(_randn(g, 50, 6), _randn(g, 50, 6) * 1.3 + 0.2)],
        lambda: _one_subset_kid,
        atol=1e-6,
    ),
    # 13 mastering the art
    Probe(
        "13.tokenize",
        "",
        ("my_tokenize",),
        "call",
        lambda g: [(_captions(g), _int(g, 5, 9))],
        ref("dit_mini.data.clips:tokenize"),
        package=("dit_mini.data.clips:tokenize",),
    ),
    Probe(
        "13.tubelets",
        "",
        ("my_tubeletify",),
        "call",
        lambda g: [(_randn(g, 2, 1, 6, 8, 12), 3, 2)],
        ref("dit_mini.models.video:tubeletify"),
    ),
    Probe(
        "13.price_of_time",
        "",
        ("price_of_time",),
        "call",
        lambda g: (
            [(8, 16, 2, 4), (6, 12, 3, 2)]
            + [
                (pt * _int(g, 1, 40), p * _int(g, 1, 16), pt, p)
                for pt, p in ((_int(g, 1, 4), 2 ** _int(g, 1, 5)) for _ in range(3))
            ]
        ),
        lambda: _price_of_time,
    ),
    # 14 new game plus
    Probe(
        "14.embeddings",
        "sin-cos timestep embedding",
        ("my_timestep_embedding",),
        "call",
        lambda g: [(1000 * torch.rand(4, generator=g),), (1000 * torch.rand(4, generator=g), 8)],
        ref(E + "timestep_embedding"),
        package=(E + "timestep_embedding",),
    ),
    Probe(
        "14.embeddings",
        "timestep embedder",
        ("MyTimestepEmbedder",),
        "module",
        _module(E + "TimestepEmbedder", (192,), lambda g: (1000 * torch.rand(4, generator=g),)),
        ref(E + "TimestepEmbedder"),
        package=(E + "TimestepEmbedder",),
    ),
    Probe(
        "14.embeddings",
        "label embedder",
        ("MyLabelEmbedder",),
        "module",
        lambda g: [
            ((10, 192), _state(_label_embedder, g), (torch.randint(0, 11, (5,), generator=g),))
        ],
        lambda: _label_embedder,
        package=(E + "LabelEmbedder",),
    ),
    Probe(
        "14.patches",
        "patchify",
        ("my_patchify",),
        "call",
        lambda g: [(_randn(g, 2, 3, 32, 32), 4), (_randn(g, 1, 2, 4, 4), 2)],
        ref(M + "dit:patchify"),
        package=(M + "dit:patchify",),
    ),
    Probe(
        "14.patches",
        "unpatchify",
        ("my_unpatchify",),
        "call",
        lambda g: [(_randn(g, 2, 64, 48), 4, 3), (_randn(g, 2, 256, 12), 2, 3)],
        ref(M + "dit:unpatchify"),
        package=(M + "dit:unpatchify",),
    ),
    Probe(
        "14.patches",
        "patch embedding",
        ("MyPatchEmbed",),
        "module",
        _module(E + "PatchEmbed", (4, 3, 192), lambda g: (_randn(g, 2, 3, 32, 32),)),
        ref(E + "PatchEmbed"),
        package=(E + "PatchEmbed",),
    ),
    Probe(
        "14.positions",
        "",
        ("my_pos_embed",),
        "call",
        lambda g: [(192, 8), (16, _int(g, 2, 6))],
        ref(E + "sincos_2d"),
        package=(E + "sincos_2d",),
    ),
    Probe(
        "14.attention",
        "",
        ("MyAttention",),
        "module",
        _module(A + "Attention", (96, 3), lambda g: (_randn(g, 2, 10, 96),)),
        ref(A + "Attention"),
        package=(A + "Attention",),
    ),
    Probe(
        "14.block",
        "modulate",
        ("my_modulate",),
        "call",
        lambda g: [(TOKENS(g), COND(g), COND(g))],
        ref(B + "modulate"),
        package=(B + "modulate",),
    ),
    Probe(
        "14.block",
        "the block",
        ("MyDiTBlock",),
        "module",
        _module(B + "DiTBlock", (192, 3), lambda g: (TOKENS(g), COND(g))),
        ref(B + "DiTBlock"),
        package=(B + "DiTBlock",),
        atol=1e-4,
        rtol=1e-3,
    ),
    Probe(
        "14.block",
        "a fresh block is the identity",
        ("MyDiTBlock",),
        "fresh",
        lambda g: [((192, 3), (TOKENS(g), COND(g)), _int(g, 0, 2**31))],
        test=_is_input,
    ),
    Probe(
        "14.final_layer",
        "",
        ("MyFinalLayer",),
        "module",
        _module(B + "FinalLayer", (192, 4, 3), lambda g: (TOKENS(g), COND(g))),
        ref(B + "FinalLayer"),
        package=(B + "FinalLayer",),
    ),
    Probe(
        "14.final_layer",
        "a fresh one outputs zeros",
        ("MyFinalLayer",),
        "fresh",
        lambda g: [((192, 4, 3), (TOKENS(g), COND(g)), _int(g, 0, 2**31))],
        test=_is_zero,
    ),
    Probe(
        "14.mydit",
        "",
        ("MyDiT",),
        "module",
        lambda g: [
            (
                (Config("tiny"),),
                _state(lambda: ref(M + "dit:DiT")()(ref(M + "dit:dit_config")()("tiny")), g),
                (
                    _randn(g, 2, 3, 32, 32),
                    1000 * torch.rand(2, generator=g),
                    torch.randint(0, 11, (2,), generator=g),
                ),
            )
        ],
        ref(M + "dit:DiT"),
        package=(M + "dit:DiT",),
        atol=1e-3,
        rtol=1e-3,
    ),
    Probe(
        "14.mydit",
        "an untrained MyDiT predicts zero",
        ("MyDiT",),
        "fresh",
        lambda g: [
            (
                (Config("nano"),),
                (_randn(g, 2, 3, 32, 32), 1000 * torch.rand(2, generator=g), None),
                0,
            )
        ],
        test=_is_zero,
    ),
    Probe(
        "14.flow_loss",
        "logit-normal times",
        ("my_logit_normal_times",),
        "call",
        lambda g: [(_int(g, 3, 9), Generator(_int(g, 0, 2**31)))],
        lambda: _flow_times,
    ),
    Probe(
        "14.flow_loss",
        "the loss on the boss",
        ("my_flow_loss",),
        "call_no_grad",
        lambda g: [
            (
                Pretrained("dit-tiny"),
                _randn(g, 3, 3, 32, 32),
                torch.randint(0, 10, (3,), generator=g),
                torch.rand(3, generator=g),
                _randn(g, 3, 3, 32, 32),
            )
        ],
        lambda: _flow_loss,
    ),
    Probe(
        "14.train_step",
        "EMA update",
        ("my_ema_update",),
        "ema",
        lambda g: [(0.5 + 0.45 * float(torch.rand(1, generator=g)),)],
        ref(NGP + "ema_update"),
        package=(NGP + "ema_update",),
    ),
    Probe(
        "14.train_step",
        "two steps on a small DiT",
        ("my_train_step",),
        "train_steps",
        lambda g: [(_int(g, 0, 2**31),)],
        ref(NGP + "train_step"),
        package=(NGP + "train_step",),
        atol=1e-4,
    ),
    Probe(
        "14.train_loop",
        "",
        ("my_train_loop",),
        "loop_trace",
        lambda g: [
            (
                _int(g, 0, 2**31),
                _int(g, 5, 9),
                3,
                0.5 + float(torch.rand(1, generator=g)),
                _int(g, 2, 5),
            )
        ],
        test=_loop_test,
        package=(NGP + "train_loop",),
    ),
    Probe(
        "14.sampler",
        "",
        ("my_euler_sample",),
        "call_no_grad",
        lambda g: [
            (
                Pretrained("dit-tiny"),
                _randn(g, 2, 3, 32, 32),
                torch.randint(0, 10, (2,), generator=g),
                _int(g, 2, 5),
                1.0 + 3 * float(torch.rand(1, generator=g)),
            )
        ],
        ref(NGP + "euler_sample_cfg"),
        package=(NGP + "euler_sample_cfg",),
        atol=1e-4,
    ),
    Probe("14.quiz_1", "", ("quiz_1",), "value", lambda g: [()], test=_hash_test("e9d71f5e")),
    Probe("14.quiz_2", "", ("quiz_2",), "value", lambda g: [()], test=_hash_test("84a51684")),
    Probe("14.quiz_3", "", ("quiz_3",), "value", lambda g: [()], test=_hash_test("e9d71f5e")),
]


def probes_of(exercise: str) -> list[Probe]:
    """The probes of `exercise` (empty when it is not probed)."""
    return [p for p in PROBES if p.exercise == exercise]


def _not_probed() -> list[str]:
    # deferred: imported where needed, not at the grader's start
    from ..hints import EXERCISES

    probed = {p.exercise for p in PROBES}
    return [name for name in EXERCISES if name not in probed]


NOT_PROBED = _not_probed()
