"""The checks that the networks' config dataclasses share, written once.

Every config refuses bad values when it is built, with a message that names the field and the
fix: `check_positive` (sizes and counts), `check_probability` (the label dropout
`class_dropout_prob`, in [0, 1)), and `LevelWidths`, the channel levels of the convolutional
networks (`UNetConfig`, `VAEConfig`): level i works at input_size / 2**i with
base_channels * channel_mults[i] channels, in GroupNorm groups of `norm_groups`.
"""

from __future__ import annotations

__all__ = ["check_positive", "check_probability", "LevelWidths"]


def check_positive(config, names) -> None:
    """A ValueError for the first field of `names` that is not a positive integer."""
    for name in names:
        if int(getattr(config, name)) < 1:
            raise ValueError(f"{name} must be a positive integer; got {getattr(config, name)}")


def check_probability(name: str, value: float) -> None:
    """A ValueError unless 0 <= value < 1 (a probability that must leave some examples alone)."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must lie in [0, 1); got {value}")


class LevelWidths:
    """For a frozen config dataclass with input_size, base_channels, channel_mults and
    norm_groups: the level widths, the downsample factor and their checks."""

    input_size: int
    base_channels: int
    channel_mults: tuple[int, ...]
    norm_groups: int

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(self.base_channels * m for m in self.channel_mults)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_mults) - 1)

    def check_levels(self) -> None:
        """channel_mults as a tuple of positive integers, every level width a multiple of
        norm_groups, and input_size a multiple of the downsample factor."""
        object.__setattr__(self, "channel_mults", tuple(self.channel_mults))
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise ValueError(
                f"channel_mults must be a non-empty tuple of positive integers, one per level; "
                f"got {self.channel_mults}"
            )
        for width in self.widths:
            if width % self.norm_groups:
                raise ValueError(
                    f"level width {width} (base_channels {self.base_channels} x mult) is not "
                    f"divisible by norm_groups {self.norm_groups}; use a base_channels that is a "
                    f"multiple of {self.norm_groups}"
                )
        factor, levels = self.downsample_factor, len(self.channel_mults)
        if self.input_size % factor:
            raise ValueError(
                f"input_size {self.input_size} must be divisible by the downsample factor "
                f"{factor} (2**(levels - 1) for {levels} levels); use fewer levels or a multiple "
                f"of {factor}"
            )
