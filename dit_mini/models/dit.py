"""The Diffusion Transformer (DiT) of Peebles & Xie, arXiv 2212.09748.

An image x_t is cut into p x p patches (tokens), position-embedded, and passed through N
transformer blocks whose LayerNorms are modulated by the conditioning vector c = emb(t) + emb(y)
(adaptive LayerNorm). In adaLN-Zero every residual branch is also multiplied by a learned gate
that starts at zero, so each block starts as the identity and the whole network outputs zeros
at initialisation (paper, sec. 3.2). A final adaLN layer maps each token back to a p x p x C_out
patch, and the patches are put back together ("unpatchify"). The paper's three other ways of
feeding t and y to the blocks (in-context tokens, cross-attention, adaLN without gates) are
selected with `DiTConfig(conditioning=...)`; the blocks live in `dit_mini.models.dit_block`.

With the default adaLN-Zero conditioning the parameter names and shapes follow the reference
implementation, so its state_dicts load with `strict=True` (see `tests/test_dit.py`).

Taught in notebooks 05 (mystic lens), 06 (whispers) and 07 (legendary gear).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

import torch
from einops import rearrange
from torch import nn

from .config_checks import check_positive, check_probability
from .dit_block import (
    ADALN_DESIGNS,
    DiTBlock,
    FinalLayer,
    Mlp,
    check_conditioning,
    make_blocks,
    make_final_layer,
    modulate,
)
from .embeddings import LabelEmbedder, PatchEmbed, TimestepEmbedder, sincos_2d
from .inputs import check_denoiser_input, check_input_types, check_input_values

__all__ = [
    "modulate",
    "patchify",
    "unpatchify",
    "Mlp",
    "DiTBlock",
    "FinalLayer",
    "DiTConfig",
    "DiT",
    "DIT_PRESETS",
    "dit_config",
    "MAX_TIME",
    "StateDictMismatch",
]

# t enters the timestep embedding in [0, MAX_TIME]: the integer steps of DiT's 1000-step
# schedule, or flow-matching times in [0, 1] scaled by 1000 (diffusion.samplers.FLOW_TIME_SCALE).
MAX_TIME = 1000


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into flattened patches, row-major over the grid, each ordered (p_row, p_col, c).

    Shapes: (B, C, H, W) -> (B, L, P*P*C) with L = (H/P)(W/P).
    """
    _check_divisible(x.shape[-2:], patch_size)
    return rearrange(x, "b c (h p) (w q) -> b (h w) (p q c)", p=patch_size, q=patch_size)


def unpatchify(tokens: torch.Tensor, patch_size: int, channels: int, grid_h: int | None = None):
    """Inverse of `patchify`: put flattened patches back into images (square grid by default).

    Shapes: (B, L, P*P*C) -> (B, C, H, W).
    """
    grid_h = grid_h or int(round(tokens.shape[1] ** 0.5))
    return rearrange(
        tokens,
        "b (h w) (p q c) -> b c (h p) (w q)",
        h=grid_h,
        p=patch_size,
        q=patch_size,
        c=channels,
    )


def _check_divisible(size, patch_size: int) -> None:
    for s in size:
        if s % patch_size:
            raise ValueError(
                f"patch size {patch_size} must divide the image size {tuple(size)}; "
                f"pick a patch size among the divisors of {s}"
            )


@dataclass(frozen=True)
class DiTConfig:
    """Everything that defines a DiT's architecture (not its training).

    `conditioning` picks one of the paper's four block designs (`dit_mini.models.dit_block`):
    'adaln-zero' (default, reference layout), 'adaln', 'in-context' or 'cross-attention'.
    """

    input_size: int = 32
    patch_size: int = 4
    in_channels: int = 3
    hidden_size: int = 192
    depth: int = 6
    num_heads: int = 3
    mlp_ratio: float = 4.0
    num_classes: int = 10
    class_dropout_prob: float = 0.1
    learn_sigma: bool = False
    conditioning: str = "adaln-zero"

    def __post_init__(self):
        check_conditioning(self.conditioning)
        names = ("input_size", "patch_size", "in_channels", "hidden_size", "depth", "num_heads")
        check_positive(self, names)
        n = self.input_size
        if n % self.patch_size:
            raise ValueError(
                f"patch_size {self.patch_size} must divide input_size {self.input_size}; "
                f"valid patch sizes: {[p for p in range(1, n + 1) if n % p == 0]}"
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"num_heads {self.num_heads} must divide hidden_size {self.hidden_size} "
                "(each head gets hidden_size / num_heads channels)"
            )
        if self.hidden_size % 4:
            raise ValueError(
                f"hidden_size must be divisible by 4 for the 2-D sin-cos position embedding; "
                f"got {self.hidden_size}"
            )
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0; got {self.num_classes}")
        check_probability("class_dropout_prob", self.class_dropout_prob)
        if self.mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be positive; got {self.mlp_ratio}")

    @property
    def out_channels(self) -> int:
        return 2 * self.in_channels if self.learn_sigma else self.in_channels

    @property
    def grid_size(self) -> int:
        return self.input_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2

    @property
    def null_class(self) -> int | None:
        """Label id of the 'no class' token used by classifier-free guidance, if any."""
        return self.num_classes if self.class_dropout_prob > 0 and self.num_classes > 0 else None


