"""The four conditioning designs: shapes, identity at init, gradients, Gflops, bad names."""

import pytest
import torch

from dit_mini.course.viz_gear import block_updates
from dit_mini.metrics.flops import count_gflops, gflops_report
from dit_mini.models.dit import DiT, DiTConfig, dit_config
from dit_mini.models.dit_block import CONDITIONING, in_context_extra_macs


def small(conditioning: str, **overrides) -> DiT:
    torch.manual_seed(0)
    cfg = dit_config(
        "nano",
        hidden_size=32,
        depth=2,
        num_heads=2,
        input_size=8,
        patch_size=2,
        conditioning=conditioning,
        **overrides,
    )
    return DiT(cfg)


def batch(n: int = 11, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)
    t = torch.rand(n, generator=g) * 1000
    y = torch.arange(n) % 11  # every class and the null class 10
    return x, t, y


@pytest.mark.parametrize("design", CONDITIONING)
def test_each_design_keeps_the_model_contract(design):
    x, t, y = batch()
    model = small(design)
    assert model(x, t, y).shape == (11, 3, 8, 8)
    assert model(x, t, None).shape == (11, 3, 8, 8)  # the null class
    sigma = small(design, learn_sigma=True)
    assert sigma(x, t, y).shape == (11, 6, 8, 8)
    uncond = small(design, num_classes=0)
    assert uncond(x, t, None).shape == (11, 3, 8, 8)


@pytest.mark.parametrize("design", CONDITIONING)
def test_the_label_changes_the_output(design):
    x, t, _ = batch(2)
    model = small(design)
    for p in model.parameters():  # leave the zero init: every path must carry the label
        p.data.add_(0.05 * torch.randn_like(p))
    a = model(x, t, torch.tensor([1, 1]))
    b = model(x, t, torch.tensor([2, 2]))
    assert (a - b).abs().max() > 1e-4


def test_only_adaln_zero_starts_every_block_as_the_identity():
    x, t, y = batch()
    updates = {d: block_updates(small(d), x, t, y) for d in CONDITIONING}
    assert updates["adaln-zero"].shape == (2,)
    assert torch.equal(updates["adaln-zero"], torch.zeros(2))  # exactly x, block by block
    for design in ("adaln", "in-context", "cross-attention"):
        assert (updates[design] > 0.05).all(), (design, updates[design])
    # And the whole adaLN-Zero network predicts zero at init.
    assert torch.equal(small("adaln-zero")(x, t, y), torch.zeros(11, 3, 8, 8))


def nonzero_grads(model: DiT) -> dict[str, bool]:
    return {
        n: p.grad is not None and bool(p.grad.abs().sum() > 0)
        for n, p in model.named_parameters()
        if p.requires_grad
    }


def sgd_steps(model: DiT, steps: int) -> dict[str, bool]:
    """`steps` SGD steps on a fixed regression target; which parameters got a gradient last."""
    x, t, y = batch()
    target = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        ((model(x, t, y) - target) ** 2).mean().backward()
        grads = nonzero_grads(model)
        opt.step()
    return grads


@pytest.mark.parametrize("design", ["adaln", "in-context", "cross-attention"])
def test_gradients_reach_every_parameter_in_the_first_step(design):
    grads = sgd_steps(small(design), 1)
    assert all(grads.values()), [n for n, ok in grads.items() if not ok]


def test_adaln_zero_wakes_up_from_the_output_inwards():
    # Step 1: only the output layer, since everything behind it is multiplied by its zeros.
    first = sgd_steps(small("adaln-zero"), 1)
    assert {n for n, ok in first.items() if ok} == {
        "final_layer.linear.weight",
        "final_layer.linear.bias",
    }
    # Step 2 reaches the modulations (gates) but not yet the branches behind zero gates.
    second = sgd_steps(small("adaln-zero"), 2)
    assert second["blocks.0.adaLN_modulation.1.weight"]
    assert not second["blocks.0.attn.qkv.weight"]
    # Step 3: every parameter.
    third = sgd_steps(small("adaln-zero"), 3)
    assert all(third.values()), [n for n, ok in third.items() if not ok]


def test_gflops_follow_the_paper_order_and_adaln_zero_is_unchanged():
    tiny = {d: gflops_report("tiny", conditioning=d)["gflops"] for d in CONDITIONING}
    assert tiny["adaln-zero"] == pytest.approx(0.181972992, rel=1e-12)  # before the designs
    assert tiny["adaln"] == pytest.approx(tiny["adaln-zero"], rel=0.01)
    assert tiny["adaln"] < tiny["adaln-zero"] < tiny["in-context"] < tiny["cross-attention"]
    xl = {d: gflops_report("DiT-XL/2", conditioning=d)["gflops"] for d in CONDITIONING}
    assert xl["adaln-zero"] == pytest.approx(118.621421568, rel=1e-12)
    assert min(xl, key=xl.get) == "adaln"  # "adaLN adds the least Gflops" (paper, sec. 3.2)
    assert 1.10 < xl["cross-attention"] / xl["adaln-zero"] < 1.20  # "roughly a 15% overhead"


def test_in_context_cost_formula_matches_the_flop_counter():
    for name in ("nano", "tiny"):
        adaln_zero = count_gflops(DiT(dit_config(name))) * 1e9
        in_context = count_gflops(DiT(dit_config(name, conditioning="in-context"))) * 1e9
        cfg = dit_config(name)
        D, depth = cfg.hidden_size, cfg.depth
        modulation = depth * D * 6 * D + D * 2 * D  # adaLN-Zero's linear maps that in-context lacks
        extra = in_context_extra_macs(cfg.num_patches, D, depth)
        assert in_context - adaln_zero == pytest.approx(extra - modulation, abs=1)
    assert in_context_extra_macs(64, 192, 6, extra_tokens=0) == 0
    with pytest.raises(ValueError, match="tokens"):
        in_context_extra_macs(0, 192, 6)


def test_bad_conditioning_name_is_refused_with_a_hint():
    with pytest.raises(ValueError, match="did you mean 'adaln-zero'"):
        DiTConfig(conditioning="adaLN_zero")
    with pytest.raises(ValueError, match="conditioning must be one of"):
        dit_config("tiny", conditioning="film")


def test_state_dict_keys_differ_only_where_the_design_does():
    keys = {d: set(small(d).state_dict()) for d in CONDITIONING}
    assert "blocks.0.adaLN_modulation.1.weight" in keys["adaln-zero"] & keys["adaln"]
    assert "blocks.0.cross_attn.kv.weight" in keys["cross-attention"]
    assert not any("adaLN" in k for k in keys["in-context"] | keys["cross-attention"])
    assert small("adaln").state_dict()["blocks.0.adaLN_modulation.1.weight"].shape == (128, 32)
