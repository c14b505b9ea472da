"""Issue 24's speed levers compute what they replace: the sigmoid-form GELU(tanh), the for-each
EMA, the epoch order made once per epoch; the learning-rate decay; the two studies' helpers."""

import copy
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from dit_mini.diffusion.losses import make_loss
from dit_mini.metrics.flops import count_gflops
from dit_mini.models.dit import DiT, dit_config
from dit_mini.models.dit_block import Mlp, TanhGELU
from dit_mini.studies import recipe_race, step_levers
from dit_mini.studies.step_levers import step_matmuls, time_matmuls
from dit_mini.train.config import TrainConfig, batch_indices, derive_seed
from dit_mini.train.resume import config_diff, with_new_defaults


def test_tanh_gelu_is_torchs_gelu_tanh_forward_and_backward():
    x = torch.randn(4, 7, 33, generator=torch.Generator().manual_seed(0)) * 3
    x.requires_grad_()
    ours, theirs = TanhGELU()(x), F.gelu(x, approximate="tanh")
    assert torch.allclose(ours, theirs, atol=1e-6, rtol=0), (ours - theirs).abs().max()
    g = torch.randn_like(x)
    (ga,) = torch.autograd.grad(ours, x, g)
    (gb,) = torch.autograd.grad(theirs, x, g)
    assert torch.allclose(ga, gb, atol=1e-6, rtol=0)
    x64 = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(TanhGELU(), (x64,))
    assert isinstance(Mlp(8, 16).act, torch.nn.GELU) and Mlp(8, 16).act.approximate == "tanh"


