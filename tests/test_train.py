"""Trainer: data order, EMA, errors, and exact resume (in-process and after SIGKILL)."""

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from dit_mini.diffusion.losses import make_loss
from dit_mini.models.dit import DiT, dit_config
from dit_mini.storage import CheckpointError, load_checkpoint
from dit_mini.train.config import TrainConfig, batch_indices
from dit_mini.train.session import TrainingDiverged
from dit_mini.train.trainer import fit as _fit

SIZE = 16


def fit(*args, **kwargs):
    """The trainer on the CPU, where runs are exactly reproducible (the tests compare bits)."""
    return _fit(*args, device="cpu", **kwargs)


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    cfg = dict(hidden_size=32, depth=2, num_heads=2, input_size=SIZE, patch_size=4)
    return DiT(dit_config("nano", **{**cfg, **overrides}))


def tiny_data(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1, torch.randint(
        0, 10, (n,), generator=g
    )


def config(**overrides):
    base = dict(steps=10, batch_size=8, lr=1e-3, ema_decay=0.9, checkpoint_every=3, seed=1)
    return TrainConfig(**{**base, **overrides})


def assert_same_state(a: dict, b: dict):
    """Bit-identical model, EMA, optimizer, RNG states, step and history."""
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs"
    for pa, pb in zip(a["opt"]["state"].values(), b["opt"]["state"].values()):
        for name in pa:
            assert torch.equal(pa[name], pb[name]), f"optimizer {name} differs"
    for name in a["rng"]:
        assert torch.equal(a["rng"][name], b["rng"][name]), f"rng {name} differs"
    assert a["step"] == b["step"]
    assert torch.equal(a["history"], b["history"])


def test_batch_indices_cover_each_epoch_once_and_are_seeded():
    n, B = 10, 4
    stream = torch.cat([batch_indices(s, B, n, seed=3) for s in range(5)])  # 20 = two epochs
    assert sorted(stream[:10].tolist()) == list(range(10))
    assert sorted(stream[10:].tolist()) == list(range(10))
    assert not torch.equal(stream[:10], stream[10:])  # each epoch reshuffled
    assert torch.equal(batch_indices(2, B, n, seed=3), stream[8:12])  # straddles two epochs
    assert not torch.equal(batch_indices(0, B, n, seed=4), batch_indices(0, B, n, seed=3))


def test_train_config_rejects_bad_values():
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="class_dropout_prob"):
        TrainConfig(class_dropout_prob=1.5)
    assert TrainConfig(lr=1.0, warmup_steps=4).lr_at(1) == 0.5


def test_loss_decreases_and_runs_are_reproducible():
    x = tiny_data(8)[0][:1].repeat(8, 1, 1, 1)  # one image: easy to fit
    cfg = config(steps=30, lr=3e-3, checkpoint_every=0)
    a = fit(tiny_model(num_classes=0), make_loss(), x, cfg, quiet=True)
    b = fit(tiny_model(num_classes=0), make_loss(), x, cfg, quiet=True)
    assert a.history == b.history  # same seed, same losses, bit for bit
    assert sum(a.history[-5:]) < 0.8 * sum(a.history[:5])
    assert a.step == 30 and a.images_per_second > 0


def test_ema_follows_its_decay():
    cfg = config(steps=1, ema_decay=0.75, ema_warmup=False, checkpoint_every=0)
    model = tiny_model()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    result = fit(model, make_loss(), tiny_data(), cfg, quiet=True)
    for name, ema in result.ema.state_dict().items():
        expected = 0.75 * start[name] + 0.25 * model.state_dict()[name]
        torch.testing.assert_close(ema, expected, rtol=0, atol=1e-6)


def test_plain_function_losses_are_supported():
    calls = []

    def loss_fn(model, x0, y, generator):
        calls.append(generator)
        t = torch.randint(0, 1000, (x0.shape[0],), generator=generator)
        return model(x0, t, y).pow(2).mean() + x0.mean() * 0

    fit(tiny_model(), loss_fn, tiny_data(), config(steps=2, checkpoint_every=0), quiet=True)
    assert len(calls) == 2 and all(isinstance(g, torch.Generator) for g in calls)


def test_resume_after_interruption_is_bit_identical(tmp_path):
    full = fit(tiny_model(), make_loss(), tiny_data(), config(), out_dir=tmp_path / "a", quiet=True)

    def crash(step, loss):
        if step == 7:  # between the checkpoints of steps 6 and 9
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(
            tiny_model(),
            make_loss(),
            tiny_data(),
            config(),
            tmp_path / "b",
            quiet=True,
            callback=crash,
        )
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 6
    resumed = fit(
        tiny_model(9), make_loss(), tiny_data(), config(), tmp_path / "b", resume=True, quiet=True
    )
    assert resumed.history == full.history
    assert_same_state(load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint))


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_train import config, fit, tiny_data, tiny_model
        from dit_mini.diffusion.losses import make_loss

        def die(step, loss):
            if step == 5:
                os.kill(os.getpid(), signal.SIGKILL)

        fit(tiny_model(), make_loss(), tiny_data(), config(), {str(tmp_path / "killed")!r},
            quiet=True, callback=die)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    folder = tmp_path / "killed"
    assert load_checkpoint(folder / "checkpoint.pt")["step"] == 3
    # no temporary files left; the lock file of the killed process stays until a resume takes it
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "checkpoint.pt"]
    resumed = fit(
        tiny_model(5), make_loss(), tiny_data(), config(), folder, resume=True, quiet=True
    )
    full = fit(tiny_model(), make_loss(), tiny_data(), config(), tmp_path / "full", quiet=True)
    assert_same_state(load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint))


