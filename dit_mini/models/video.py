"""A text-to-video Diffusion Transformer over spacetime patches, small enough for a CPU.

The idea behind Sora (OpenAI's technical report, 2024) in miniature: a video is cut into
tubelets, small boxes of pt frames x p x p pixels (ViViT, Arnab et al., arXiv 2103.15691, sec. 3.2),
and each tubelet becomes one token. The tokens get a fixed space-time sin-cos position embedding
(one third of the channels each for column, row and time), then pass through DiT blocks
(Peebles & Xie, arXiv 2212.09748) in which
- self-attention lets every tubelet look at every other one, across space and time;
- cross-attention reads the caption's token vectors, as in PixArt-alpha (arXiv 2310.00426);
- adaLN-Zero modulates every LayerNorm by c = emb(t) + a projection of the mean caption vector
  (the pooled text vector joins the timestep vector as in Stable Diffusion 3, arXiv 2403.03206).
The caption's vectors come from a small text encoder trained with the DiT: word embeddings, a
1-D sin-cos position embedding and a few pre-LayerNorm transformer layers.

Model contract as for the image models: forward(x_t, t, y) with x_t a clip laid out as a film
strip (B, C, T*H, W) (see `dit_mini.data.clips.to_filmstrip`), so the image trainer and samplers run
unchanged. y is either caption ids (B,) (an index into the table of all captions; id
`num_captions` is the empty caption, the trainer's "null class" for guidance) or caption tokens
(B, L) from `dit_mini.data.clips.tokenize`, or None for the empty caption.

Taught in notebook 13 (mastering the art).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from ..data.clips import CAPTION_LEN, CLIP_FRAMES, CLIP_SIZE, NUM_CAPTIONS, VOCAB, caption_table
from .attention import Attention, CrossAttention
from .config_checks import check_positive, check_probability
from .dit import FinalLayer, Mlp, modulate
from .embeddings import TimestepEmbedder, sincos_1d
from .inputs import check_denoiser_input

__all__ = [
    "tubeletify",
    "untubeletify",
    "sincos_3d",
    "token_count",
    "attention_flops",
    "TubeletEmbed",
    "TextEncoder",
    "VideoDiTBlock",
    "VideoDiTConfig",
    "VideoDiT",
]

LAYERNORM_EPS = 1e-6  # the reference DiT's, as in the image DiT


def tubeletify(x: torch.Tensor, tubelet_t: int, patch_size: int) -> torch.Tensor:
    """Cut clips into flattened tubelets, ordered (time, row, column), each (pt, p_row, p_col, c).

    Shapes: (B, C, T, H, W) -> (B, L, pt*P*P*C) with L = (T/pt)(H/P)(W/P).
    """
    pt, p = tubelet_t, patch_size
    return rearrange(x, "b c (t i) (h p) (w q) -> b (t h w) (i p q c)", i=pt, p=p, q=p)


def untubeletify(
    tokens: torch.Tensor, tubelet_t: int, patch_size: int, channels: int, grid: tuple[int, int, int]
) -> torch.Tensor:
    """Inverse of `tubeletify` for a (T/pt, H/P, W/P) grid of tubelets.

    Shapes: (B, L, pt*P*P*C) -> (B, C, T, H, W).
    """
    gt, gh, gw = grid
    pt, p = tubelet_t, patch_size
    return rearrange(
        tokens, "b (t h w) (i p q c) -> b c (t i) (h p) (w q)", t=gt, h=gh, w=gw, i=pt, p=p, q=p
    )


def sincos_3d(dim: int, grid_t: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """Fixed space-time position embedding: channels [0, dim/3) encode the column, [dim/3, 2dim/3)
    the row, [2dim/3, dim) the time index; tokens ordered (time, row, column) as in `tubeletify`.

    Shapes: -> (grid_t * grid_h * grid_w, dim) float32.
    """
    if dim % 6:
        raise ValueError(f"3-D sin-cos embedding width must be divisible by 6; got {dim}")
    t, h, w = torch.meshgrid(
        *(torch.arange(n, dtype=torch.float64) for n in (grid_t, grid_h, grid_w)), indexing="ij"
    )  # (gt, gh, gw) each
    parts = [sincos_1d(dim // 3, axis.flatten()) for axis in (w, h, t)]  # 3 x (L, dim/3)
    return torch.cat(parts, dim=1).float()  # (L, dim)


def token_count(frames: int, size: int, tubelet_t: int = 2, patch_size: int = 4) -> int:
    """Tokens of a (frames x size x size) clip cut into tubelets; frames=1, tubelet_t=1 gives
    an image's patch count."""
    if frames % tubelet_t or size % patch_size:
        raise ValueError(
            f"tubelet {tubelet_t} x {patch_size} x {patch_size} must divide the clip "
            f"{frames} x {size} x {size}"
        )
    return (frames // tubelet_t) * (size // patch_size) ** 2


def attention_flops(tokens: int, dim: int) -> int:
    """FLOPs of one self-attention layer's two matmuls, Q K^T and weights @ V: each is L x L x D
    multiply-adds, 2 FLOPs apiece, so 4 L^2 D; quadratic in the token count L."""
    return 4 * tokens * tokens * dim


class TubeletEmbed(nn.Module):
    """A 3-D convolution with kernel = stride = (pt, P, P): one D-wide token per tubelet.

    Shapes: (B, C, T, H, W) -> (B, L, D), tokens ordered (time, row, column).
    """

    def __init__(self, tubelet_t: int, patch_size: int, in_channels: int, hidden_size: int):
        super().__init__()
        size = (tubelet_t, patch_size, patch_size)
        self.proj = nn.Conv3d(in_channels, hidden_size, kernel_size=size, stride=size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(self.proj(x), "b d t h w -> b (t h w) d").contiguous()


class _TextLayer(nn.Module):
    """Pre-LayerNorm transformer layer. Shapes: (B, S, D) -> (B, S, D)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    """Word embeddings + 1-D sin-cos positions, then transformer layers and a final LayerNorm.

    Shapes: tokens (B, S) int64 -> (B, S, D).
    """

    def __init__(self, vocab_size: int, max_len: int, dim: int, depth: int, num_heads: int):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.register_buffer("pos", sincos_1d(dim, torch.arange(max_len)).float())  # (S, D)
        self.layers = nn.ModuleList(_TextLayer(dim, num_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(tokens) + self.pos[: tokens.shape[1]]  # (B, S, D)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class VideoDiTBlock(nn.Module):
    """adaLN-Zero self-attention over all tubelets, cross-attention to the caption, MLP.

    The cross-attention branch is not modulated; its output projection starts at zero, so the
    block is still the identity at initialisation.

    Shapes: x (B, L, D), c (B, D), context (B, S, Dt) -> (B, L, D).
    """

    def __init__(self, hidden_size: int, context_dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        D = hidden_size
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False, eps=LAYERNORM_EPS)
        self.attn = Attention(D, num_heads)
        self.norm_cross = nn.LayerNorm(D, eps=LAYERNORM_EPS)
        self.cross_attn = CrossAttention(D, context_dim, num_heads)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False, eps=LAYERNORM_EPS)
        self.mlp = Mlp(D, int(D * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))

    def forward(self, x: torch.Tensor, c: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(
            c
        ).chunk(6, dim=1)
        x = x + gate_msa[:, None] * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + self.cross_attn(self.norm_cross(x), context)
        x = x + gate_mlp[:, None] * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


@dataclass(frozen=True)
class VideoDiTConfig:
    """Architecture of the text-to-video DiT (the clip shape, tubelets, widths, the text encoder).

    `class_dropout_prob` > 0 (the probability that training replaces a caption by the empty one,
    the same name as the DiT's label dropout) gives the model an empty-caption id for
    classifier-free guidance.
    """

    frames: int = CLIP_FRAMES
    input_size: int = CLIP_SIZE
    in_channels: int = 3
    tubelet_t: int = 2
    patch_size: int = 4
    hidden_size: int = 144  # the shipped model; 96 wide and 4 deep learnt far slower (its card)
    depth: int = 6
    num_heads: int = 4
    mlp_ratio: float = 4.0
    text_width: int = 64
    text_depth: int = 2
    text_heads: int = 4
    vocab_size: int = len(VOCAB)
    caption_len: int = CAPTION_LEN
    num_captions: int = NUM_CAPTIONS
    class_dropout_prob: float = 0.1

    def __post_init__(self):
        check_positive(
            self, ("frames", "input_size", "in_channels", "tubelet_t", "patch_size", "depth")
        )
        for size, part, what in ((self.frames, self.tubelet_t, "frames"),) + (
            (self.input_size, self.patch_size, "input_size"),
        ):
            if size % part:
                raise ValueError(
                    f"{what}={size} is not divisible by its tubelet side {part}; "
                    f"choose one of {[d for d in range(1, size + 1) if size % d == 0]}"
                )
        if self.hidden_size % 6 or self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} must be divisible by 6 (3-D sin-cos) and by "
                f"num_heads {self.num_heads}; try 96, 144 or 192"
            )
        if self.text_width % self.text_heads or self.text_width % 2:
            raise ValueError(
                f"text_width {self.text_width} must be even and divisible by text_heads "
                f"{self.text_heads}"
            )
        check_probability("class_dropout_prob", self.class_dropout_prob)

    @property
    def grid(self) -> tuple[int, int, int]:
        s = self.input_size // self.patch_size
        return (self.frames // self.tubelet_t, s, s)

    @property
    def num_tokens(self) -> int:
        gt, gh, gw = self.grid
        return gt * gh * gw

    @property
    def num_classes(self) -> int:
        """The trainer's label range: caption ids lie in [0, num_captions)."""
        return self.num_captions

    @property
    def null_class(self) -> int | None:
        """The empty caption's id, used by classifier-free guidance, if the model has one."""
        return self.num_captions if self.class_dropout_prob > 0 else None


class VideoDiT(nn.Module):
    """Text-to-video DiT over tubelets; see the module docstring for the contract.

    Shapes: x_t (B, C, T*H, W), t (B,), y (B,) ids or (B, S) tokens or None -> (B, C, T*H, W).
    """

    def __init__(self, config: VideoDiTConfig | None = None):
        super().__init__()
        self.config = config = config or VideoDiTConfig()
        D, Dt = config.hidden_size, config.text_width
        self.in_channels = self.out_channels = config.in_channels
        self.x_embedder = TubeletEmbed(config.tubelet_t, config.patch_size, config.in_channels, D)
        self.t_embedder = TimestepEmbedder(D)
        self.text = TextEncoder(
            config.vocab_size, config.caption_len, Dt, config.text_depth, config.text_heads
        )
        self.text_pool = nn.Linear(Dt, D)
        self.register_buffer("pos_embed", sincos_3d(D, *config.grid)[None])  # (1, L, D)
        self.register_buffer("captions", caption_table()[: config.num_captions + 1].clone())
        self.blocks = nn.ModuleList(
            VideoDiTBlock(D, Dt, config.num_heads, config.mlp_ratio) for _ in range(config.depth)
        )
        # DiT's final layer with patch size 1 and pt*P*P*C outputs: token -> its tubelet's values.
        self.final_layer = FinalLayer(
            D, 1, config.tubelet_t * config.patch_size**2 * config.in_channels
        )
        self.initialize_weights()

    @property
    def null_class(self) -> int | None:
        return self.config.null_class

    def initialize_weights(self) -> None:
        """DiT initialisation plus zero cross-attention outputs: each block starts as identity."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        nn.init.normal_(self.text.token_embedding.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        zero = [b.adaLN_modulation[-1] for b in self.blocks] + [
            b.cross_attn.proj for b in self.blocks
        ]
        zero += [self.final_layer.adaLN_modulation[-1], self.final_layer.linear]
        for layer in zero:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def caption_tokens(self, y: torch.Tensor | None, batch: int, device) -> torch.Tensor:
        """Tokens from caption ids (B,), tokens (B, S) passed through, None -> empty caption.

        Shapes: -> (B, S) int64.
        """
        if y is None:
            if self.null_class is None:
                raise ValueError("this model was trained without caption dropout: pass captions")
            y = torch.full((batch,), self.null_class, dtype=torch.long, device=device)
        if y.dim() == 1:
            if y.shape[0] != batch or int(y.max()) >= len(self.captions) or int(y.min()) < 0:
                raise ValueError(
                    f"caption ids must be ({batch},) in [0, {len(self.captions)}); got "
                    f"shape {tuple(y.shape)}, range [{int(y.min())}, {int(y.max())}]"
                )
            return self.captions[y]
        if y.dim() != 2 or y.shape[0] != batch or y.shape[1] > self.config.caption_len:
            raise ValueError(
                f"caption tokens must be ({batch}, <= {self.config.caption_len}); "
                f"got shape {tuple(y.shape)}"
            )
        return y.long()

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        config = self.config
        t = torch.as_tensor(t, device=x.device)
        t = t.expand(x.shape[0]) if t.dim() == 0 and x.dim() == 4 else t
        check_denoiser_input(
            x, t, y, in_channels=config.in_channels,
            size=(config.frames * config.input_size, config.input_size), y_dims=(1, 2),
            layout_hint="x_t must be a film strip of the clip's frames stacked along H: lay "
            "clips out with dit_mini.data.clips.to_filmstrip",
        )  # fmt: skip
        clip = rearrange(x, "b c (t h) w -> b c t h w", t=config.frames)
        tokens = self.x_embedder(clip) + self.pos_embed  # (B, L, D)
        context = self.text(self.caption_tokens(y, x.shape[0], x.device))  # (B, S, Dt)
        c = self.t_embedder(t) + self.text_pool(context.mean(dim=1))  # (B, D)
        for block in self.blocks:
            tokens = block(tokens, c, context)  # (B, L, D)
        tokens = self.final_layer(tokens, c)  # (B, L, pt*P*P*C)
        clip = untubeletify(
            tokens, config.tubelet_t, config.patch_size, config.in_channels, config.grid
        )
        return rearrange(clip, "b c t h w -> b c (t h) w")
