"""Sampling clips from captions: caption guidance and the Euler sampler on film strips.

Guidance (Ho & Salimans, arXiv 2207.12598, eq. 6) with the empty caption as the unconditional
input: v = v(x_t, t, empty) + w (v(x_t, t, caption) - v(x_t, t, empty)). `caption_guided` does
it for typed captions (token tensors); for caption ids `dit_mini.diffusion.guidance.guided`
works as well. Clips travel as film strips (frames stacked along H), so the image sampler
`euler_sample` runs unchanged.

Trained by `dit_mini.train.text2video`; taught in notebook 13 (mastering the art).
"""

from __future__ import annotations

import torch

from ..data.clips import from_filmstrip, tokenize
from ..models.video import VideoDiT
from .guidance import combine_guidance
from .losses import DiffusionConfig
from .samplers import draw_noise, euler_sample

__all__ = ["VIDEO_DIFFUSION", "caption_guided", "sample_clips"]

VIDEO_DIFFUSION = DiffusionConfig(objective="flow", time_sampling="logit_normal")


def caption_guided(model, scale: float):
    """Wrap `model` so that it returns the guided prediction against the empty caption.

    y may be caption tokens (B, S) or caption ids (B,); scale 1 returns the model unchanged.

    Shapes: the model contract, x_t (B, C, T*H, W), t (B,), y -> (B, C, T*H, W).
    """
    if scale == 1.0:
        return model
    if model.null_class is None:
        raise ValueError(f"guidance scale {scale} needs a model trained with caption dropout")

    def guided_model(x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        if y is None:
            return model(x_t, t, None)
        B = x_t.shape[0]
        empty = (
            torch.full_like(y, model.null_class) if y.dim() == 1 else torch.zeros_like(y)
        )  # the empty caption: its id, or all padding tokens
        out = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, empty]))  # (2B, ...)
        return combine_guidance(out[:B], out[B:], scale, x_t.shape[1])

    return guided_model


@torch.no_grad()
def sample_clips(
    model: VideoDiT,
    captions: list[str] | torch.Tensor,
    steps: int = 20,
    cfg_scale: float = 3.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Clips for typed captions (or caption ids) with the Euler sampler and caption guidance.

    Shapes: N captions -> (N, C, T, H, W), values roughly in [-1, 1].
    """
    param = next(model.parameters())
    y = captions if isinstance(captions, torch.Tensor) else tokenize(list(captions))
    config = model.config
    shape = (len(y), config.in_channels, config.frames * config.input_size, config.input_size)
    x_T = draw_noise(shape, generator, device=param.device)
    net = caption_guided(model, cfg_scale)
    strips = euler_sample(net, x_T, y.to(param.device), steps)
    return from_filmstrip(strips, config.frames)
