"""The optimizer step shared by the trainer and notebook 14 (dit_mini.train.step), and the
trainer's use of it: EMA warm-up, clipping that engages on the model, the exported EMA file."""

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from dit_mini.course import new_game_plus
from dit_mini.diffusion.losses import make_loss
from dit_mini.models.dit import DiT, dit_config
from dit_mini.registry import load_model
from dit_mini.storage import load_tensors
from dit_mini.train.config import TrainConfig
from dit_mini.train.step import clip_and_step, ema_decay_at, ema_update, lr_at, set_lr
from dit_mini.train.trainer import EXPORT_NAME, fit


def tiny_dit(seed=0):
    torch.manual_seed(seed)
    return DiT(dit_config("nano", hidden_size=32, depth=2, num_heads=2, input_size=8, patch_size=4))


def tiny_data(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 8, 8, generator=g) * 2 - 1, torch.randint(0, 10, (n,), generator=g)


def test_learning_rate_warms_up_linearly():
    assert [lr_at(s, 0.8, 4) for s in range(6)] == [0.2, 0.4, 0.6000000000000001, 0.8, 0.8, 0.8]
    assert lr_at(0, 0.8, 0) == 0.8 and TrainConfig(lr=1.0, warmup_steps=4).lr_at(1) == 0.5
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    set_lr(opt, 0.25)
    assert opt.param_groups[0]["lr"] == 0.25


def test_ema_decay_warms_up_from_a_tenth():
    assert ema_decay_at(0, 0.9999) == pytest.approx(0.1)
    assert ema_decay_at(8, 0.9999) == pytest.approx(0.5)
    assert ema_decay_at(10**6, 0.9999) == 0.9999  # the cap
    assert ema_decay_at(0, 0.9999, warmup=False) == 0.9999
    config = TrainConfig(ema_decay=0.99)
    assert [config.ema_decay_at(s) for s in (0, 90, 10**4)] == [
        ema_decay_at(0, 0.99), 0.91, 0.99,
    ]  # fmt: skip
    assert TrainConfig(ema_decay=0.99, ema_warmup=False).ema_decay_at(0) == 0.99


def test_ema_update_matches_a_float64_reference_and_copies_buffers():
    model, ema = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        for p, q in zip(model.parameters(), ema.parameters()):
            p.copy_(torch.tensor([1.0, 2.0, 3.0])), q.copy_(torch.tensor([-1.0, 0.5, 7.0]))
        model.running_mean.fill_(4.0)
    before = [q.double().clone() for q in ema.parameters()]
    ema_update(ema, model, 0.75)
    for q, b, p in zip(ema.parameters(), before, model.parameters()):
        torch.testing.assert_close(q.double(), 0.75 * b + 0.25 * p.double(), rtol=0, atol=1e-7)
    assert torch.equal(ema.running_mean, model.running_mean)  # buffers copied, not averaged
    half = nn.Linear(2, 2).half()
    ema_update(half, nn.Linear(2, 2), 0.5)  # the model's values cast to the EMA's dtype
    assert half.weight.dtype == torch.float16


def test_clip_and_step_clips_the_models_gradient_before_the_step():
    w = nn.Parameter(torch.zeros(4))
    model = nn.Module()
    model.w = w
    opt = torch.optim.SGD([w], lr=1.0)
    w.grad = torch.full((4,), 3.0)  # norm 6
    clip_and_step(model, opt, grad_clip=1.5)
    torch.testing.assert_close(w.detach(), torch.full((4,), -0.75))  # norm 1.5
    w.grad = torch.full((4,), 3.0)
    clip_and_step(model, opt, grad_clip=0.0)  # 0: no clipping
    torch.testing.assert_close(w.detach(), torch.full((4,), -3.75))


def _step_grad_norms(run):
    """The total gradient norm of the optimizer's parameters at each optimizer step of `run()`."""
    norms = []

    def hook(optimizer, args, kwargs):
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    handle = register_optimizer_step_pre_hook(hook)
    try:
        result = run()
    finally:
        handle.remove()
    return norms, result


@pytest.mark.parametrize("clip", [1e-3])
def test_the_trainer_clips_the_models_gradient(clip):
    def run(grad_clip):
        config = TrainConfig(steps=3, batch_size=8, lr=1e-3, grad_clip=grad_clip, seed=1)
        return _step_grad_norms(
            lambda: fit(tiny_dit(), make_loss(), tiny_data(), config, device="cpu", quiet=True)
        )

    unclipped, _ = run(0.0)
    assert len(unclipped) == 3 and min(unclipped) > 10 * clip  # so clipping must engage
    clipped, result = run(clip)
    assert len(clipped) == 3 and max(clipped) <= clip * (1 + 1e-4), clipped
    assert all(p.grad is None for p in result.ema.parameters())  # the EMA is never stepped


def test_the_trainers_ema_warms_up():
    model = tiny_dit()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainConfig(steps=1, batch_size=8, lr=1e-2, ema_decay=0.9999, seed=1)
    result = fit(model, make_loss(), tiny_data(), config, device="cpu", quiet=True)
    moved = 0
    for name, ema in result.ema.state_dict().items():
        trained = model.state_dict()[name]
        expected = 0.1 * start[name] + 0.9 * trained  # decay 0.1 after the first step
        torch.testing.assert_close(ema, expected, rtol=0, atol=1e-6)
        moved += not torch.equal(trained, start[name])
    assert moved > 0


def test_the_exported_file_holds_the_ema_weights(tmp_path):
    config = TrainConfig(steps=3, batch_size=8, lr=1e-2, ema_decay=0.5, ema_warmup=False, seed=1)
    result = fit(tiny_dit(), make_loss(), tiny_data(), config, tmp_path, device="cpu", quiet=True)
    exported = load_model(tmp_path / EXPORT_NAME).state_dict()
    ema, raw = result.ema.state_dict(), result.model.state_dict()
    assert exported.keys() == ema.keys()
    for name in ema:
        assert torch.equal(exported[name], ema[name]), name
    assert any(not torch.equal(ema[k], raw[k]) for k in ema)  # so a raw export would fail
    _, tensors = load_tensors(tmp_path / EXPORT_NAME)
    assert all(torch.equal(tensors[k], ema[k]) for k in ema)


def test_notebook_14_references_use_the_trainers_functions():
    assert new_game_plus.ema_update is ema_update
    assert new_game_plus.clip_and_step is clip_and_step
    assert new_game_plus.lr_at is lr_at


def test_one_epoch_of_batches_shows_every_image_once():
    from dit_mini.train.session import TrainingSession

    images = torch.arange(24.0).reshape(24, 1, 1, 1).expand(24, 3, 8, 8).contiguous() / 12 - 1
    labels = torch.arange(24) % 10
    config = TrainConfig(steps=3, batch_size=8, seed=2)
    session = TrainingSession(tiny_dit(), make_loss(), (images, labels), config, None, "cpu", {})
    seen = []
    for step in range(3):
        session.step = step
        x0, y, _ = session.batch()
        ids = ((x0[:, 0, 0, 0] + 1) * 12).round().long()  # images lie in [-1, 1)
        kept = y != 10  # the null class of label dropout (the model's 0.1)
        assert torch.equal(y[kept], labels[ids][kept])  # each label stays with its image
        seen += ids.tolist()
    assert sorted(seen) == list(range(24))
