"""Relics: a procedural dataset of 32 x 32 game items in ten classes, with captions.

Each relic is a bold silhouette built from signed distance functions (SDFs: negative inside,
positive outside, in the item's own coordinates where it fits the unit disc). Drawing with SDFs
makes every pose parameter continuous: the pixel grid is mapped back into item coordinates through
the offset, scale and rotation, so an item can be moved, turned and grown smoothly (the video
notebook animates exactly these parameters). Anti-aliasing is analytic: a pixel's coverage is
clip(0.5 - d, 0, 1) for its distance d to the edge in pixels. A dark outline, one flat colour per
part, light from the top left and a soft shadow on a calm background finish the look.

Everything random is drawn up front by `relic_params(n, seed)` from a seeded numpy Generator;
rendering is a pure function of those parameters. Convention: train on `make_relics(n, seed)`,
test on `make_relics(m, seed + TEST_SEED_OFFSET)`.

Introduced in notebook 00 (bonfire); animated in notebook 13 (mastering the art).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..storage import atomic_write, cache_dir
from .image_dataset import ImageDataset
from .relic_shapes import SHAPES

__all__ = [
    "RELIC_CLASSES",
    "RELIC_COLOURS",
    "RELIC_BACKGROUNDS",
    "RELICS_VERSION",
    "TEST_SEED_OFFSET",
    "RelicParams",
    "relic_params",
    "relic_captions",
    "render_relics",
    "render_relic",
    "make_relics",
    "relics_grid",
]

RELICS_VERSION = 1  # bump when the pictures change, so stale caches are not reused
TEST_SEED_OFFSET = 10_000
RELIC_CLASSES = (
    "sword", "shield", "flask", "ring", "key", "skull", "flame", "helm", "bow", "scroll",
)  # fmt: skip
RELIC_COLOURS = {
    "crimson": (200, 32, 56), "amber": (240, 146, 32), "gold": (236, 198, 52),
    "emerald": (40, 178, 92), "teal": (32, 166, 170), "azure": (52, 128, 236),
    "violet": (142, 76, 218), "rose": (238, 106, 170), "silver": (190, 196, 210),
    "ivory": (236, 226, 196),
}  # fmt: skip
# name: (top colour, bottom colour, texture, texture amplitude in 0..255 units)
RELIC_BACKGROUNDS = {
    "mossy stone": ((104, 112, 96), (74, 88, 66), "noise", 16.0),
    "dark cave": ((52, 46, 60), (26, 22, 32), "noise", 8.0),
    "sand": ((222, 198, 150), (196, 166, 116), "noise", 10.0),
    "night sky": ((20, 26, 62), (46, 42, 98), "stars", 90.0),
    "snow": ((226, 232, 240), (190, 202, 218), "noise", 8.0),
    "deep water": ((30, 82, 110), (14, 42, 70), "noise", 10.0),
}
BASE_ANGLE = (45.0, 0.0, 0.0, 0.0, -40.0, 0.0, 0.0, 0.0, 30.0, 0.0)  # degrees, per class
ANGLE_JITTER = 20.0  # degrees either way
SCALE_RANGE = (0.65, 0.82)  # item radius as a fraction of half the frame
OFFSET_JITTER = 0.08  # fraction of half the frame, each axis
OUTLINE = 0.8  # outline width at 32 px, in pixels
INK, WHITE = (24, 18, 28), (252, 250, 244)


@dataclass(frozen=True)
class RelicParams:
    """Everything that decides one relic per row: class, colour and background ids, pose, seed.

    Shapes: every field (N,); offset (N, 2) as (x, y) in half-frames; angle in degrees.
    """

    cls: np.ndarray
    colour: np.ndarray
    background: np.ndarray
    scale: np.ndarray
    angle: np.ndarray
    offset: np.ndarray
    bg_seed: np.ndarray

    def __len__(self) -> int:
        return len(self.cls)

    def __getitem__(self, index) -> RelicParams:
        pick = np.arange(len(self))[index].reshape(-1)
        return RelicParams(**{k: v[pick] for k, v in vars(self).items()})


def relic_params(n: int, seed: int = 0) -> RelicParams:
    """Draw the parameters of n relics; classes are balanced (n // 10 or n // 10 + 1 each)."""
    if n < 1:
        raise ValueError(f"n={n} relics: ask for at least one")
    rng = np.random.default_rng(seed)
    cls = rng.permutation(np.arange(n) % len(RELIC_CLASSES))
    angle = np.asarray(BASE_ANGLE)[cls] + rng.uniform(-ANGLE_JITTER, ANGLE_JITTER, n)
    return RelicParams(
        cls=cls,
        colour=rng.integers(0, len(RELIC_COLOURS), n),
        background=rng.integers(0, len(RELIC_BACKGROUNDS), n),
        scale=rng.uniform(*SCALE_RANGE, n),
        angle=angle,
        offset=rng.uniform(-OFFSET_JITTER, OFFSET_JITTER, (n, 2)),
        bg_seed=rng.uniform(0.0, 100.0, n),
    )


def relic_captions(params: RelicParams) -> list[str]:
    """One caption per relic, e.g. 'a crimson flask on mossy stone'."""
    colours, backgrounds = list(RELIC_COLOURS), list(RELIC_BACKGROUNDS)
    return [
        f"{'an' if colours[c][0] in 'aeiou' else 'a'} {colours[c]} {RELIC_CLASSES[k]} "
        f"on {backgrounds[b]}"
        for k, c, b in zip(params.cls, params.colour, params.background)
    ]


# ---- rendering ----


def _hash(i, j, seed):
    """A deterministic pseudo-random value in [0, 1) per integer lattice point and seed."""
    v = np.sin(i * 127.1 + j * 311.7 + seed * 74.7) * 43758.5453
    return v - np.floor(v)


def _value_noise(seed, size: int, cells: int):
    """Smooth noise in [0, 1): random values on a lattice of cells x cells squares,
    interpolated with smoothstep weights. Shapes: seed (N,) -> (N, size, size)."""
    g = (np.arange(size) + 0.5) / size * cells  # pixel centres in lattice units
    f = g - np.floor(g)
    f = f * f * (3 - 2 * f)
    weights = np.zeros((size, cells + 1), dtype=np.float32)  # (S, cells + 1)
    weights[np.arange(size), np.floor(g).astype(int)] = 1 - f
    weights[np.arange(size), np.floor(g).astype(int) + 1] += f
    i, j = np.meshgrid(np.arange(cells + 1), np.arange(cells + 1), indexing="ij")
    lattice = _hash(i, j, seed[:, None, None]).astype(np.float32)  # (N, cells + 1, cells + 1)
    return weights @ lattice @ weights.T  # (N, S, S)


def _backgrounds(params: RelicParams, u, v):
    """Gradient plus faint texture per relic. Shapes: u, v (1, S, S) -> (N, S, S, 3) float32."""
    rows = [list(RELIC_BACKGROUNDS.values())[b] for b in params.background]
    top, bottom, texture, amp = (np.array(column) for column in zip(*rows))
    seed, size = params.bg_seed, u.shape[-1]
    tilt = (0.4 * np.sin(seed)).astype(np.float32)[:, None, None]  # each gradient leans a little
    w = np.clip((v + tilt * u + 1) / 2, 0, 1)[..., None]  # (N, S, S, 1)
    top, bottom = (c.astype(np.float32)[:, None, None] for c in (top, bottom))
    image = top * (1 - w) + bottom * w
    noise = 0.65 * _value_noise(seed, size, 5) + 0.35 * _value_noise(seed + 17, size, 11) - 0.5
    stars = np.flatnonzero(texture == "stars")
    if len(stars):
        i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        s = seed[stars, None, None]
        noise[stars] = (_hash(i, j, s) > 0.97) * _hash(j + 0.5, i + 0.5, s + 3).astype(np.float32)
    return image + (amp.astype(np.float32)[:, None, None] * noise)[..., None]


def _paint(image, sdf, pixels_per_unit, colour, shade=None):
    """Blend `colour` over `image` where sdf < 0, anti-aliased over one pixel."""
    alpha = np.clip(0.5 - sdf * pixels_per_unit, 0, 1)[..., None]  # (N, S, S, 1)
    colour = colour[:, None, None, :] * (1 if shade is None else shade[..., None])
    return image + alpha * (colour - image)


def _render_class(k: int, params: RelicParams, u, v, image):
    """Draw relics of class k onto their backgrounds. Shapes: image (N, S, S, 3) float."""
    size = u.shape[-1]
    a = np.deg2rad(params.angle).astype(np.float32)[:, None, None]
    s = params.scale.astype(np.float32)[:, None, None]
    ox, oy = params.offset.T.astype(np.float32)[:, :, None, None]
    du, dv = u - ox, v - oy  # (N, S, S) frame coordinates relative to the item centre
    x = (np.cos(a) * du - np.sin(a) * dv) / s  # inverse rotation: item coordinates
    y = (np.sin(a) * du + np.cos(a) * dv) / s
    ppu = s * size / 2  # pixels per item unit
    layers = SHAPES[k](x, y)
    silhouette = np.min([d for _, d in layers], axis=0)
    shift = max(1, round(size / 32))  # soft shadow, down and to the right
    shadow = np.clip(0.5 - silhouette * ppu + OUTLINE * size / 32, 0, 1)
    shadow = np.pad(shadow, ((0, 0), (shift, 0), (shift, 0)))[:, :size, :size, None]
    image = image * (1 - 0.45 * shadow)
    ink = np.broadcast_to(np.asarray(INK, dtype=np.float32), (len(params), 3))
    image = _paint(image, silhouette - OUTLINE * 2 / 32 / s, ppu, ink)
    main = np.array([list(RELIC_COLOURS.values())[c] for c in params.colour], dtype=np.float32)
    colours = {"main": main, "dark": main * 0.55, "light": main * 0.45 + 255 * 0.55, "ink": ink}
    colours["white"] = np.broadcast_to(np.asarray(WHITE, dtype=np.float32), main.shape)
    shade = 1.0 - 0.14 * np.clip((du + dv) / (2 * s), -1, 1)  # light from the top left
    for role, d in layers:
        image = _paint(image, d, ppu, colours[role], None if role == "ink" else shade)
    return image


def render_relics(params: RelicParams, size: int = 32) -> np.ndarray:
    """Render every relic described by `params`.

    Shapes: params of length N -> (N, size, size, 3) uint8.
    """
    if size < 8:
        raise ValueError(f"size={size} is too small for a relic; use 8 pixels or more")
    centres = ((np.arange(size) + 0.5) / size * 2 - 1).astype(np.float32)  # pixel centres
    v, u = np.meshgrid(centres, centres, indexing="ij")
    u, v = u[None], v[None]  # (1, S, S)
    out = np.empty((len(params), size, size, 3), dtype=np.uint8)
    for k in range(len(RELIC_CLASSES)):
        for chunk in np.array_split(np.flatnonzero(params.cls == k), 1 + len(params) // 2048):
            if len(chunk):
                part = params[chunk]
                image = _render_class(k, part, u, v, _backgrounds(part, u, v))
                out[chunk] = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return out


def _index(name_or_id, names, what: str) -> int:
    if isinstance(name_or_id, str):
        if name_or_id not in names:
            raise ValueError(f"unknown relic {what} {name_or_id!r}; choose from {', '.join(names)}")
        return list(names).index(name_or_id)
    if not 0 <= int(name_or_id) < len(names):
        raise ValueError(f"relic {what} id {name_or_id} must lie in [0, {len(names)})")
    return int(name_or_id)


def render_relic(
    cls: int | str,
    colour: int | str = "gold",
    background: int | str = "mossy stone",
    scale: float = 0.72,
    angle: float | None = None,
    offset: tuple[float, float] = (0.0, 0.0),
    bg_seed: float = 0.0,
    size: int = 32,
) -> np.ndarray:
    """Render one relic; names or ids for class, colour and background; angle defaults to the
    class's resting pose. Every pose argument is continuous, so frames can be interpolated.

    Shapes: -> (size, size, 3) uint8.
    """
    k = _index(cls, RELIC_CLASSES, "class")
    params = RelicParams(
        cls=np.array([k]),
        colour=np.array([_index(colour, tuple(RELIC_COLOURS), "colour")]),
        background=np.array([_index(background, tuple(RELIC_BACKGROUNDS), "background")]),
        scale=np.array([float(scale)]),
        angle=np.array([BASE_ANGLE[k] if angle is None else float(angle)]),
        offset=np.array([offset], dtype=np.float64).reshape(1, 2),
        bg_seed=np.array([float(bg_seed)]),
    )
    return render_relics(params, size)[0]


def make_relics(n: int, seed: int = 0, size: int = 32, cache: bool = True) -> ImageDataset:
    """n captioned relics from `seed` (train: seed; test: seed + TEST_SEED_OFFSET).

    With cache=True the pixels are stored in cache_dir() as uint8 .npz (keyed by n, seed, size
    and RELICS_VERSION) and read back on later calls.

    Shapes: images (n, 3, size, size) in [-1, 1], labels (n,) in [0, 10).
    """
    params = relic_params(n, seed)
    path = cache_dir() / f"relics-v{RELICS_VERSION}-n{n}-seed{seed}-{size}px.npz"
    if cache and path.exists():
        with np.load(path, allow_pickle=False) as z:
            pixels = z["pixels"]
    else:
        pixels = render_relics(params, size)
        if cache:
            atomic_write(path, lambda f: np.savez(f, pixels=pixels))
    return ImageDataset.from_uint8(pixels, params.cls, RELIC_CLASSES, relic_captions(params))


def relics_grid(per_class: int = 10, seed: int = 0, size: int = 32, zoom: int = 3, path=None):
    """A picture with one row per class and `per_class` relics per row, upscaled by `zoom`
    (nearest neighbour); saved as PNG when `path` is given.

    Shapes: -> (10 * size * zoom, per_class * size * zoom, 3) uint8.
    """
    params = relic_params(per_class * len(RELIC_CLASSES), seed)
    pixels = render_relics(params[np.argsort(params.cls, kind="stable")], size)
    rows = pixels.reshape(len(RELIC_CLASSES), per_class, size, size, 3)
    grid = rows.transpose(0, 2, 1, 3, 4).reshape(len(RELIC_CLASSES) * size, per_class * size, 3)
    grid = grid.repeat(zoom, axis=0).repeat(zoom, axis=1)
    if path is not None:
        Image.fromarray(grid).save(path)
    return grid
