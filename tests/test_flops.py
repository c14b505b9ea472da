"""Tests for dit_mini.metrics.flops: the paper's Table 4, exact counts, attention, no side
effects."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dit_mini.metrics.flops import (
    PAPER_SETTING,
    PAPER_TABLE4,
    count_gflops,
    count_gflops_by_op,
    count_params,
    format_table,
    gflops_report,
    unet_matching_gflops,
)
from dit_mini.models.dit import DIT_PRESETS, DiT, dit_config
from dit_mini.models.unet import UNet, unet_config


def dit_macs(cfg) -> int:
    """Multiply-adds of one DiT forward pass, written out layer by layer (independent check)."""
    D, L, p = cfg.hidden_size, cfg.num_patches, cfg.patch_size
    hidden = int(D * cfg.mlp_ratio)
    patch_embed = L * D * cfg.in_channels * p * p
    t_mlp = 256 * D + D * D
    block = 6 * D * D + L * (3 * D * D + D * D + 2 * D * hidden) + 2 * L * L * D
    final = 2 * D * D + L * D * p * p * cfg.out_channels
    return patch_embed + t_mlp + cfg.depth * block + final


@pytest.mark.parametrize("name", sorted(PAPER_TABLE4))
def test_paper_table4_within_one_percent(name):
    report = gflops_report(name)
    paper_params, paper_gflops = PAPER_TABLE4[name]
    assert report["gflops"] == pytest.approx(paper_gflops, rel=0.01)
    assert report["params_M"] == pytest.approx(paper_params, rel=0.01)
    assert (report["paper_gflops"], report["paper_params_M"]) == (paper_gflops, paper_params)
    assert report["tokens"] == (32 // int(name.split("/")[1])) ** 2


def test_paper_table_names_are_presets():
    assert len(PAPER_TABLE4) == 12 and set(PAPER_TABLE4) <= set(DIT_PRESETS)


@pytest.mark.parametrize("name", ["nano", "tiny", "small", "DiT-S/8"])
def test_dit_count_matches_the_layer_by_layer_formula(name):
    cfg = dit_config(name)
    with torch.device("meta"):
        model = DiT(cfg)
    assert count_gflops(model) == pytest.approx(dit_macs(cfg) / 1e9, rel=1e-12)


def test_tiny_dit_numbers():
    report = gflops_report("tiny")
    assert report["gflops"] == pytest.approx(0.181973, rel=1e-5)
    assert report["params"] == 4_192_176 and report["tokens"] == 64
    assert "paper_gflops" not in report


def test_attention_matmuls_are_counted():
    cfg = dit_config("tiny")
    model = DiT(cfg)
    by_op = count_gflops_by_op(model)
    attention = 2 * cfg.depth * cfg.num_patches**2 * cfg.hidden_size / 1e9  # QK^T and AV
    assert by_op["aten.bmm"] == pytest.approx(attention, rel=1e-12)
    # The raw counter on the fused CPU path misses exactly that part (torch 2.x).
    x, t, y = torch.zeros(1, 3, 32, 32), torch.zeros(1), torch.zeros(1, dtype=torch.long)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, t, y)
    fused = counter.get_total_flops() / 2 / 1e9
    if fused == pytest.approx(count_gflops(model), rel=1e-12):
        pytest.skip("this torch build counts fused attention on CPU")
    assert count_gflops(model) - fused == pytest.approx(attention, rel=1e-9)


def test_counting_leaves_the_model_unchanged():
    torch.manual_seed(0)
    model = DiT(dit_config("nano")).train()
    nn.init.normal_(model.final_layer.linear.weight)  # non-zero output
    model.blocks[1].attn.fused = False  # a user's choice that must survive
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, t, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 500]), torch.tensor([0, 3])
    out = model(x, t, y)
    gflops = count_gflops(model)
    assert [b.attn.fused for b in model.blocks] == [True, False, True, True]
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(model(x, t, y), out)
    assert count_gflops(model) == gflops


def test_real_and_meta_models_count_the_same_and_batch_is_per_image():
    real = UNet(unet_config("unet-tiny"))
    with torch.device("meta"):
        meta = UNet(unet_config("unet-tiny"))
    assert count_gflops(real) == count_gflops(meta)
    assert count_gflops(real, batch=3) == pytest.approx(count_gflops(real), rel=1e-12)
    assert count_params(real) == count_params(meta) == 882_723


def test_unet_counts_scale_with_resolution():
    """Convolutions cost 4x at twice the side; attention over 4x the tokens costs 16x."""
    model = UNet(unet_config("unet-tiny"))
    small, large = count_gflops_by_op(model), count_gflops_by_op(model, input_shape=(3, 64, 64))
    assert large["aten.convolution"] == pytest.approx(4 * small["aten.convolution"], rel=1e-12)
    assert large["aten.bmm"] == pytest.approx(16 * small["aten.bmm"], rel=1e-12)
    width, tokens = model.config.widths[-1], (32 // 4) ** 2  # one attention block at 8x8
    assert small["aten.bmm"] == pytest.approx(2 * tokens**2 * width / 1e9, rel=1e-12)


def test_unet_preset_numbers():
    gflops = {n: gflops_report(n)["gflops"] for n in ("unet-nano", "unet-tiny", "unet-small")}
    assert gflops["unet-tiny"] == pytest.approx(0.18203, rel=1e-4)
    assert gflops["unet-nano"] < gflops["unet-tiny"] < gflops["unet-small"]


def test_models_that_cannot_run_on_meta_are_counted_for_real():
    class NeedsValues(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(32, 16)

        def forward(self, x, t, y):
            scale = float(x.abs().max().item()) + 1.0  # .item() has no meta implementation
            return self.linear(x) * scale

    gflops = count_gflops(NeedsValues(), input_shape=(3, 8, 32))
    assert gflops == pytest.approx(3 * 8 * 32 * 16 / 1e9, rel=1e-12)


def test_matching_unet_lands_near_tiny_dit():
    target = gflops_report("tiny")["gflops"]
    config = unet_matching_gflops(target)
    assert config.base_channels % 8 == 0
    gflops = gflops_report(config)["gflops"]
    assert gflops == pytest.approx(target, rel=0.10)
    # No neighbouring width would have been closer.
    for other in (config.base_channels - 8, config.base_channels + 8):
        assert abs(gflops_report(config, base_channels=other)["gflops"] - target) >= abs(
            gflops - target
        )


def test_matching_respects_overrides_and_rejects_bad_targets():
    config = unet_matching_gflops(0.5, max_base_channels=128, num_res_blocks=2, attention=False)
    assert config.num_res_blocks == 2 and not config.attention
    with pytest.raises(ValueError, match="target_gflops must be positive"):
        unet_matching_gflops(0.0)
    with pytest.raises(ValueError, match="base_channels is what"):
        unet_matching_gflops(0.2, base_channels=32)


def test_report_accepts_configs_models_and_overrides():
    cfg = dit_config("DiT-S/2", **PAPER_SETTING)
    by_name, by_config = gflops_report("DiT-S/2"), gflops_report(cfg, name="mine")
    assert by_config["gflops"] == by_name["gflops"] and by_config["name"] == "mine"
    pixel = gflops_report("DiT-S/2", in_channels=3, num_classes=10, learn_sigma=False)
    assert "paper_gflops" not in pixel and pixel["in_channels"] == 3
    assert pixel["gflops"] == pytest.approx(by_name["gflops"], rel=0.01)  # same tokens
    assert gflops_report(DiT(dit_config("nano")))["model"] == "DiT"


def test_report_errors_are_helpful():
    with pytest.raises(ValueError, match="did you mean .*'DiT-XL/2'"):
        gflops_report("DiT-XL/3")
    with pytest.raises(ValueError, match="overrides"):
        gflops_report(DiT(dit_config("nano")), depth=2)
    with pytest.raises(ValueError, match="input_shape"):
        count_gflops(nn.Linear(2, 2))


def test_format_table_lists_every_report():
    reports = [gflops_report(n) for n in ("DiT-S/8", "tiny", "unet-nano")]
    table = format_table(reports)
    lines = table.splitlines()
    assert len(lines) == 2 + len(reports) and "paper Gflops" in lines[0]
    assert "DiT-S/8" in lines[2] and "0.36" in lines[2] and "33.1" in lines[2]
    assert lines[3].split()[0] == "tiny" and f"{reports[1]['gflops']:.3f}" in lines[3]
