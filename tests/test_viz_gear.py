"""Notebook 07's measurements and figures: block stages, gates, running mean, the race plot."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from dit_mini.course.viz_gear import (
    block_stages,
    block_updates,
    gate_magnitudes,
    gate_view,
    race_figure,
    running_mean,
    stage_figure,
    updates_figure,
)
from dit_mini.models.dit import DiT, dit_config
from dit_mini.models.dit_block import CONDITIONING


def small(conditioning: str = "adaln-zero") -> DiT:
    torch.manual_seed(0)
    cfg = dit_config(
        "nano", hidden_size=32, depth=2, num_heads=2, input_size=8, patch_size=2,
        conditioning=conditioning,
    )  # fmt: skip
    return DiT(cfg)


def perturb(model: DiT) -> DiT:
    g = torch.Generator().manual_seed(1)
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


def test_block_stages_rebuild_the_block_and_start_as_identity():
    x = torch.randn(2, 16, 32, generator=torch.Generator().manual_seed(0))
    c = torch.randn(2, 32, generator=torch.Generator().manual_seed(1))
    block = small().blocks[0]
    stages = block_stages(block, x, c)
    assert torch.equal(stages["out"], x)  # zero gates: the block is the identity at init
    assert stages["attn"].abs().max() > 0  # ... although its attention branch is not zero
    perturb(block)
    stages = block_stages(block, x, c)
    assert torch.allclose(stages["out"], block(x, c), atol=1e-6)
    assert not torch.allclose(stages["out"], x)
    assert stages["gate_msa"].shape == (2, 32) and stages["norm1"].shape == (2, 16, 32)
    # LayerNorm without affine: zero mean, unit variance per token.
    assert torch.allclose(stages["norm1"].mean(-1), torch.zeros(2, 16), atol=1e-5)


def test_block_updates_zero_only_for_adaln_zero():
    g = torch.Generator().manual_seed(0)
    x, t, y = torch.randn(3, 3, 8, 8, generator=g), torch.tensor([1.0, 500, 999]), None
    assert torch.equal(block_updates(small(), x, t, y), torch.zeros(2))
    assert (block_updates(perturb(small()), x, t, y) > 0).all()
    model = small("adaln")
    before = [m for m in model.modules() if m._forward_hooks]
    assert (block_updates(model, x, t, y) > 0).all()
    assert [m for m in model.modules() if m._forward_hooks] == before  # hooks removed


def test_gate_magnitudes():
    model = small()
    t, y = torch.tensor([10.0, 900.0]), torch.tensor([3, 4])
    assert torch.equal(gate_magnitudes(model, t, y), torch.zeros(2, 2, 2))  # zero at init
    gates = gate_magnitudes(perturb(model), t, y)
    assert gates.shape == (2, 2, 2) and (gates > 0).all()
    assert not torch.allclose(gates[..., 0], gates[..., 1])  # depends on t and y
    with pytest.raises(ValueError, match="gates"):
        gate_magnitudes(small("adaln"), t, y)


def test_running_mean():
    assert np.allclose(running_mean([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    assert np.allclose(running_mean([5.0] * 7, 3), 5.0)
    with pytest.raises(ValueError, match="window"):
        running_mean([1.0], 0)


def test_figures():
    x = torch.randn(1, 16, 32)
    assert isinstance(stage_figure(block_stages(small().blocks[0], x, torch.zeros(1, 32))), Figure)
    assert isinstance(updates_figure({d: torch.rand(2) for d in CONDITIONING}), Figure)
    levels = np.linspace(0, 1, 5)
    fig = gate_view(torch.rand(3, 2, 5), levels, 0.52)
    assert "t = 0.50" in fig.axes[0].get_title()  # snaps to the nearest computed level
    histories = {d: list(np.linspace(1, 0.5, 30)) for d in CONDITIONING}
    gflops = {d: 0.1 + i / 100 for i, d in enumerate(CONDITIONING)}
    fig = race_figure(histories, gflops, highlight="adaln")
    bold = [line.get_linewidth() for line in fig.axes[0].lines]
    assert sorted(bold) == [1.0, 1.0, 1.0, 2.2]
    with pytest.raises(ValueError, match="highlight"):
        race_figure(histories, gflops, highlight="film")


def test_race_figure_draws_costs_from_zero_and_names_the_relative_difference():
    histories = {d: [1.0, 0.9, 0.8] for d in CONDITIONING}
    gflops = {"adaln-zero": 0.182, "adaln": 0.1815, "in-context": 0.1865, "cross-attention": 0.2101}
    right = race_figure(histories, gflops).axes[1]
    assert right.get_xlim()[0] == 0.0  # bar lengths are proportional to the Gflops
    notes = [text.get_text() for text in right.texts]
    assert any("+15.4 %" in note for note in notes)  # cross-attention against adaLN-Zero
    assert len(notes) == 4