def test_resume_checks_the_config_and_allows_more_steps(tmp_path):
    fit(tiny_model(), make_loss(), tiny_data(), config(steps=4), tmp_path, quiet=True)
    with pytest.raises(CheckpointError, match="already holds a training run"):
        fit(tiny_model(), make_loss(), tiny_data(), config(steps=4), tmp_path, quiet=True)
    with pytest.raises(CheckpointError, match=r"train\.lr: 0\.001 \(checkpoint\) -> 0\.002"):
        fit(
            tiny_model(),
            make_loss(),
            tiny_data(),
            config(lr=2e-3),
            tmp_path,
            resume=True,
            quiet=True,
        )
    with pytest.raises(CheckpointError, match="model.hidden_size"):
        fit(
            tiny_model(hidden_size=16),
            make_loss(),
            tiny_data(),
            config(),
            tmp_path,
            resume=True,
            quiet=True,
        )
    result = fit(
        tiny_model(), make_loss(), tiny_data(), config(steps=6), tmp_path, resume=True, quiet=True
    )
    assert result.step == 6 and len(result.history) == 6


def test_runs_saved_before_a_new_model_field_still_resume(tmp_path):
    """A checkpoint written before DiTConfig grew `conditioning` resumes when the model uses the
    new field's default, and refuses a model that uses another value."""
    from dit_mini.storage import save_checkpoint

    fit(tiny_model(), make_loss(), tiny_data(), config(steps=4), tmp_path, quiet=True)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    del state["config"]["model"]["conditioning"]
    save_checkpoint(tmp_path / "checkpoint.pt", state)
    with pytest.raises(CheckpointError, match="model.conditioning: 'adaln-zero'"):
        fit(tiny_model(conditioning="adaln"), make_loss(), tiny_data(), config(steps=6),
            tmp_path, resume=True, quiet=True)  # fmt: skip
    result = fit(
        tiny_model(), make_loss(), tiny_data(), config(steps=6), tmp_path, resume=True, quiet=True
    )
    assert result.step == 6


def test_a_checkpoint_with_the_old_label_dropout_name_resumes_and_reads(tmp_path):
    """Checkpoints written when the training's label dropout was called `cfg_dropout` still
    resume, and `read_config` reports the current name."""
    from dit_mini.registry import read_config
    from dit_mini.storage import save_checkpoint

    fit(tiny_model(), make_loss(), tiny_data(), config(steps=4), tmp_path, quiet=True)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    train = state["config"]["train"]
    train["cfg_dropout"] = train.pop("class_dropout_prob")
    save_checkpoint(tmp_path / "checkpoint.pt", state)
    assert read_config(tmp_path / "checkpoint.pt")["train"]["class_dropout_prob"] == 0.1
    result = fit(
        tiny_model(), make_loss(), tiny_data(), config(steps=6), tmp_path, resume=True, quiet=True
    )
    assert result.step == 6


def test_a_model_described_by_its_kind_only_resumes(tmp_path):
    """A network the checkpoint only names (not a package DiT/U-Net) but that has a dataclass
    config still resumes: nothing is filled into its saved description."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Config:
        width: int = 8

    class Net(torch.nn.Module):
        config = Config()

        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Conv2d(3, 3, 1)

        def forward(self, x, t, y=None):
            return self.lin(x)

    x, _ = tiny_data()
    fit(Net(), make_loss(), x, config(steps=4), tmp_path, quiet=True)
    result = fit(Net(), make_loss(), x, config(steps=6), tmp_path, resume=True, quiet=True)
    assert result.step == 6


def test_non_finite_loss_names_the_step_and_last_checkpoint(tmp_path):
    calls = []

    def loss_fn(model, x0, y, generator):
        calls.append(1)
        loss = model(x0, torch.zeros(x0.shape[0], dtype=torch.long), y).pow(2).mean() + 1
        return loss * float("nan") if len(calls) == 5 else loss

    with pytest.raises(TrainingDiverged, match=r"step 5 .*the last good checkpoint is .*step 3"):
        fit(tiny_model(), loss_fn, tiny_data(), config(), tmp_path, quiet=True)
    before = load_checkpoint(tmp_path / "checkpoint.pt")
    assert before["step"] == 3 and torch.isfinite(before["history"]).all()


def test_batch_must_split_evenly_among_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="batch_size 8 .* divisible by the 3 processes"):
        fit(tiny_model(), make_loss(), tiny_data(), config(), quiet=True)


def test_label_problems_are_caught_before_training():
    images, labels = tiny_data()
    with pytest.raises(ValueError, match="num_classes=13"):
        fit(tiny_model(), make_loss(), (images, labels + 3), config(), quiet=True)
    with pytest.raises(
        ValueError, match="class_dropout_prob=0.2 but the model was built with .*0.0"
    ):
        fit(tiny_model(class_dropout_prob=0.0), make_loss(), (images, labels),
            config(class_dropout_prob=0.2), quiet=True)  # fmt: skip


def test_label_dropout_comes_from_the_model_config(tmp_path):
    """One source of truth: the model's class_dropout_prob is the dropout the trainer uses."""
    images, labels = tiny_data()
    fit(tiny_model(class_dropout_prob=0.3), make_loss(), (images, labels),
        config(steps=2), tmp_path, quiet=True)  # fmt: skip
    saved = load_checkpoint(tmp_path / "checkpoint.pt")["config"]
    assert saved["train"]["class_dropout_prob"] == 0.3 == saved["model"]["class_dropout_prob"]


def test_callback_returning_true_stops_and_saves(tmp_path):
    result = fit(tiny_model(), make_loss(), tiny_data(), config(), tmp_path, quiet=True,
                 callback=lambda step, loss: step == 2)  # fmt: skip
    assert result.step == 2 and load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2
    assert (tmp_path / "ema.safetensors").is_file()
