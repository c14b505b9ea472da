"""The model contract's input check, shared by every denoiser (DiT, U-Net, video DiT).

Every denoiser maps (x_t (B, C, H, W), t (B,), y (B,) or None) to (B, C_out, H, W). A wrong shape
deep inside a network fails with a message about some matmul; `check_denoiser_input` fails first,
naming the input, the shape it got, the shape the model wants, and what to change.
"""

from __future__ import annotations

import math

import torch

__all__ = ["check_denoiser_input", "check_input_types", "check_input_values"]


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


def check_input_types(x, t, y, weight: torch.Tensor) -> None:
    """Raise a TypeError/ValueError naming the argument and the fix when x, t or y have the
    wrong type, dtype or device for a model whose weights look like `weight`. Reads only
    metadata: no device synchronisation, so it is free in a training step."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x_t must be a torch.Tensor (B, C, H, W); got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"x_t is {x.dtype}; the model takes float images in [-1, 1]: convert uint8 pixels "
            "with x.float() / 127.5 - 1"
        )
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(
            f"x_t is {x.dtype} but the model's weights are {weight.dtype}: pass "
            f"x.to({weight.dtype}) (or convert the model with model.to({x.dtype}))"
        )
    if x.device != weight.device:
        raise ValueError(
            f"x_t is on {x.device} but the model is on {weight.device}: move it with "
            f"x.to('{weight.device}')"
        )
    if isinstance(t, torch.Tensor) and (t.dtype == torch.bool or t.is_complex()):
        raise TypeError(f"t must hold timesteps (integers or floats); got {t.dtype}")
    if y is None:
        return
    if not isinstance(y, torch.Tensor):
        raise TypeError(
            f"y (class labels) must be an integer torch.Tensor (B,); got {type(y).__name__}: "
            f"pass torch.tensor(y, device=x.device)"
        )
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"y (class labels) must be integers; got {y.dtype}: pass y.long()")
    if y.device != x.device:
        raise ValueError(
            f"y is on {y.device} but x_t is on {x.device}: move the labels with y.to('{x.device}')"
        )


def check_input_values(x, t, y, *, max_time: float, num_labels: int | None) -> None:
    """Raise a ValueError when x holds NaN/inf, t lies outside [0, max_time] or is not finite,
    or a label lies outside [0, num_labels). Reads values, so on an accelerator it waits for the
    device; callers run it on CPU tensors, or once per model elsewhere."""
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
        raise ValueError(
            f"x_t holds NaN or infinite values in {bad} of {x.shape[0]} images; check the "
            "data, or the step that made x_t (a diverged sampler, a division by zero)"
        )
    if t.numel():
        lo, hi = (float(v) for v in torch.aminmax(t.detach().double()))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError("t holds NaN or infinite values; pass finite timesteps")
        if lo < 0 or hi > max_time:
            raise ValueError(
                f"t must lie in [0, {max_time:g}]: integer steps 0..{max_time - 1:g} of a "
                f"discrete schedule, or flow times in [0, 1] times {max_time:g}; got "
                f"{lo:g}..{hi:g}"
            )
    if y is not None and num_labels is not None and y.numel():
        lo, hi = (int(v) for v in torch.aminmax(y.detach()))
        if lo < 0 or hi >= num_labels:
            raise ValueError(
                f"class labels y must lie in [0, {num_labels - 1}] for this model; got "
                f"{lo}..{hi}: check the labels, or build the model with num_classes={hi + 1}"
            )
