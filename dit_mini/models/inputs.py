"""The model contract's input check, shared by every denoiser (DiT, U-Net, video DiT).

Every denoiser maps (x_t (B, C, H, W), t (B,), y (B,) or None) to (B, C_out, H, W). A wrong shape
deep inside a network fails with a message about some matmul; `check_denoiser_input` fails first,
naming the input, the shape it got, the shape the model wants, and what to change.
"""

from __future__ import annotations

import torch

__all__ = ["check_denoiser_input"]


def check_denoiser_input(
    x: torch.Tensor,
    t: torch.Tensor,
    y: torch.Tensor | None,
    *,
    in_channels: int,
    size: tuple[int, int] | None = None,
    multiple_of: int = 1,
    needs_y: bool = False,
    y_dims: tuple[int, ...] = (1,),
    layout_hint: str = "resize the images or set input_size",
) -> None:
    """Raise a ValueError naming the problem when (x, t, y) break the model contract.

    `size` is the (H, W) the model needs exactly (DiT: its position embeddings), else H and W
    must be multiples of `multiple_of` (U-Net: its down-sampling). `needs_y`: the model has no
    null class, so y None is an error. `y_dims`: 1 for labels (B,), 2 also allows tokens (B, S).
    """
    if x.dim() != 4:
        raise ValueError(f"x_t must be (B, C, H, W); got shape {tuple(x.shape)}")
    B, C, H, W = x.shape
    if C != in_channels:
        raise ValueError(
            f"model expects {in_channels} input channels, got {C} (shape {tuple(x.shape)}); "
            f"set in_channels={C} or convert the images"
        )
    if size is not None and (H, W) != tuple(size):
        raise ValueError(f"model expects {size[0]}x{size[1]} images, got {H}x{W}; {layout_hint}")
    if H % multiple_of or W % multiple_of:
        raise ValueError(
            f"model needs H and W divisible by {multiple_of}, got {H}x{W}; {layout_hint}"
        )
    if t.dim() != 1 or t.shape[0] != B:
        raise ValueError(f"t must be (B,) = ({B},); got shape {tuple(t.shape)}")
    if y is not None and (y.dim() not in y_dims or y.shape[0] != B):
        wanted = "(B,)" if y_dims == (1,) else "(B,) ids or (B, S) tokens"
        raise ValueError(f"y must be {wanted} with B = {B}; got shape {tuple(y.shape)}")
    if y is None and needs_y:
        raise ValueError(
            "this model was trained without label dropout (class_dropout_prob=0), so it has "
            "no null class: pass class labels y"
        )