def test_lr_decay_schedules():
    none = TrainConfig(steps=100, lr=1.0, warmup_steps=10)
    lin = TrainConfig(steps=100, lr=1.0, warmup_steps=10, lr_decay="linear")
    cos = TrainConfig(steps=100, lr=1.0, warmup_steps=10, lr_decay="cosine")
    for cfg in (none, lin, cos):
        assert cfg.lr_at(0) == pytest.approx(0.1) and cfg.lr_at(9) == pytest.approx(1.0)
        assert cfg.lr_at(10) == pytest.approx(1.0)
    assert none.lr_at(99) == 1.0
    assert lin.lr_at(55) == pytest.approx(0.5) and lin.lr_at(99) == pytest.approx(1 / 90)
    assert cos.lr_at(55) == pytest.approx(0.5)
    assert 0 < cos.lr_at(99) < 1e-3 and cos.lr_at(150) == 0.0
    lrs = [cos.lr_at(s) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    with pytest.raises(ValueError, match="lr_decay must be one of"):
        TrainConfig(lr_decay="exp")


def test_a_run_saved_before_lr_decay_existed_still_resumes():
    model = DiT(dit_config("nano", depth=1))
    train = dict(TrainConfig().__dict__)
    old = {"model": {}, "train": {k: v for k, v in train.items() if k != "lr_decay"}}
    filled = with_new_defaults(old, model, {})
    assert filled["train"]["lr_decay"] == "none"
    assert config_diff(filled, {"model": {}, "train": train}) == []


def test_epoch_order_made_once_is_the_order_drawn_every_step():
    def fresh(step, batch, n, seed):  # the formula before issue 24: a randperm per step
        start, stop, parts = step * batch, (step + 1) * batch, []
        for epoch in range(start // n, (stop - 1) // n + 1):
            g = torch.Generator().manual_seed(derive_seed(seed, "data", epoch))
            perm = torch.randperm(n, generator=g)
            parts.append(perm[max(start - epoch * n, 0) : min(stop - epoch * n, n)])
        return torch.cat(parts)

    for step in range(12):  # crosses epoch boundaries of a 37-image set
        idx = batch_indices(step, 8, 37, 3)
        assert torch.equal(idx, fresh(step, 8, 37, 3))
        idx[:] = -1  # a caller writing to its batch must not change the cached order
    assert torch.equal(batch_indices(0, 8, 37, 3), fresh(0, 8, 37, 3))


def test_foreach_ema_equals_the_python_loop():
    session = step_levers.make_session("nano", batch=4, n_images=16)
    twin = copy.deepcopy(session.ema)
    session.train_step()
    decay = session.config.ema_decay_at(0)
    with torch.no_grad():
        for e, p in zip(twin.parameters(), session.model.parameters()):
            e.lerp_(p, 1.0 - decay)
    for a, b in zip(twin.parameters(), session.ema.parameters()):
        assert torch.equal(a, b)


def test_step_levers_interleave_and_reference_errors():
    r = step_levers.interleave("loop-ema", "nano", batch=2, rounds=2, steps=1)
    assert r["clock"] == "cpu" and r["ratio"] > 0 and len(r["ratios"]) == 2
    with pytest.raises(ValueError, match="unknown lever"):
        step_levers.interleave("warp-drive")
    with pytest.raises(FileNotFoundError, match="reference DiT's models.py"):
        step_levers.load_reference("/nonexistent/models.py")


def test_step_matmuls_are_three_times_the_forward_products():
    """The matrix products of a training step (the floor `against_reference` prints): forward,
    input gradient and weight gradient of every Linear, six batched products per attention."""
    model = DiT(dit_config("nano", num_classes=10))
    x, t, y = torch.randn(2, 3, 32, 32), torch.rand(2) * 999, torch.tensor([1, 2])
    products = step_matmuls(model, x, t, y)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    attentions = model.config.depth
    assert len(products) == 3 * len(linears) + 6 * attentions
    flops = sum(2 * math.prod(a) * b[-1] for a, b in products)
    patch_macs = 2 * 64 * 3 * 4 * 4 * model.config.hidden_size  # the patch embedding is a conv
    forward_flops = 2 * (count_gflops(model, batch=2) * 1e9 * 2 - patch_macs)
    assert flops == pytest.approx(3 * forward_flops, rel=0.01)
    for a, b in products:  # every pair multiplies: inner sizes agree
        assert a[-1] == b[-2] and a[:-2] == b[:-2]
    wall, cpu = time_matmuls(products[:6])
    assert wall > 0 and cpu >= 0


def test_recipe_race_variants_and_images_to_goal():
    v = recipe_race.variant("decay-cos-2000")
    assert v.train.steps == 2000 and v.train.lr_decay == "cosine" and v.preset == "nano"
    # the recorded races ran on issue 4's recipe, whatever the quickstart's defaults are now
    assert (v.train.lr, v.train.adam_beta2) == (3e-3, 0.999)
    assert recipe_race.variant("decay-cos-2000-lr5e-3").train.lr == 5e-3
    points = [{"images": 100, "class_accuracy": 0.5}, {"images": 200, "class_accuracy": 0.93}]
    assert recipe_race.images_to_goal(points) == 200
    assert recipe_race.images_to_goal(points[:1]) is None
    with pytest.raises(ValueError, match="unknown variant"):
        recipe_race.variant("nope")
    assert math.isclose(recipe_race.GOAL, 0.9)


_FAULTS = """
import ctypes, os, resource, sys, torch
from dit_mini.train import memory
# glibc's default thresholds (128 KiB), set explicitly: left alone, glibc raises them by itself
# after the first free of a large block, and whether that then keeps the pages depends on where
# Python's own objects land in the heap (about 1 run in 6 here), which would make this test flaky
libc = ctypes.CDLL("libc.so.6")
libc.mallopt(-3, 128 << 10), libc.mallopt(-1, 128 << 10)  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
kept = memory.keep_freed_memory() if sys.argv[1] == "keep" else False
torch.ones(1)  # torch's own start-up allocations first
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(30):  # a step's worth of tensors made and freed again, 30 times
    tensors = [torch.ones(3 << 18) for _ in range(10)]  # 10 x 3 MiB
    del tensors
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is Linux's")
def test_keep_freed_memory_stops_the_page_faults_of_every_step():
    def faults(mode: str) -> tuple[str, int]:
        out = subprocess.run(
            [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True,
            env={**os.environ, "DIT_MINI_KEEP_FREED_MEMORY": "1"},
        ).stdout.split()  # fmt: skip
        return out[0], int(out[1])

    (kept, with_lever), (_, without) = faults("keep"), faults("leave")
    assert kept == "True"
    # without the lever every round gives the 30 MiB back and faults it in again (~7,700 pages)
    assert without > 30 * 3000 and with_lever < without / 5, (with_lever, without)


def test_keep_freed_memory_can_be_turned_off_and_the_trainer_asks_for_it(monkeypatch):
    from dit_mini.train import memory, trainer

    monkeypatch.setattr(memory, "_kept", None)
    monkeypatch.setenv("DIT_MINI_KEEP_FREED_MEMORY", "0")
    assert memory.keep_freed_memory() is False
    asked = []
    monkeypatch.setattr(trainer, "keep_freed_memory", lambda: asked.append(1) or True)
    data = (torch.rand(8, 3, 8, 8) * 2 - 1, torch.arange(8) % 2)
    model = DiT(dit_config("nano", input_size=8, num_classes=2, patch_size=4, depth=1))
    trainer.fit(model, make_loss(), data, TrainConfig(steps=1, batch_size=4), quiet=True,
                device="cpu")  # fmt: skip
    assert asked == [1]


def test_adam_beta2_reaches_the_optimizer_and_old_runs_resume_with_the_default():
    from dit_mini.train.session import make_adamw

    w = [torch.nn.Parameter(torch.zeros(2))]
    assert make_adamw(w, 1e-3, 0.0, 0.95).param_groups[0]["betas"] == (0.9, 0.95)
    assert make_adamw(w, 1e-3, 0.0).param_groups[0]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="adam_beta2"):
        TrainConfig(adam_beta2=1.0)
    saved = {"train": {k: v for k, v in vars(TrainConfig()).items() if k != "adam_beta2"}}
    filled = with_new_defaults(saved, torch.nn.Linear(1, 1), {})
    assert filled["train"]["adam_beta2"] == 0.999
