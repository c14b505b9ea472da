"""The probes of notebooks 05-08 (mystic lens, whispers, legendary gear, summon signs): patches
and positions, attention and its heads, the adaLN-Zero block and its embeddings, label dropout
and classifier-free guidance.

One `entry` per graded call (see `dit_mini.course.grading.probe`); the functions above the
table are the references the package has no single function for, and the tests of answers that
are random by nature. Assembled by `dit_mini.course.grading.probes`.
"""

from __future__ import annotations

import torch

from .codec import Generator, Pretrained
from .probe import A, B, E, M, Probe, cond, entry, integer, randn, tokens

__all__ = ["PROBES"]


def _context_window(input_size, patch_size, num_heads, depth):
    tokens = (input_size // patch_size) ** 2
    entries = depth * num_heads * tokens * tokens
    return {"tokens": tokens, "entries": entries, "megabytes": entries * 4 / 1e6}


def _block_forward(block, x, c):
    return block(x, c)


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


def _dropout_test(output, args) -> str | None:
    y, p, null = args[0], args[1], args[2]
    if not isinstance(output, torch.Tensor) or output.shape != y.shape:
        return f"expected a tensor of shape {tuple(y.shape)}"
    dropped = output == null
    share, error = dropped.float().mean().item(), 5 * (p * (1 - p) / len(y)) ** 0.5
    if abs(share - p) > error:
        return f"{share:.3f} of the labels were dropped; expected {p:.3f}"
    return None if torch.equal(output[~dropped], y[~dropped]) else "kept labels changed"


def _combine(c, u, w):
    """The package's guidance combination of conditional `c` and unconditional `u` at scale w."""
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.guidance import combine_guidance

    return combine_guidance(c, u, w, pred_channels=c.shape[1])


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


MAPS = "dit_mini.studies.attention_maps:"

PROBES: list[Probe] = [
    # 05 mystic lens
    entry(
        "05.patchify",
        "my_patchify",
        lambda g: [
            (randn(g, 2, 3, 16, 16), 4),
            (randn(g, 2, 3, 16, 16), 8),
            (randn(g, 1, 2, 4, 12), 2),
        ],
        M + "dit:patchify",
        own=True,
    ),
    entry(
        "05.context_window",
        "context_window",
        lambda g: [
            (32 * integer(g, 1, 3), 2 ** integer(g, 0, 3), integer(g, 1, 8), integer(g, 1, 12))
            for _ in range(3)
        ],
        _context_window,
    ),
    entry(
        "05.sincos",
        "my_sincos_1d",
        lambda g: [
            (2 * integer(g, 2, 64), torch.arange(integer(g, 3, 20))),
            (8, 50 * torch.rand(4, generator=g)),
        ],
        E + "sincos_1d",
        own=True,
    ),
    # 06 whispers
    entry(
        "06.attention_weights",
        "my_attention_weights",
        lambda g: [(randn(g, 2, 3, 9, 16), randn(g, 2, 3, 5, 16))],
        A + "attention_weights",
        own=True,
    ),
    entry(
        "06.heads",
        "my_split_heads",
        lambda g: [(randn(g, 2, 10, 48), 3)],
        MAPS + "split_heads",
        part="split",
    ),
    entry(
        "06.heads",
        "my_merge_heads",
        lambda g: [(randn(g, 2, 3, 10, 16),)],
        MAPS + "merge_heads",
        part="merge",
    ),
    entry(
        "06.attention_distance",
        "my_mean_attention_distance",
        lambda g: [(torch.softmax(randn(g, 2, 3, 16, 16), -1), 4)],
        MAPS + "mean_attention_distance",
    ),
    # 07 legendary gear
    entry(
        "07.modulate",
        "my_modulate",
        lambda g: [(tokens(g), cond(g), cond(g))],
        B + "modulate",
        own=True,
    ),
    entry(
        "07.timestep_embedding",
        "my_timestep_embedding",
        lambda g: [
            (1000 * torch.rand(5, generator=g), 256),
            (1000 * torch.rand(3, generator=g), 8),
        ],
        E + "timestep_embedding",
        own=True,
    ),
    entry(
        "07.dit_block",
        "my_dit_block",
        lambda g: [(Pretrained("dit-tiny", f"blocks.{integer(g, 0, 6)}"), tokens(g), cond(g))],
        _block_forward,
        harness="call_no_grad",
        atol=1e-4,
    ),
    entry("07.first_gradients", "first_learners", harness="names", test=_first_learners_test),
    # 08 summon signs
    entry(
        "08.label_dropout",
        "my_drop_labels",
        lambda g: [
            (
                torch.arange(20_000) % 10,
                0.05 + 0.3 * float(torch.rand(1, generator=g)),
                10,
                Generator(integer(g, 0, 2**31)),
            )
        ],
        test=_dropout_test,
    ),
    entry(
        "08.guidance",
        "my_combine",
        lambda g: [(randn(g, 2, 3, 8, 8), randn(g, 2, 3, 8, 8), w) for w in (0.0, 1.0, 4.5)],
        _combine,
    ),
    entry(
        "08.diversity",
        "my_diversity",
        lambda g: [(randn(g, 40, 8), torch.randint(0, 4, (40,), generator=g))],
        "dit_mini.studies.guidance_study:within_class_diversity",
    ),
    entry(
        "08.cfg_bayes",
        "my_guided_score",
        _score_cases,
        _guided_score,
        package=("dit_mini.diffusion.guidance:combine_guidance",),
        atol=1e-8,
    ),
]
