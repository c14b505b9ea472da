"""Animated Relics: short captioned clips of relics that spin, slide or grow, and their words.

A clip is T frames of one relic whose pose (angle, offset, scale) moves smoothly over time. The
relic renderer (`dit_mini.data.relics`) takes a continuous pose per row, so a clip is just T rows of
parameters with the pose interpolated; frames are drawn at 32 x 32 and averaged down to 16 x 16.
Each clip's caption names its item, colour and motion ("a violet ring spinning left").

Text without downloads: the captions use a vocabulary of a few dozen words, so a word-level
tokenizer (one id per word, id 0 for padding) is enough; the empty caption (all padding) is the
"no text" condition of classifier-free guidance (Ho & Salimans, arXiv 2207.12598).

A fixed set of (item, colour, motion) combinations, `HELD_OUT`, never appears in training clips:
every word in it is seen in training, only the combination is new. A text-to-video model that
draws these correctly has learnt to compose words, not to recall captions.

A clip is stored as a "film strip": its frames stacked top to bottom into one (C, T*H, W) image,
so the package's image trainer, losses and samplers run on clips unchanged.

Taught in notebook 13 (mastering the art).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange

from ..storage import atomic_write, cache_dir
from .relics import (
    BASE_ANGLE,
    RELIC_BACKGROUNDS,
    RELIC_CLASSES,
    RELIC_COLOURS,
    RelicParams,
    render_relics,
)

__all__ = [
    "CLIP_FRAMES",
    "CLIP_SIZE",
    "CLIP_COLOURS",
    "CLIP_MOTIONS",
    "CLIP_BACKGROUNDS",
    "HELD_OUT",
    "NUM_CAPTIONS",
    "VOCAB",
    "PAD_ID",
    "CAPTION_LEN",
    "ClipParams",
    "clip_params",
    "render_clips",
    "caption_of",
    "caption_id",
    "parse_caption",
    "tokenize",
    "detokenize",
    "caption_table",
    "to_filmstrip",
    "from_filmstrip",
    "ClipDataset",
    "make_clips",
]

CLIPS_VERSION = 1  # bump when the clips change, so stale caches are not reused
CLIP_FRAMES, CLIP_SIZE, RENDER_SIZE = 8, 16, 32
CLIP_COLOURS = ("crimson", "gold", "emerald", "azure", "violet")  # easy to tell apart at 16 px
CLIP_MOTIONS = ("spinning left", "spinning right", "sliding right", "growing")
CLIP_BACKGROUNDS = ("dark cave", "mossy stone")
SPIN_DEGREES = 150.0  # total turn over a clip; a larger angle counts as left (counterclockwise)
SLIDE_SPAN = (-0.4, 0.4)  # x offset in half-frames, start to end
GROW_SCALE = (0.35, 0.8)  # item radius as a fraction of half the frame, start to end
MOVING_SCALE = 0.55  # item size while spinning or sliding
# (item, colour, motion) ids never drawn for training: two per item, four per colour, five per
# motion, so every word is still seen in training, in other combinations.
HELD_OUT = tuple(
    (k, (k + shift) % len(CLIP_COLOURS), (k + shift) % len(CLIP_MOTIONS))
    for k in range(len(RELIC_CLASSES))
    for shift in (0, 2)
)
NUM_CAPTIONS = len(RELIC_CLASSES) * len(CLIP_COLOURS) * len(CLIP_MOTIONS)

PAD_ID, CAPTION_LEN = 0, 5  # "a violet ring spinning left" is the longest caption
_WORDS = ["a", "an", *CLIP_COLOURS, *RELIC_CLASSES, *" ".join(CLIP_MOTIONS).split()]
VOCAB = ("<pad>", *dict.fromkeys(_WORDS))  # id -> word, each word once


@dataclass(frozen=True)
class ClipParams:
    """Everything that decides one clip per row. Shapes: every field (N,); offset (N, 2)."""

    cls: np.ndarray
    colour: np.ndarray  # index into CLIP_COLOURS
    motion: np.ndarray  # index into CLIP_MOTIONS
    background: np.ndarray  # index into CLIP_BACKGROUNDS
    angle: np.ndarray  # start angle, degrees
    offset: np.ndarray  # start offset (x, y), half-frames
    speed: np.ndarray  # motion multiplier around 1
    bg_seed: np.ndarray

    def __len__(self) -> int:
        return len(self.cls)


def caption_combos(split: str) -> np.ndarray:
    """(item, colour, motion) rows allowed in a split: 'train', 'held_out' or 'all'."""
    grid = np.stack(
        np.meshgrid(*(np.arange(len(v)) for v in (RELIC_CLASSES, CLIP_COLOURS, CLIP_MOTIONS))),
        axis=-1,
    ).reshape(-1, 3)  # (NUM_CAPTIONS, 3)
    held = np.array([tuple(row) in set(HELD_OUT) for row in grid])
    if split not in ("train", "held_out", "all"):
        raise ValueError(f"split must be 'train', 'held_out' or 'all'; got {split!r}")
    return grid if split == "all" else grid[~held if split == "train" else held]


def clip_params(n: int, seed: int = 0, split: str = "train") -> ClipParams:
    """Draw n clips from the combinations of `split`, cycling through them in a shuffled order
    so that every combination gets n // len(combos) clips or one more."""
    if n < 1:
        raise ValueError(f"n={n} clips: ask for at least one")
    combos = caption_combos(split)
    rng = np.random.default_rng(seed)
    cycle = rng.permutation(len(combos))[np.arange(n) % len(combos)]
    pick = combos[rng.permutation(cycle)]  # (n, 3)
    return ClipParams(
        cls=pick[:, 0],
        colour=pick[:, 1],
        motion=pick[:, 2],
        background=rng.integers(0, len(CLIP_BACKGROUNDS), n),
        angle=np.asarray(BASE_ANGLE)[pick[:, 0]] + rng.uniform(-15.0, 15.0, n),
        offset=rng.uniform(-0.08, 0.08, (n, 2)),
        speed=rng.uniform(0.85, 1.15, n),
        bg_seed=rng.uniform(0.0, 100.0, n),
    )


