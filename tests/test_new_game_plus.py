"""Notebook 14's references and check predicates (dit_mini.course.new_game_plus): each passes the
package's own pieces and fails a piece with a typical mistake."""

import copy
import inspect
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from dit_mini.course.exercises import check
from dit_mini.course.medium_mode import steps_to_recognizable
from dit_mini.course.new_game_plus import (
    BUDGETS,
    FLOW,
    RELICS_CHECK_STEPS,
    TrainingView,
    ema_result,
    ema_update,
    euler_sample_cfg,
    fresh_output,
    loop_test,
    module_test,
    snapshot_figure,
    step_result,
    too_little_training,
    train_loop,
    train_step,
    training_budget,
    yours_or_package,
)
from dit_mini.diffusion.losses import generate
from dit_mini.models.attention import Attention
from dit_mini.models.dit import DiT, DiTBlock, dit_config
from dit_mini.train.recipes import RECIPES


def small_dit(seed=0):
    torch.manual_seed(seed)
    return DiT(dit_config("nano", input_size=8, hidden_size=32, depth=2, num_heads=2, patch_size=2))


class RenamedAttention(nn.Module):
    """The package's attention with its projection under another name (a strict-load mistake)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.inner = Attention(dim, heads)

    def forward(self, x):
        return self.inner(x)


class NoScaleAttention(Attention):
    """Attention that forgets 1 / sqrt(d): same names and shapes, different outputs."""

    def forward(self, x, return_weights=False):
        B, L, D = x.shape
        q, k, v = self.qkv(x).reshape(B, L, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        out = torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(B, L, D))


def test_module_test_passes_the_package_and_names_the_mistakes():
    torch.manual_seed(0)
    reference, x = Attention(16, 2), torch.randn(2, 5, 16)
    assert module_test(reference, (16, 2), (x,))(Attention) is True
    renamed = module_test(reference, (16, 2), (x,))(RenamedAttention)
    assert "missing qkv.weight" in renamed and "unexpected inner.qkv.weight" in renamed
    unscaled = module_test(reference, (16, 2), (x,))(NoScaleAttention)
    assert isinstance(unscaled, str) and "values differ" in unscaled
    assert "expected an nn.Module" in module_test(reference, (16, 2), (x,))(lambda d, h: 3)


def test_module_test_inside_check_reads_an_unsolved_class_as_not_solved(capsys):
    class Stub(nn.Module):
        def __init__(self, dim, heads):
            raise NotImplementedError

    torch.manual_seed(0)
    assert not check(
        "attention", Stub, test=module_test(Attention(8, 2), (8, 2), (torch.ones(1, 3, 8),))
    )
    assert "not solved yet" in capsys.readouterr().out


def test_fresh_output_is_seeded_and_leaves_the_global_generator_alone():
    x, c = torch.randn(2, 16, 32), torch.randn(2, 32)
    state = torch.random.get_rng_state()
    assert torch.equal(fresh_output(lambda: small_dit().blocks[0], (), (x, c)), x)  # adaLN-Zero
    assert fresh_output(lambda: small_dit().final_layer, (), (x, c)).abs().max() == 0
    assert not torch.equal(fresh_output(DiTBlock, (32, 2), (x, c)), x)  # no zero init: changes x
    assert torch.equal(torch.random.get_rng_state(), state)
    a, b = (
        fresh_output(nn.Linear, (3, 3), (x[..., :3],)),
        fresh_output(nn.Linear, (3, 3), (x[..., :3],)),
    )
    assert torch.equal(a, b)


def test_yours_or_package_says_which(capsys):
    assert yours_or_package("sampler", True, "mine", "theirs") == "mine"
    assert "Using your sampler" in capsys.readouterr().out
    assert yours_or_package("sampler", False, "mine", "theirs") == "theirs"
    assert "not solved yet" in capsys.readouterr().out


def test_ema_update_moves_towards_the_model_and_copies_buffers():
    model, ema = small_dit(0), small_dit(1)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    ema_update(ema, model, 0.9)
    name = "blocks.0.attn.qkv.weight"
    expected = 0.9 * before[name] + 0.1 * model.state_dict()[name]
    assert torch.allclose(ema.state_dict()[name], expected, atol=1e-7)


def test_ema_result_tells_a_wrong_decay_apart():
    right = ema_result(ema_update)
    assert check("ema", lambda: ema_result(ema_update), right, inputs=(), quiet=True)

    def swapped(ema, model, decay):  # weights the model by decay instead of 1 - decay
        ema_update(ema, model, 1 - decay)

    assert not check("ema", lambda: ema_result(swapped), right, inputs=(), quiet=True)


def test_train_step_learns_and_step_result_catches_a_missing_clip():
    result = step_result(train_step, steps=2)
    assert len(result["losses"]) == 2 and all(math.isfinite(v) for v in result["losses"])
    again = step_result(train_step, steps=2)
    assert check("step", lambda: again, result, inputs=(), quiet=True)  # deterministic

    def no_clip(*args):
        return train_step(*args, grad_clip=0.0)

    assert not check("step", lambda: step_result(no_clip), result, inputs=(), quiet=True)

    def no_dropout(*args):
        return train_step(*args, class_dropout_prob=0.0)

    assert not check("step", lambda: step_result(no_dropout), result, inputs=(), quiet=True)


def test_loop_test_passes_the_reference_and_names_loop_mistakes():
    assert loop_test(train_loop) is True

    def no_warmup(step_fn, model, ema, optimizer, images, labels, steps, **kw):
        return train_loop(step_fn, model, ema, optimizer, images, labels, steps,
                          **{**kw, "warmup": 1})  # fmt: skip

    assert "warm up" in loop_test(no_warmup)

    def one_batch(step_fn, model, ema, optimizer, images, labels, steps, batch_size=16, lr=3e-3,
                  warmup=100, seconds=None, generator=None, on_step=None):  # fmt: skip
        history = []
        for s in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = lr * min(1.0, (s + 1) / warmup)
            history.append(step_fn(model, ema, optimizer, images[:batch_size],
                                   labels[:batch_size], generator))  # fmt: skip
            if on_step:
                on_step(s, history[-1])
        return history

    assert "same batch" in loop_test(one_batch)

    def notebook_numbers(step_fn, model, ema, optimizer, images, labels, steps, **kw):
        # the notebook's first configuration written into the loop
        kw = {**kw, "batch_size": 3, "lr": 0.8, "warmup": 4}
        return train_loop(step_fn, model, ema, optimizer, images, labels, 6, **kw)

    message = loop_test(notebook_numbers)
    assert message is not True and "steps=5, batch_size=2" in message

    def global_rng(step_fn, model, ema, optimizer, images, labels, steps, batch_size=16, lr=3e-3,
                   warmup=100, seconds=None, generator=None, on_step=None):  # fmt: skip
        history = []
        for s in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = lr * min(1.0, (s + 1) / warmup)
            idx = torch.randint(0, len(images), (batch_size,))  # not from `generator`
            history.append(step_fn(model, ema, optimizer, images[idx], labels[idx], generator))
            if on_step:
                on_step(s, history[-1])
        return history

    assert "global random state" in loop_test(global_rng)


def test_euler_sample_cfg_is_the_package_sampler():
    model = small_dit().eval()
    with torch.no_grad():
        for block in model.blocks:  # non-zero gates and output, so the samples depend on y
            nn.init.normal_(block.adaLN_modulation[-1].weight, std=0.2)
        nn.init.normal_(model.final_layer.linear.weight, std=0.2)
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3])
    ours = euler_sample_cfg(model, x, y, steps=3, cfg_scale=2.0)
    theirs = generate(model, FLOW, y=y, sampler="euler", steps=3, cfg_scale=2.0, x_T=x)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert not torch.allclose(ours, euler_sample_cfg(model, x, y, steps=3, cfg_scale=1.0))


def test_training_view_keeps_snapshots_and_refuses_a_nan_loss(monkeypatch):
    monkeypatch.setenv("DIT_MINI_THREADS", "1")
    ema = small_dit()
    view = TrainingView(
        ema, draw=lambda m: torch.zeros(4, 3, 8, 8), class_names=["a", "b"], per_row=2,
        every_s=1e9, every_steps=3, live=False,
    )  # fmt: skip
    for step in range(7):
        view.update(step, 1.0 / (step + 1))
    view.finish()
    assert [s.step for s in view.snapshots] == [3, 6, 7]
    assert view.figure(0) is not None and view.figure(-1) is not None
    with pytest.raises(FloatingPointError, match="diverged"):
        view.update(7, float("nan"))
    with pytest.raises(ValueError, match="no snapshots"):
        snapshot_figure([], 0, [], ["a"], 1)


def test_step_result_uses_copies_not_the_callers_models():
    model = small_dit()
    before = copy.deepcopy(model.state_dict())
    step_result(train_step)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_training_budget_follows_the_course_mode(monkeypatch):
    for key in ("CI", "DIT_MINI_FAST", "DIT_MINI_MODE"):
        monkeypatch.delenv(key, raising=False)
    assert training_budget().mode == "medium"  # the laptop default
    monkeypatch.setenv("DIT_MINI_FAST", "1")
    assert training_budget().steps == 40 and training_budget().check_steps == 0
    monkeypatch.setenv("DIT_MINI_MODE", "full")
    assert training_budget().seconds == 600.0
    assert training_budget("medium").steps >= RELICS_CHECK_STEPS  # medium reaches the check
    with pytest.raises(ValueError, match="'laptop' is not one of fast, medium, full"):
        training_budget("laptop")


def test_a_short_run_is_told_so_honestly_and_a_long_one_is_checked():
    medium, full = BUDGETS["medium"], BUDGETS["full"]
    message = too_little_training(656, 600.0, full)
    assert "your run got 656 steps in 10.0 minutes, fewer than the 3,000" in message
    assert "run the training cell again, it continues" in message
    assert "check the step" not in message and "died" not in message.lower()
    assert too_little_training(RELICS_CHECK_STEPS, 120.0, medium) is None
    assert "noise" in too_little_training(40, 3.0, BUDGETS["fast"])


def test_notebook_14_trains_with_the_quickstarts_optimizer_and_malloc_setting():
    """The learner's DiT gets what makes the package fast (issue 24): the quickstart's AdamW
    (lr, betas) and the trainer's CPU malloc setting, and medium_mode measures that recipe."""
    recipe = RECIPES["quickstart"].train
    nb = Path(__file__).parents[1] / "notebooks" / "solutions" / "14_new_game_plus.ipynb"
    cells = ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"]]
    training = [c for c in cells if "budget = training_budget(MODE)" in c]
    assert len(training) == 1, "notebook 14 has one training cell"
    (cell,) = training
    assert "keep_freed_memory()" in cell
    assert "torch.optim.AdamW(model.parameters(), lr=4e-3, betas=(0.9, 0.95))" in cell
    assert "lr=4e-3, warmup=" in cell  # the loop's warm-up climbs to the same rate
    assert (recipe.lr, recipe.adam_beta2) == (4e-3, 0.95)  # the notebook's numbers are these
    defaults = inspect.signature(steps_to_recognizable).parameters
    assert (defaults["lr"].default, defaults["beta2"].default) == (recipe.lr, recipe.adam_beta2)
