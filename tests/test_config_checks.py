"""The checks the networks' configs share (dit_mini.models.config_checks): one message each."""

from dataclasses import dataclass

import pytest

from dit_mini.models.config_checks import LevelWidths, check_positive, check_probability
from dit_mini.models.unet import UNetConfig
from dit_mini.models.vae import VAEConfig


@dataclass(frozen=True)
class Levels(LevelWidths):
    input_size: int = 32
    base_channels: int = 8
    channel_mults: tuple = (1, 2, 4)
    norm_groups: int = 4

    def __post_init__(self):
        check_positive(self, ("input_size", "base_channels", "norm_groups"))
        self.check_levels()


def test_level_widths_and_their_checks():
    levels = Levels(channel_mults=[1, 2, 4])
    assert levels.channel_mults == (1, 2, 4)  # a list becomes a tuple, as JSON gives lists
    assert levels.widths == (8, 16, 32) and levels.downsample_factor == 4
    with pytest.raises(ValueError, match="level width 6 .* not divisible by norm_groups 4"):
        Levels(base_channels=6)
    with pytest.raises(ValueError, match="input_size 30 .* downsample factor 4 .*3 levels"):
        Levels(input_size=30)
    with pytest.raises(ValueError, match="channel_mults must be a non-empty"):
        Levels(channel_mults=())
    with pytest.raises(ValueError, match="norm_groups must be a positive integer; got 0"):
        Levels(norm_groups=0)


def test_probability_is_checked_with_its_name():
    check_probability("p", 0.0)
    check_probability("p", 0.99)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"class_dropout_prob must lie in \[0, 1\)"):
            check_probability("class_dropout_prob", bad)


def test_unet_and_vae_share_the_level_checks():
    for cls in (UNetConfig, VAEConfig):
        assert issubclass(cls, LevelWidths)
        with pytest.raises(ValueError, match="downsample factor 4"):
            cls(input_size=30)
