import numpy as np
import pytest
import torch

from dit_mini.data.clips import (
    CAPTION_LEN,
    CLIP_COLOURS,
    CLIP_MOTIONS,
    HELD_OUT,
    NUM_CAPTIONS,
    PAD_ID,
    VOCAB,
    caption_id,
    caption_of,
    caption_table,
    clip_params,
    detokenize,
    from_filmstrip,
    make_clips,
    parse_caption,
    render_clips,
    to_filmstrip,
    tokenize,
)
from dit_mini.data.relics import RELIC_CLASSES


def test_render_shape_dtype_and_determinism():
    a = render_clips(clip_params(6, seed=3))
    b = render_clips(clip_params(6, seed=3))
    assert a.shape == (6, 8, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, render_clips(clip_params(6, seed=4)))


def test_frames_move_but_background_stays():
    clips = render_clips(clip_params(8, seed=0)).astype(np.float32)
    change = np.abs(clips[:, -1] - clips[:, 0]).mean(axis=(1, 2, 3))
    assert (change > 2.0).all()  # every motion changes the picture
    corner = np.abs(clips[:, -1, :2, :2] - clips[:, 0, :2, :2]).mean()
    assert corner < 1.0  # the corners are background: they do not move


def _item_mask(frames):
    """Pixels that differ from the clip's corner colour. Shapes: (T, H, W, 3) -> (T, H, W)."""
    corner = frames[0, :2, :2].reshape(-1, 3).astype(np.float32).mean(0)
    return np.abs(frames.astype(np.float32) - corner).sum(-1) > 60


def _clip_with(motion: int, seed: int = 0):
    p = clip_params(1, seed=seed, split="all")
    return render_clips(type(p)(**{**vars(p), "motion": np.array([motion])}))[0]


def test_motions_do_what_their_names_say():
    xs = np.arange(16)
    slide = _item_mask(_clip_with(2))
    centre = (slide * xs).sum((1, 2)) / slide.sum((1, 2))
    assert centre[-1] - centre[0] > 3.0  # sliding right moves the item right
    grow = _item_mask(_clip_with(3)).sum((1, 2))
    assert grow[-1] > 2.0 * grow[0]  # growing: the item covers more pixels
    spin = _item_mask(_clip_with(0)).sum((1, 2))
    assert spin.max() < 1.5 * spin.min()  # spinning keeps the size
    assert np.abs(_clip_with(0)[-1].astype(int) - _clip_with(1)[-1]).mean() > 2.0


def test_held_out_never_in_train_and_only_in_held_out():
    held = {caption_id(*c) for c in HELD_OUT}
    assert len(held) == len(HELD_OUT) == 20
    train = clip_params(2000, seed=1, split="train")
    ids = set(caption_id(train.cls, train.colour, train.motion).tolist())
    assert not ids & held
    assert len(ids) == NUM_CAPTIONS - len(held)  # every other combination appears
    test = clip_params(100, seed=2, split="held_out")
    assert set(caption_id(test.cls, test.colour, test.motion).tolist()) == held


def test_every_word_of_held_out_is_seen_in_training():
    items, colours, motions = zip(*HELD_OUT)
    assert set(items) == set(range(len(RELIC_CLASSES)))
    assert set(colours) == set(range(len(CLIP_COLOURS)))
    assert set(motions) == set(range(len(CLIP_MOTIONS)))


def test_tokenize_round_trip_and_padding():
    captions = ["a violet ring spinning left", "an azure key growing", ""]
    tokens = tokenize(captions)
    assert tokens.shape == (3, CAPTION_LEN) and tokens.dtype == torch.long
    assert (tokens[2] == PAD_ID).all()
    assert tokens[1, -1] == PAD_ID
    assert detokenize(tokens) == captions


def test_unknown_word_names_the_vocabulary():
    with pytest.raises(ValueError, match="unknown word.*'purple'.*vocabulary.*violet"):
        tokenize(["a purple ring growing"])


def test_caption_ids_parse_and_table_agree():
    table = caption_table()
    assert table.shape == (NUM_CAPTIONS + 1, CAPTION_LEN)
    assert (table[-1] == PAD_ID).all()  # the null id is the empty caption
    for item, colour, motion in [(0, 0, 0), (9, 4, 3), (3, 4, 0)]:
        text = caption_of(item, colour, motion)
        assert parse_caption(text) == (item, colour, motion)
        assert detokenize(table[caption_id(item, colour, motion)][None]) == [text]
    assert caption_of(1, 3, 2) == "an azure shield sliding right"
    with pytest.raises(ValueError, match="motion"):
        parse_caption("a gold ring spinning")
    assert len(VOCAB) == len(set(VOCAB))


def test_filmstrip_round_trip():
    x = torch.randn(2, 3, 8, 16, 16)
    strip = to_filmstrip(x)
    assert strip.shape == (2, 3, 128, 16)
    assert torch.equal(strip[:, :, 16:32], x[:, :, 1])
    assert torch.equal(from_filmstrip(strip), x)


def test_make_clips(tmp_path, monkeypatch):
    monkeypatch.setenv("DIT_MINI_CACHE", str(tmp_path))
    data = make_clips(10, seed=5)
    again = make_clips(10, seed=5)
    assert data.clips.shape == (10, 3, 8, 16, 16) and data.images.shape == (10, 3, 128, 16)
    assert data.clips.min() >= -1 and data.clips.max() <= 1
    assert torch.equal(data.clips, again.clips)
    assert [caption_of(*parse_caption(c)) for c in data.captions] == data.captions
    assert data.labels.tolist() == [caption_id(*parse_caption(c)) for c in data.captions]