class DiT(nn.Module):
    """Diffusion Transformer; adaLN-Zero blocks in the reference state-dict layout by default.

    Model contract: forward(x_t, t, y) with x_t (B, C, H, W), t (B,) integer or fractional
    timesteps, y (B,) class ids (the null class = num_classes for unconditional) or None.

    Shapes: (B, C, H, W), (B,), (B,) -> (B, C_out, H, W), C_out = 2C when learn_sigma.
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = config
        D = config.hidden_size
        self.in_channels = config.in_channels
        self.out_channels = config.out_channels
        self.patch_size = config.patch_size
        self.num_classes = config.num_classes
        self.x_embedder = PatchEmbed(config.patch_size, config.in_channels, D)
        self.t_embedder = TimestepEmbedder(D)
        if config.num_classes > 0:
            self.y_embedder = LabelEmbedder(config.num_classes, D, config.class_dropout_prob)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_patches, D), requires_grad=False)
        design = config.conditioning
        self.blocks = make_blocks(design, D, config.num_heads, config.mlp_ratio, config.depth)
        self.final_layer = make_final_layer(design, D, config.patch_size, config.out_channels)
        self.initialize_weights()

    @property
    def null_class(self) -> int | None:
        return self.config.null_class

    def initialize_weights(self) -> None:
        """The reference initialisation; the zeros at the end make it adaLN-Zero.

        The other designs keep step 1's Xavier init everywhere (and LayerNorm's ones and zeros).
        """
        # 1. Xavier-uniform linear layers, zero biases.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        # 2. Fixed sin-cos position embedding.
        self.pos_embed.data.copy_(sincos_2d(self.config.hidden_size, self.config.grid_size)[None])
        # 3. Patch projection initialised like a linear layer.
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        # 4. Embedding tables and timestep MLP: small normal.
        if self.num_classes > 0:
            nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        # 5. adaLN-Zero: every modulation and the output layer start at zero.
        if self.config.conditioning != "adaln-zero":
            return
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def check_input(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> None:
        """Raise a ValueError that names the problem when inputs break the model contract."""
        config = self.config
        check_denoiser_input(
            x, t, y, in_channels=config.in_channels, size=(config.input_size, config.input_size),
            needs_y=config.num_classes > 0 and config.null_class is None,
            layout_hint=f"resize the images or set input_size={x.shape[-1]}",
        )  # fmt: skip

    def condition_tokens(self, t: torch.Tensor, y: torch.Tensor | None, batch: int) -> torch.Tensor:
        """[emb(t), emb(y)] as a sequence; y None means the null class.

        Shapes: t (B,), y (B,) -> (B, S, D), S = 2 with classes, else 1.
        """
        tokens = [self.t_embedder(t)]
        if self.num_classes > 0:
            if y is None:
                y = torch.full((batch,), self.config.null_class, dtype=torch.long, device=t.device)
            tokens.append(self.y_embedder(y))
        return torch.stack(tokens, dim=1)  # (B, S, D)

    def embed_condition(self, t: torch.Tensor, y: torch.Tensor | None, batch: int) -> torch.Tensor:
        """c = emb(t) + emb(y); y None means the null class. Shapes: -> (B, D)."""
        return self.condition_tokens(t, y, batch).sum(dim=1)

    def _validate_inputs(self, x, t, y) -> torch.Tensor:
        """Check (x, t, y) against the contract and return t as a (B,) tensor on x's device.

        Types, dtypes, devices and shapes are metadata and always checked. Values (NaN, the
        time range, the label range) need a read of the data, which on an accelerator would
        stall the pipeline at every step: they are checked for CPU inputs, and on other devices
        at the first call of this model only (`dit_mini.studies.validation_cost` measures it).
        """
        check_input_types(x, t, y, self.pos_embed)
        t = torch.as_tensor(t, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        self.check_input(x, t, y)
        if torch.compiler.is_compiling() or x.device.type == "meta":  # no values to read
            return t
        if x.device.type == "cpu" or not getattr(self, "_values_checked", False):
            labels = self.num_classes + (self.null_class is not None) if self.num_classes else None
            check_input_values(x, t, y, max_time=MAX_TIME, num_labels=labels)
            self._values_checked = True
        return t

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        t = self._validate_inputs(x, t, y)
        tokens = self.x_embedder(x) + self.pos_embed  # (B, L, D)
        L, design = tokens.shape[1], self.config.conditioning
        # 1. The conditioning: the vector c for adaLN, else a short sequence of tokens.
        if design in ADALN_DESIGNS:
            cond = self.embed_condition(t, y, x.shape[0])  # (B, D)
        else:
            cond = self.condition_tokens(t, y, x.shape[0])  # (B, S, D)
        if design == "in-context":
            tokens = torch.cat([tokens, cond], dim=1)  # (B, L + S, D)
        # 2. The blocks, then drop any in-context tokens and map each token to a patch.
        for block in self.blocks:
            tokens = block(tokens, cond)  # (B, L (+ S), D)
        tokens = self.final_layer(tokens[:, :L], cond)  # (B, L, P*P*C_out)
        return unpatchify(tokens, self.patch_size, self.out_channels)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """nn.Module's, with a message naming both presets when the weights are another's."""
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        except RuntimeError as error:
            theirs = _describe_weights(state_dict)
            if theirs is None or theirs == _describe_config(self.config):
                raise
            raise StateDictMismatch(
                f"these weights are of a {theirs} DiT but this model is a "
                f"{_describe_config(self.config)} DiT; build the model with the weights' preset "
                "(dit_config(...)) or load the matching weights"
            ) from error


class StateDictMismatch(RuntimeError, ValueError):
    """Weights of one DiT preset loaded into another (a RuntimeError, as nn.Module raises)."""


def _preset_name(depth: int, width: int, patch: int) -> str:
    for name, p in DIT_PRESETS.items():
        if (p["depth"], p["hidden_size"], p["patch_size"]) == (depth, width, patch):
            return f"'{name}' (depth {depth}, width {width}, patch {patch})"
    return f"custom (depth {depth}, width {width}, patch {patch})"


def _describe_config(cfg: DiTConfig) -> str:
    return _preset_name(cfg.depth, cfg.hidden_size, cfg.patch_size)


def _describe_weights(state: dict) -> str | None:
    """The preset a DiT state dict was made by, from its tensor shapes; None if not a DiT's."""
    try:
        width = state["pos_embed"].shape[-1]
        patch = state["x_embedder.proj.weight"].shape[-1]
        depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    except (KeyError, ValueError, AttributeError, IndexError):
        return None
    return _preset_name(depth, width, patch)


