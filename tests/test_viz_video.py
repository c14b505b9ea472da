import io

import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from dit_mini.course.viz_video import (
    caption_to_clip,
    clip_gif,
    clip_strips,
    token_cost_figure,
    tubelet_figure,
)
from dit_mini.models.video import VideoDiT, VideoDiTConfig, attention_flops, token_count


def test_clip_gif_plays_every_frame_side_by_side():
    clips = torch.rand(2, 3, 8, 16, 16) * 2 - 1
    gif = Image.open(io.BytesIO(clip_gif(clips, zoom=3, pad=2)))
    assert gif.format == "GIF" and gif.n_frames == 8
    assert gif.size == (2 * (16 + 4) * 3, (16 + 4) * 3)
    with pytest.raises(ValueError, match="N, C, T, H, W"):
        clip_gif(torch.rand(3, 8, 16, 16))


def test_figures():
    clips = torch.rand(2, 3, 8, 16, 16) * 2 - 1
    assert isinstance(clip_strips(clips, ["a gold ring growing"] * 2), Figure)
    with pytest.raises(ValueError, match="one label per clip"):
        clip_strips(clips, ["x"])
    fig = tubelet_figure(clips[0])
    assert "64 tokens of 96 numbers" in fig.texts[0].get_text()
    rows = [{"name": "image", "tokens": 16, "attention_flops": 1e6}]
    assert isinstance(token_cost_figure(rows), Figure)


def test_token_count_and_attention_cost():
    assert token_count(8, 16, 2, 4) == 64
    assert token_count(1, 32, 1, 4) == 64  # an image is a one-frame clip
    assert token_count(16, 32, 2, 4) == 512
    with pytest.raises(ValueError, match="must divide"):
        token_count(7, 16, 2, 4)
    # doubling the tokens quadruples the attention cost
    assert attention_flops(128, 96) == 4 * attention_flops(64, 96) == 4 * 4 * 64 * 64 * 96


def test_caption_to_clip_reports_bad_words_and_held_out():
    torch.manual_seed(0)
    model = VideoDiT(VideoDiTConfig(hidden_size=48, depth=1, num_heads=2, text_width=32)).eval()
    clips, message = caption_to_clip(model, "a purple ring growing", steps=2)
    assert clips is None and "purple" in message
    clips, message = caption_to_clip(model, "a crimson sword spinning left", steps=2, n=2)
    assert clips.shape == (2, 3, 8, 16, 16) and "held out" in message
    _, message = caption_to_clip(model, "a gold ring growing", steps=1, n=1)
    assert "seen in training" in message
