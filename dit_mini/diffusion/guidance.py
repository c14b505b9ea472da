"""Classifier-free guidance (Ho & Salimans, arXiv 2207.12598).

One network learns both p(x | y) and p(x) by seeing the "null" class instead of the real label a
fraction of the time during training (`drop_labels`, kept beside the label embedder in
`dit_mini.models.embeddings` and re-exported here). At sampling time the two predictions are
extrapolated (eq. 6):

    pred = pred(x_t, t, null) + w * (pred(x_t, t, y) - pred(x_t, t, null))

w = 1 is plain conditional sampling; w > 1 trades diversity for fidelity. Every channel that
carries the prediction is guided (the reference DiT guides only the first 3 of 4 latent channels,
a known bug); extra learned-variance channels are taken from the conditional pass unchanged.

Taught in notebook 08 (summon signs).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models.embeddings import drop_labels

__all__ = ["drop_labels", "combine_guidance", "guided"]


def combine_guidance(
    cond: torch.Tensor, uncond: torch.Tensor, scale: float, pred_channels: int
) -> torch.Tensor:
    """uncond + scale * (cond - uncond) on the first `pred_channels` channels; the rest from cond.

    Shapes: cond, uncond (B, C_out, H, W) -> (B, C_out, H, W).
    """
    pred = uncond[:, :pred_channels] + scale * (cond[:, :pred_channels] - uncond[:, :pred_channels])
    return torch.cat([pred, cond[:, pred_channels:]], dim=1)


def guided(model: Callable, scale: float, null_class: int | None = None) -> Callable:
    """Wrap `model` so that calls return the classifier-free guided prediction.

    The conditional and unconditional passes share one batch of 2B. With scale == 1 or y None,
    the wrapper returns the model's output unchanged.

    Shapes: the model contract, (B, C, H, W), (B,), (B,) -> (B, C_out, H, W).
    """
    null_class = getattr(model, "null_class", None) if null_class is None else null_class
    pred_channels = getattr(model, "in_channels", None)
    if scale != 1.0 and null_class is None:
        raise ValueError(
            f"guidance scale {scale} needs a model trained with label dropout (a null class); "
            "use scale 1.0 or train with class_dropout_prob > 0"
        )

    def guided_model(x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        if scale == 1.0 or y is None:
            return model(x_t, t, y)
        B = x_t.shape[0]
        y_null = torch.full_like(y, null_class)
        out = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, y_null]))  # (2B, ...)
        cond, uncond = out[:B], out[B:]
        return combine_guidance(cond, uncond, scale, pred_channels or x_t.shape[1])

    guided_model.in_channels = pred_channels
    guided_model.null_class = null_class
    return guided_model