# name -> (depth, hidden_size, num_heads, patch_size)
_PAPER = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}

DIT_PRESETS: dict[str, dict] = {
    f"DiT-{size}/{p}": dict(depth=d, hidden_size=w, num_heads=h, patch_size=p)
    for size, (d, w, h) in _PAPER.items()
    for p in (2, 4, 8)
}
DIT_PRESETS.update(
    {
        # CPU-sized toys for 32x32 images (64 tokens at patch 4).
        "nano": dict(depth=4, hidden_size=96, num_heads=3, patch_size=4),
        "tiny": dict(depth=6, hidden_size=192, num_heads=3, patch_size=4),
        "small": dict(depth=8, hidden_size=256, num_heads=4, patch_size=4),
    }
)


def dit_config(name: str = "tiny", **overrides) -> DiTConfig:
    """The config of a named preset ('DiT-S/2' ... 'DiT-XL/8', 'nano', 'tiny', 'small').

    Keyword arguments override any field, e.g.
    `dit_config("DiT-S/2", input_size=32, in_channels=4, num_classes=1000, learn_sigma=True)`.
    """
    if name not in DIT_PRESETS:
        close = difflib.get_close_matches(name, DIT_PRESETS, n=3, cutoff=0.3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown DiT preset {name!r}{hint} Known presets: {sorted(DIT_PRESETS)}")
    fields = set(DiTConfig.__dataclass_fields__)
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(
            f"unknown DiTConfig field(s) {sorted(unknown)}; valid fields: {sorted(fields)}"
        )
    return replace(DiTConfig(), **{**DIT_PRESETS[name], **overrides})