def _frame_params(p: ClipParams, frames: int) -> RelicParams:
    """The relic parameters of every frame, clip-major (N * T rows)."""
    u = np.linspace(0.0, 1.0, frames)[None] * p.speed[:, None]  # (N, T) motion progress
    m = p.motion[:, None]
    spin = np.where(m == 0, 1.0, np.where(m == 1, -1.0, 0.0)) * SPIN_DEGREES
    angle = p.angle[:, None] + spin * (u - 0.5)  # (N, T)
    x = p.offset[:, :1] + np.where(m == 2, SLIDE_SPAN[0] + (SLIDE_SPAN[1] - SLIDE_SPAN[0]) * u, 0)
    y = np.broadcast_to(p.offset[:, 1:], x.shape)
    grow = GROW_SCALE[0] + (GROW_SCALE[1] - GROW_SCALE[0]) * np.clip(u, 0, 1)
    scale = np.where(m == 3, grow, MOVING_SCALE)  # (N, T)
    every = np.broadcast_to  # one value per clip, repeated over its frames
    bg_ids = np.array([list(RELIC_BACKGROUNDS).index(b) for b in CLIP_BACKGROUNDS])
    colour_ids = np.array([list(RELIC_COLOURS).index(c) for c in CLIP_COLOURS])
    shape = (len(p), frames)
    return RelicParams(
        cls=every(p.cls[:, None], shape).ravel(),
        colour=every(colour_ids[p.colour][:, None], shape).ravel(),
        background=every(bg_ids[p.background][:, None], shape).ravel(),
        scale=scale.ravel(),
        angle=angle.ravel(),
        offset=np.stack([x.ravel(), y.ravel()], axis=1),
        bg_seed=every(p.bg_seed[:, None], shape).ravel(),
    )


def render_clips(params: ClipParams, frames: int = CLIP_FRAMES, size: int = CLIP_SIZE):
    """Render every clip: frames drawn at 32 x 32, then averaged down to `size` (a divisor of 32).

    Shapes: params of length N -> (N, T, size, size, 3) uint8.
    """
    if RENDER_SIZE % size:
        raise ValueError(f"clip size {size} must divide {RENDER_SIZE}; use 8, 16 or 32")
    f = RENDER_SIZE // size
    pixels = render_relics(_frame_params(params, frames), RENDER_SIZE).astype(np.float32)
    pixels = pixels.reshape(len(params), frames, size, f, size, f, 3).mean(axis=(3, 5))
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def caption_of(cls: int, colour: int, motion: int) -> str:
    """'a violet ring spinning left' for ids (item, colour, motion)."""
    word = CLIP_COLOURS[colour]
    article = "an" if word[0] in "aeiou" else "a"
    return f"{article} {word} {RELIC_CLASSES[cls]} {CLIP_MOTIONS[motion]}"


def caption_id(cls, colour, motion):
    """Index of the caption (item, colour, motion) in [0, NUM_CAPTIONS); works on arrays too."""
    return (np.asarray(cls) * len(CLIP_COLOURS) + colour) * len(CLIP_MOTIONS) + motion


