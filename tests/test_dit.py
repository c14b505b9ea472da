"""DiT tests: shapes, adaLN-Zero, patchify, bad input, and the reference state-dict layout.

The layout test builds a state_dict from the key names and shapes of the reference DiT (the table
in the project's DIT_REFERENCE spec), loads it with strict=True, and compares our forward pass to
an independent functional forward written from the same spec (timm-style qkv reshape, MAE-style
numpy position embedding, einsum unpatchify).
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dit_mini.models.dit import DIT_PRESETS, DiT, dit_config, patchify, unpatchify


def reference_keys(D, p, C, C_out, K, N, depth, null=True):
    Hm = 4 * D
    keys = {
        "pos_embed": (1, N, D),
        "x_embedder.proj.weight": (D, C, p, p),
        "x_embedder.proj.bias": (D,),
        "t_embedder.mlp.0.weight": (D, 256),
        "t_embedder.mlp.0.bias": (D,),
        "t_embedder.mlp.2.weight": (D, D),
        "t_embedder.mlp.2.bias": (D,),
        "y_embedder.embedding_table.weight": (K + int(null), D),
        "final_layer.linear.weight": (p * p * C_out, D),
        "final_layer.linear.bias": (p * p * C_out,),
        "final_layer.adaLN_modulation.1.weight": (2 * D, D),
        "final_layer.adaLN_modulation.1.bias": (2 * D,),
    }
    for i in range(depth):
        b = f"blocks.{i}."
        keys.update(
            {
                b + "attn.qkv.weight": (3 * D, D),
                b + "attn.qkv.bias": (3 * D,),
                b + "attn.proj.weight": (D, D),
                b + "attn.proj.bias": (D,),
                b + "mlp.fc1.weight": (Hm, D),
                b + "mlp.fc1.bias": (Hm,),
                b + "mlp.fc2.weight": (D, Hm),
                b + "mlp.fc2.bias": (D,),
                b + "adaLN_modulation.1.weight": (6 * D, D),
                b + "adaLN_modulation.1.bias": (6 * D,),
            }
        )
    return keys


def mae_pos_embed(D, G):
    """The MAE recipe as the spec states it, in numpy."""

    def one_d(dim, pos):
        omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    gw, gh = np.meshgrid(np.arange(G, dtype=np.float32), np.arange(G, dtype=np.float32))
    return np.concatenate([one_d(D // 2, gw), one_d(D // 2, gh)], axis=1)


def functional_dit(sd, x, t, y, depth, heads, p, C_out):
    """An independent forward pass written from the spec, reading only the state dict."""
    B = x.shape[0]
    D = sd["pos_embed"].shape[-1]
    tok = F.conv2d(x, sd["x_embedder.proj.weight"], sd["x_embedder.proj.bias"], stride=p)
    tok = tok.flatten(2).transpose(1, 2) + sd["pos_embed"]
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    tf = torch.cat([torch.cos(args), torch.sin(args)], -1)
    temb = F.linear(
        F.silu(F.linear(tf, sd["t_embedder.mlp.0.weight"], sd["t_embedder.mlp.0.bias"])),
        sd["t_embedder.mlp.2.weight"],
        sd["t_embedder.mlp.2.bias"],
    )
    c = temb + sd["y_embedder.embedding_table.weight"][y]

    def ln(z):
        return F.layer_norm(z, (D,), eps=1e-6)

    def mod(z, shift, scale):
        return z * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)

    L = tok.shape[1]
    for i in range(depth):
        b = f"blocks.{i}."
        m = F.linear(
            F.silu(c), sd[b + "adaLN_modulation.1.weight"], sd[b + "adaLN_modulation.1.bias"]
        )
        s1, sc1, g1, s2, sc2, g2 = m.chunk(6, dim=1)
        h = mod(ln(tok), s1, sc1)
        qkv = F.linear(h, sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"])
        qkv = qkv.reshape(B, L, 3, heads, D // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = torch.softmax(q @ k.transpose(-2, -1) * (D // heads) ** -0.5, -1) @ v
        a = F.linear(
            a.transpose(1, 2).reshape(B, L, D), sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"]
        )
        tok = tok + g1.unsqueeze(1) * a
        h = mod(ln(tok), s2, sc2)
        h = F.gelu(
            F.linear(h, sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"]), approximate="tanh"
        )
        tok = tok + g2.unsqueeze(1) * F.linear(h, sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])
    m = F.linear(
        F.silu(c),
        sd["final_layer.adaLN_modulation.1.weight"],
        sd["final_layer.adaLN_modulation.1.bias"],
    )
    shift, scale = m.chunk(2, dim=1)
    out = F.linear(
        mod(ln(tok), shift, scale), sd["final_layer.linear.weight"], sd["final_layer.linear.bias"]
    )
    g = int(L**0.5)
    out = out.reshape(B, g, g, p, p, C_out)
    return torch.einsum("nhwpqc->nchpwq", out).reshape(B, C_out, g * p, g * p)


def test_reference_state_dict_loads_strict_and_matches():
    cfg = dit_config(
        "nano",
        hidden_size=64,
        depth=2,
        num_heads=4,
        in_channels=4,
        learn_sigma=True,
        input_size=16,
        patch_size=2,
        num_classes=7,
    )
    model = DiT(cfg)
    shapes = reference_keys(64, 2, 4, 8, 7, 64, 2)
    sd = model.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == shapes
    assert len(sd) == 12 + 10 * cfg.depth
    # Our fixed position embedding equals the MAE recipe.
    assert np.allclose(sd["pos_embed"][0].numpy(), mae_pos_embed(64, 8), atol=1e-6)
    # A "foreign" state dict with random weights (no zero init) in the reference layout.
    g = torch.Generator().manual_seed(0)
    ref = {k: 0.1 * torch.randn(s, generator=g) for k, s in shapes.items()}
    ref["pos_embed"] = torch.from_numpy(mae_pos_embed(64, 8)).float()[None]
    model.load_state_dict(ref, strict=True)
    x = torch.randn(3, 4, 16, 16, generator=g)
    t = torch.tensor([0, 17, 999])
    y = torch.tensor([0, 6, 7])  # 7 = the null class
    ours = model(x, t, y)
    theirs = functional_dit(ref, x, t, y, depth=2, heads=4, p=2, C_out=8)
    assert ours.shape == (3, 8, 16, 16)
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()


def test_output_exactly_zero_at_init():
    model = DiT(dit_config("nano"))
    out = model(torch.randn(2, 3, 32, 32), torch.tensor([3, 900]), torch.tensor([1, 2]))
    assert out.shape == (2, 3, 32, 32)
    assert torch.count_nonzero(out) == 0


def test_patchify_unpatchify_identity_and_order():
    x = torch.randn(2, 3, 8, 8)
    tokens = patchify(x, 4)
    assert tokens.shape == (2, 4, 48)
    assert torch.equal(unpatchify(tokens, 4, 3), x)
    # token 1 is the top-right patch; its features are ordered (p_row, p_col, c)
    assert torch.equal(tokens[0, 1].reshape(4, 4, 3), x[0, :, 0:4, 4:8].permute(1, 2, 0))


def test_presets_and_config_overrides():
    assert len([k for k in DIT_PRESETS if k.startswith("DiT-")]) == 12
    cfg = dit_config(
        "DiT-S/2",
        input_size=32,
        in_channels=4,
        num_classes=1000,
        learn_sigma=True,
        class_dropout_prob=0.1,
    )
    assert (cfg.depth, cfg.hidden_size, cfg.num_heads, cfg.patch_size) == (12, 384, 6, 2)
    assert cfg.out_channels == 8 and cfg.num_patches == 256 and cfg.null_class == 1000
    tiny = dit_config("tiny")
    assert (tiny.hidden_size, tiny.depth, tiny.num_heads, tiny.patch_size) == (192, 6, 3, 4)


def test_unconditional_call_uses_null_class():
    torch.manual_seed(0)
    model = DiT(dit_config("nano"))
    for p in model.parameters():
        p.data.normal_(0, 0.05)
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([5, 5])
    assert torch.allclose(model(x, t, None), model(x, t, torch.tensor([10, 10])))


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="did you mean 'DiT-S/2'"):
        dit_config("DiT-S2")
    with pytest.raises(ValueError, match="patch_size 5 must divide input_size 32"):
        dit_config("tiny", patch_size=5)
    with pytest.raises(ValueError, match="num_heads 5 must divide hidden_size 192"):
        dit_config("tiny", num_heads=5)
    with pytest.raises(ValueError, match="unknown DiTConfig field"):
        dit_config("tiny", widht=3)
    model = DiT(dit_config("nano"))
    t, y = torch.tensor([1]), torch.tensor([0])
    with pytest.raises(ValueError, match="expects 3 input channels, got 1"):
        model(torch.randn(1, 1, 32, 32), t, y)
    with pytest.raises(ValueError, match="expects 32x32 images, got 28x28"):
        model(torch.randn(1, 3, 28, 28), t, y)
    with pytest.raises(ValueError, match="no null class"):
        DiT(dit_config("nano", class_dropout_prob=0.0))(torch.randn(1, 3, 32, 32), t, None)
