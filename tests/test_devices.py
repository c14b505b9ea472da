"""The learner's path runs wherever the model is: notebooks 03's and 14's solution code and the
package helpers they call, run with the model on the `meta` device under a guard.

The test machine has no GPU, so a tensor made on the CPU by mistake (a `torch.full` or
`torch.randn` without `device=`) would go unnoticed on it and crash on Colab's GPU. Here the model
lives on "meta" (shapes only, nothing computed) and `DeviceGuard` fails any torch call that mixes
a tensor on one device with a tensor on another, the error CUDA raises; CPU scalars (0-dim) and
CPU indices are allowed, as on CUDA. A meta tensor has no value, so `.item()` on one returns 0.
"""

import copy
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

from dit_mini.course import new_game_plus as ngp
from dit_mini.course.viz_sampling import flow_path
from dit_mini.diffusion.guidance import drop_labels, guided
from dit_mini.diffusion.losses import DiffusionConfig, generate, make_loss
from dit_mini.diffusion.samplers import FLOW_TIME_SCALE
from dit_mini.models.dit import DiT, dit_config
from dit_mini.studies import graded_training
from dit_mini.train.config import TrainConfig

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"
META = torch.device("meta")
_MOVES = {torch.Tensor.to, torch.Tensor.copy_, torch.Tensor.type_as, torch.Tensor.cpu}
_INDEXING = {torch.Tensor.__getitem__, torch.Tensor.__setitem__}