def parse_caption(text: str) -> tuple[int, int, int]:
    """(item, colour, motion) ids of a caption; ValueError naming what is missing or unknown."""
    tokenize([text])  # raises ValueError on unknown words
    text = " ".join(text.lower().split())
    found = []
    for name, options in (("item", RELIC_CLASSES), ("colour", CLIP_COLOURS)):
        hits = [i for i, o in enumerate(options) if f" {o} " in f" {text} "]
        if len(hits) != 1:
            raise ValueError(f"caption {text!r} must name exactly one {name} from {options}")
        found.append(hits[0])
    hits = [i for i, m in enumerate(CLIP_MOTIONS) if text.endswith(m)]
    if len(hits) != 1:
        raise ValueError(f"caption {text!r} must end with one motion from {CLIP_MOTIONS}")
    return found[0], found[1], hits[0]


def tokenize(captions: list[str], length: int = CAPTION_LEN) -> torch.Tensor:
    """Word ids, padded with PAD_ID to `length`; '' is the empty caption (all padding).

    Shapes: N captions -> (N, length) int64.
    """
    out = torch.full((len(captions), length), PAD_ID, dtype=torch.long)
    for i, text in enumerate(captions):
        words = text.lower().split()
        unknown = [w for w in words if w not in VOCAB[1:]]
        if unknown:
            raise ValueError(
                f"unknown word(s) {unknown} in caption {text!r}; the vocabulary is: "
                f"{', '.join(VOCAB[1:])}"
            )
        if len(words) > length:
            raise ValueError(f"caption {text!r} has {len(words)} words; at most {length} fit")
        out[i, : len(words)] = torch.tensor([VOCAB.index(w) for w in words], dtype=torch.long)
    return out


def detokenize(tokens: torch.Tensor) -> list[str]:
    """Inverse of `tokenize`. Shapes: (N, L) -> N captions."""
    return [" ".join(VOCAB[int(i)] for i in row if int(i) != PAD_ID) for row in tokens]


def caption_table() -> torch.Tensor:
    """Tokens of every caption by caption id, plus the empty caption as the last row (the null
    id NUM_CAPTIONS used for guidance). Shapes: -> (NUM_CAPTIONS + 1, CAPTION_LEN) int64."""
    combos = caption_combos("all")
    order = np.argsort(caption_id(*combos.T))
    return tokenize([caption_of(*combos[i]) for i in order] + [""])


def to_filmstrip(clips: torch.Tensor) -> torch.Tensor:
    """Stack frames top to bottom. Shapes: (B, C, T, H, W) -> (B, C, T*H, W)."""
    return rearrange(clips, "b c t h w -> b c (t h) w")


def from_filmstrip(strip: torch.Tensor, frames: int = CLIP_FRAMES) -> torch.Tensor:
    """Inverse of `to_filmstrip`. Shapes: (B, C, T*H, W) -> (B, C, T, H, W)."""
    return rearrange(strip, "b c (t h) w -> b c t h w", t=frames)


@dataclass
class ClipDataset:
    """Clips in [-1, 1], caption ids (the trainer's labels), captions and parameters.

    `images` is the film-strip view the image trainer reads.

    Shapes: clips (N, 3, T, H, W) float32, labels (N,) int64.
    """

    clips: torch.Tensor
    labels: torch.Tensor
    captions: list[str]
    params: ClipParams

    @property
    def images(self) -> torch.Tensor:
        return to_filmstrip(self.clips)

    def __len__(self) -> int:
        return len(self.labels)


def make_clips(n: int, seed: int = 0, split: str = "train", cache: bool = True) -> ClipDataset:
    """n captioned clips from `seed` and the combinations of `split` ('train', 'held_out',
    'all'); the pixels are cached in cache_dir() like `make_relics`.

    Shapes: clips (n, 3, 8, 16, 16) in [-1, 1], labels (n,) caption ids.
    """
    params = clip_params(n, seed, split)
    path = cache_dir() / f"clips-v{CLIPS_VERSION}-n{n}-seed{seed}-{split}.npz"
    if cache and path.exists():
        with np.load(path, allow_pickle=False) as z:
            pixels = z["pixels"]
    else:
        pixels = render_clips(params)
        if cache:
            atomic_write(path, lambda f: np.savez(f, pixels=pixels))
    clips = rearrange(torch.from_numpy(pixels).float() / 127.5 - 1.0, "n t h w c -> n c t h w")
    ids = torch.as_tensor(caption_id(params.cls, params.colour, params.motion), dtype=torch.long)
    captions = [caption_of(*row) for row in zip(params.cls, params.colour, params.motion)]
    return ClipDataset(clips.contiguous(), ids, captions, params)
