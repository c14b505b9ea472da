"""The probes of notebook 14 (new game plus: a DiT from scratch): its embeddings, patches,
positions, attention, block and final layer as modules loaded with the package's weights, the
whole model, its flow-matching loss, the training step, loop and EMA, the sampler, the quiz.

Modules are graded twice: loaded with a random state dict of the package's class (the outputs
must match), and freshly built (adaLN-Zero: a fresh block is the identity, a fresh final layer
and DiT output zeros). One `entry` per graded call (see `dit_mini.course.grading.probe`).
Assembled by `dit_mini.course.grading.probes`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch

from .codec import Config, Generator, Pretrained
from .probe import NGP, A, B, E, M, Probe, cond, entry, integer, module_case, randn, ref, state
from .probe import tokens as toks
from .probes_denoise import flow_loss, loss_cases

__all__ = ["PROBES"]


def _label_embedder(*_):
    # deferred: imported where needed, not at the grader's start
    from ...models.embeddings import LabelEmbedder

    return LabelEmbedder(10, 192, 0.1)


def _flow_times(n, generator):
    # deferred: imported where needed, not at the grader's start
    from ...diffusion.losses import make_loss
    from ..new_game_plus import FLOW  # deferred, as above

    return make_loss(FLOW).draw(torch.zeros(n, 1, 1, 1), generator)[0]


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


def _hash_test(digest: str) -> Callable:
    def test(output, args) -> str | None:
        return (
            None if hashlib.sha1(str(output).encode()).hexdigest()[:8] == digest else "wrong answer"
        )

    return test


def _dit_case(g) -> list[tuple]:
    """The tiny DiT with a random state, on a batch of 2 images, times and labels."""
    dit = ref(M + "dit:DiT")()(ref(M + "dit:dit_config")()("tiny"))
    weights = state(lambda: dit, g)
    inputs = (
        randn(g, 2, 3, 32, 32),
        1000 * torch.rand(2, generator=g),
        torch.randint(0, 11, (2,), generator=g),
    )
    return [((Config("tiny"),), weights, inputs)]


def _fresh(ctor: tuple) -> Callable:
    """Inputs of the "fresh" harness: a seeded cls(*ctor) on tiny-DiT tokens and conditions."""
    return lambda g: [(ctor, (toks(g), cond(g)), integer(g, 0, 2**31))]


PROBES: list[Probe] = [
    entry(
        "14.embeddings",
        "my_timestep_embedding",
        lambda g: [(1000 * torch.rand(4, generator=g),), (1000 * torch.rand(4, generator=g), 8)],
        E + "timestep_embedding",
        part="sin-cos timestep embedding",
        own=True,
    ),
    entry(
        "14.embeddings",
        "MyTimestepEmbedder",
        module_case(E + "TimestepEmbedder", (192,), lambda g: (1000 * torch.rand(4, generator=g),)),
        E + "TimestepEmbedder",
        part="timestep embedder",
        harness="module",
        own=True,
    ),
    entry(
        "14.embeddings",
        "MyLabelEmbedder",
        lambda g: [
            ((10, 192), state(_label_embedder, g), (torch.randint(0, 11, (5,), generator=g),))
        ],
        _label_embedder,
        part="label embedder",
        harness="module",
        package=(E + "LabelEmbedder",),
    ),
    entry(
        "14.patches",
        "my_patchify",
        lambda g: [(randn(g, 2, 3, 32, 32), 4), (randn(g, 1, 2, 4, 4), 2)],
        M + "dit:patchify",
        part="patchify",
        own=True,
    ),
    entry(
        "14.patches",
        "my_unpatchify",
        lambda g: [(randn(g, 2, 64, 48), 4, 3), (randn(g, 2, 256, 12), 2, 3)],
        M + "dit:unpatchify",
        part="unpatchify",
        own=True,
    ),
    entry(
        "14.patches",
        "MyPatchEmbed",
        module_case(E + "PatchEmbed", (4, 3, 192), lambda g: (randn(g, 2, 3, 32, 32),)),
        E + "PatchEmbed",
        part="patch embedding",
        harness="module",
        own=True,
    ),
    entry(
        "14.positions",
        "my_pos_embed",
        lambda g: [(192, 8), (16, integer(g, 2, 6))],
        E + "sincos_2d",
        own=True,
    ),
    entry(
        "14.attention",
        "MyAttention",
        module_case(A + "Attention", (96, 3), lambda g: (randn(g, 2, 10, 96),)),
        A + "Attention",
        harness="module",
        own=True,
    ),
    entry(
        "14.block",
        "my_modulate",
        lambda g: [(toks(g), cond(g), cond(g))],
        B + "modulate",
        part="modulate",
        own=True,
    ),
    entry(
        "14.block",
        "MyDiTBlock",
        module_case(B + "DiTBlock", (192, 3), lambda g: (toks(g), cond(g))),
        B + "DiTBlock",
        part="the block",
        harness="module",
        own=True,
        atol=1e-4,
        rtol=1e-3,
    ),
    entry(
        "14.block",
        "MyDiTBlock",
        _fresh((192, 3)),
        part="a fresh block is the identity",
        harness="fresh",
        test=_is_input,
    ),
    entry(
        "14.final_layer",
        "MyFinalLayer",
        module_case(B + "FinalLayer", (192, 4, 3), lambda g: (toks(g), cond(g))),
        B + "FinalLayer",
        harness="module",
        own=True,
    ),
    entry(
        "14.final_layer",
        "MyFinalLayer",
        _fresh((192, 4, 3)),
        part="a fresh one outputs zeros",
        harness="fresh",
        test=_is_zero,
    ),
    entry(
        "14.mydit",
        "MyDiT",
        _dit_case,
        M + "dit:DiT",
        harness="module",
        own=True,
        atol=1e-3,
        rtol=1e-3,
    ),
    entry(
        "14.mydit",
        "MyDiT",
        lambda g: [
            (
                (Config("nano"),),
                (randn(g, 2, 3, 32, 32), 1000 * torch.rand(2, generator=g), None),
                0,
            )
        ],
        part="an untrained MyDiT predicts zero",
        harness="fresh",
        test=_is_zero,
    ),
    entry(
        "14.flow_loss",
        "my_logit_normal_times",
        lambda g: [(integer(g, 3, 9), Generator(integer(g, 0, 2**31)))],
        _flow_times,
        part="logit-normal times",
    ),
    entry(
        "14.flow_loss",
        "my_flow_loss",
        loss_cases,
        flow_loss,
        part="the loss on the boss",
        harness="call_no_grad",
    ),
    entry(
        "14.train_step",
        "my_ema_update",
        lambda g: [(0.5 + 0.45 * float(torch.rand(1, generator=g)),)],
        NGP + "ema_update",
        part="EMA update",
        harness="ema",
        own=True,
    ),
    entry(
        "14.train_step",
        "my_train_step",
        lambda g: [(integer(g, 0, 2**31),)],
        NGP + "train_step",
        part="two steps on a small DiT",
        harness="train_steps",
        own=True,
        atol=1e-4,
    ),
    entry(
        "14.train_loop",
        "my_train_loop",
        lambda g: [
            (
                integer(g, 0, 2**31),
                integer(g, 5, 9),
                3,
                0.5 + float(torch.rand(1, generator=g)),
                integer(g, 2, 5),
            )
        ],
        harness="loop_trace",
        test=_loop_test,
        package=(NGP + "train_loop",),
    ),
    entry(
        "14.sampler",
        "my_euler_sample",
        lambda g: [
            (
                Pretrained("dit-tiny"),
                randn(g, 2, 3, 32, 32),
                torch.randint(0, 10, (2,), generator=g),
                integer(g, 2, 5),
                1.0 + 3 * float(torch.rand(1, generator=g)),
            )
        ],
        NGP + "euler_sample_cfg",
        harness="call_no_grad",
        own=True,
        atol=1e-4,
    ),
    *[
        entry(f"14.quiz_{i}", f"quiz_{i}", harness="value", test=_hash_test(digest))
        for i, digest in [(1, "e9d71f5e"), (2, "84a51684"), (3, "e9d71f5e")]
    ],
]