class DeviceGuard(TorchFunctionMode):
    """Fails a torch call whose tensors live on different devices (CPU scalars and CPU indices
    excepted), the way CUDA does; `.item()` of a meta tensor gives 0.0."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.item, torch.Tensor.__float__) and args[0].device == META:
            return 0.0
        if func not in _MOVES:
            tensors = [a for a in pytree.tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
            if func in _INDEXING:  # CPU indices into a tensor on any device are fine
                tensors = [args[0]] + [t for t in tensors[1:] if t.device.type != "cpu"]
            devices = {str(t.device) for t in tensors if t.device.type != "cpu" or t.dim() > 0}
            if len(devices) > 1:
                name = getattr(func, "__name__", str(func))
                raise AssertionError(
                    f"{name} mixes tensors on {sorted(devices)}: a tensor was made without "
                    "device= (or not moved to the model's device)"
                )
        return func(*args, **kwargs)


def solutions(number: str) -> dict:
    """The names defined by the solution cells of a notebook (the cells with SOLUTION markers)."""
    path = next(SOLUTIONS.glob(f"{number}_*.ipynb"))
    import math
    import time

    ns = {"math": math, "time": time, "torch": torch, "nn": nn, "drop_labels": drop_labels,
          "FLOW_TIME_SCALE": FLOW_TIME_SCALE, "T": 1000}  # fmt: skip
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
            code = cell.source.lstrip()
            if code.startswith(("def ", "class ", "@")):
                exec(compile(cell.source, f"{path.name}:{cell.id}", "exec"), ns)
    return ns


def _meta(*shape):
    return torch.zeros(*shape, device=META)


def _meta_batch(n=4, size=32):
    x = torch.zeros(n, 3, size, size, device=META)
    return x, torch.zeros(n, dtype=torch.long, device=META)


def test_the_guard_fails_a_tensor_made_on_the_cpu_by_mistake():
    embed = nn.Embedding(11, 8).to(META)
    with DeviceGuard(), pytest.raises(AssertionError, match="mixes tensors on"):
        embed(torch.full((4,), 10, dtype=torch.long))  # the old `y=None` branch of notebook 14
    x = torch.zeros(2, 3, device=META)
    with DeviceGuard(), pytest.raises((AssertionError, RuntimeError)):
        _ = x + torch.randn(2, 3)  # noise drawn on the CPU, added to the model's tensor
    with DeviceGuard():  # allowed, as on CUDA: CPU scalars, CPU indices, explicit moves
        assert (x * torch.tensor(2.0))[torch.tensor([0])].shape == (1, 3)
        assert torch.randn(2, 3).to(x).device == META


def test_notebook_14_trains_and_samples_with_the_model_on_another_device():
    ns = solutions("14")
    torch.manual_seed(0)
    model = ns["MyDiT"](dit_config("nano")).to(META)
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    images, labels = _meta_batch(8)
    generator = torch.Generator().manual_seed(0)  # a CPU generator, as in the notebook
    with DeviceGuard():
        history = ns["my_train_loop"](
            ns["my_train_step"],
            model,
            ema,
            optimizer,
            images,
            labels,
            steps=2,
            batch_size=4,
            warmup=1,
            generator=generator,
        )
        assert len(history) == 2
        noise, y = _meta_batch(2)
        out = ns["my_euler_sample"](ema, noise, y, steps=2, cfg_scale=3.0)
        assert out.device == META
        unconditional = model(noise, torch.full((2,), 500.0, device=META), None)  # y=None
        assert unconditional.device == META


def test_the_package_pieces_of_notebook_14_run_on_another_device():
    torch.manual_seed(0)
    model = DiT(dit_config("nano")).to(META)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    images, labels = _meta_batch(8)
    with DeviceGuard():
        ngp.train_loop(
            ngp.train_step,
            model,
            ema,
            optimizer,
            images,
            labels,
            steps=2,
            batch_size=4,
            warmup=1,
            generator=torch.Generator().manual_seed(0),
        )
        noise, y = _meta_batch(2)
        assert ngp.euler_sample_cfg(ema, noise, y, steps=2).device == META


def test_notebook_03_losses_and_steps_on_another_device():
    ns = solutions("03")
    eps_diffusion = DiffusionConfig(objective="eps", schedule="linear", num_timesteps=1000)
    alpha_bar = make_loss(eps_diffusion).schedule.alpha_bar  # the schedule stays on the CPU
    x0, y = _meta_batch(4)
    t = torch.tensor([999, 500, 40, 0], device=META)
    t_flow = torch.full((4,), 0.5, device=META)

    def share_guesser(x_t, t, y=None):  # the notebook's stand-in model
        return x_t * (t.to(x_t.dtype) / 1000).reshape(-1, 1, 1, 1)

    model = DiT(dit_config("nano")).to(META).eval()
    with DeviceGuard(), torch.no_grad():
        assert ns["eps_prediction_loss"](share_guesser, x0, y, t, x0, alpha_bar).device == META
        assert ns["flow_matching_loss"](share_guesser, x0, y, t_flow, x0).device == META
        assert ns["euler_step"](model, x0, 0.75, 0.5, y).device == META
        assert ns["ddim_jump"](x0, x0, 999, 979, alpha_bar).device == META


def test_notebook_03_samplers_and_scores_follow_the_model():
    model = DiT(dit_config("nano")).to(META).eval()
    x_T, y = _meta_batch(2)
    with DeviceGuard():  # (DDPM's walk reads the CPU schedule by value: not runnable on meta)
        assert flow_path(guided(model, 3.0), x_T, y, steps=2).x_t.device == META
        flow = DiffusionConfig(objective="flow", time_sampling="logit_normal")
        out = generate(model, flow, y=y, sampler="euler", steps=2, cfg_scale=3.0,
                       generator=torch.Generator().manual_seed(0))  # fmt: skip
        assert out.device == META


def test_notebook_03_tells_the_trainer_its_device(monkeypatch):
    """`fit` picks a GPU when there is one: notebook 03 must pass the device it prints."""
    seen = {}

    def fake_fit(model, loss_fn, data, config, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(graded_training, "fit", fake_fit)
    with pytest.raises(RuntimeError, match="stop here"):
        graded_training.train_and_grade(
            nn.Linear(1, 1),
            DiffusionConfig(),
            None,
            TrainConfig(steps=1),
            10,
            classifier=1,
            device="cpu",
        )
    assert seen["device"] == "cpu"
    nb = nbformat.read(next(SOLUTIONS.glob("03_*.ipynb")), as_version=4)
    calls = [c.source for c in nb.cells if "train_and_grade(" in c.source]
    calls = [source for source in calls if "import" not in source]
    assert calls and all("device=device" in source for source in calls)


@pytest.mark.parametrize(
    "number, name, make_args",
    [
        ("02", "noise_step_by_step", lambda g: (_meta(2, 3), torch.full((3,), 0.1), g)),
        ("05", "my_sincos_1d", lambda g: (8, torch.arange(4, device=META))),
        ("06", "my_mean_attention_distance", lambda g: (_meta(2, 16, 16), 4)),
        ("07", "my_timestep_embedding", lambda g: (_meta(3), 8)),
        ("08", "my_drop_labels", lambda g: (_meta(5).long(), 0.5, 10, g)),
        ("10", "sample_latent", lambda g: (_meta(2, 4), _meta(2, 4), g)),
    ],
)
def test_other_solutions_follow_their_inputs_device(number, name, make_args):
    fn = solutions(number)[name]
    with DeviceGuard():
        assert fn(*make_args(torch.Generator().manual_seed(0))).device == META
