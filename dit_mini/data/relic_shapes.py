"""The ten Relics shapes as signed distance functions (SDFs), in the item's own coordinates.

Each function maps coordinate arrays (x, y), with y pointing down and the item fitting the unit
disc, to an array of signed distances: negative inside, positive outside. Those in
`dit_mini.data.relics`
turn them into pictures; `SHAPES[k]` draws class k of `relics.RELIC_CLASSES`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SHAPES"]


def _circle(x, y, cx, cy, r):
    return np.hypot(x - cx, y - cy) - r


def _box(x, y, cx, cy, hw, hh, r=0.0):
    qx, qy = np.abs(x - cx) - hw + r, np.abs(y - cy) - hh + r
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0) - r


def _polygon(x, y, points):
    """Exact SDF of a simple polygon (even-odd rule for the sign)."""
    v = np.asarray(points, dtype=np.float32)
    d = (x - v[0, 0]) ** 2 + (y - v[0, 1]) ** 2
    inside = np.zeros(x.shape, dtype=bool)
    for (ax, ay), (bx, by) in zip(v, np.roll(v, 1, axis=0)):
        ex, ey, wx, wy = bx - ax, by - ay, x - ax, y - ay
        h = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0, 1)
        d = np.minimum(d, (wx - ex * h) ** 2 + (wy - ey * h) ** 2)
        inside ^= ((y >= ay) != (y >= by)) & ((ex * wy > ey * wx) == (by > ay))
    d = np.sqrt(d)
    return np.where(inside, -d, d)


def _mirror(points):
    """A left-right symmetric outline from its right half, listed top to bottom."""
    return list(points) + [(-px, py) for px, py in reversed(points) if px != 0]


def _sword(x, y):
    blade = _polygon(x, y, _mirror([(0, -1.0), (0.2, -0.76), (0.2, 0.4)]))
    return [
        ("main", blade),
        ("light", _box(x, y, 0, -0.2, 0.045, 0.5)),
        ("dark", _box(x, y, 0, 0.48, 0.5, 0.1, 0.05)),
        ("dark", _box(x, y, 0, 0.7, 0.09, 0.18)),
        ("light", _circle(x, y, 0, 0.9, 0.13)),
    ]


def _shield(x, y):
    outline = [(0.8, -0.85), (0.8, 0.0), (0.72, 0.32), (0.54, 0.6), (0.28, 0.82), (0.0, 0.98)]
    body = _polygon(x, y, _mirror(outline))
    cross = np.minimum(_box(x, y, 0, 0.0, 0.1, 0.6), _box(x, y, 0, -0.2, 0.52, 0.1))
    return [("main", body), ("light", np.maximum(body, -(body + 0.14))), ("dark", cross)]


def _flask(x, y):
    bulb = _circle(x, y, 0, 0.35, 0.62)
    glass = np.minimum(bulb, _box(x, y, 0, -0.35, 0.18, 0.4))
    return [
        ("light", glass),
        ("main", np.maximum(bulb + 0.06, 0.1 - y)),
        ("light", _box(x, y, 0, -0.76, 0.28, 0.07, 0.04)),
        ("dark", _box(x, y, 0, -0.9, 0.16, 0.09, 0.03)),
        ("white", _circle(x, y, -0.3, 0.22, 0.1)),
    ]


def _ring(x, y):
    gem = _mirror([(0.0, -0.98), (0.32, -0.66), (0.0, -0.32)])
    return [
        ("main", np.abs(_circle(x, y, 0, 0.18, 0.6)) - 0.17),
        ("dark", _box(x, y, 0, -0.42, 0.24, 0.1, 0.04)),
        ("light", _polygon(x, y, gem)),
        ("white", _circle(x, y, -0.1, -0.72, 0.08)),
    ]


def _key(x, y):
    bow = np.abs(_circle(x, y, 0, -0.56, 0.36)) - 0.14
    shaft = _box(x, y, 0, 0.3, 0.11, 0.62)
    teeth = np.minimum(_box(x, y, 0.24, 0.8, 0.16, 0.08), _box(x, y, 0.22, 0.54, 0.12, 0.07))
    hole = _circle(x, y, 0, -0.56, 0.08)
    return [("main", np.minimum(np.minimum(bow, shaft), teeth)), ("light", hole)]


def _skull(x, y):
    head = np.minimum(_circle(x, y, 0, -0.22, 0.72), _box(x, y, 0, 0.45, 0.42, 0.32, 0.14))
    eyes = np.minimum(_circle(x, y, -0.3, -0.08, 0.21), _circle(x, y, 0.3, -0.08, 0.21))
    nose = _polygon(x, y, [(0, 0.12), (0.11, 0.34), (-0.11, 0.34)])
    teeth = np.minimum(_box(x, y, -0.13, 0.66, 0.035, 0.13), _box(x, y, 0.13, 0.66, 0.035, 0.13))
    return [("main", head), ("ink", np.minimum(np.minimum(eyes, nose), teeth))]


def _flame(x, y):
    half = [(0, -1.0), (0.22, -0.5), (0.42, -0.62), (0.62, 0), (0.6, 0.45), (0.3, 0.9), (0, 0.96)]
    inner = [(0.0, -0.3), (0.3, 0.25), (0.3, 0.62), (0.0, 0.8)]
    return [
        ("main", _polygon(x, y, _mirror(half))),
        ("light", _polygon(x, y, _mirror(inner))),
        ("white", _circle(x, y, 0, 0.56, 0.12)),
    ]


def _helm(x, y):
    horn = [(0.5, -0.2), (0.86, -0.38), (0.98, -0.72), (0.9, -1.0), (0.78, -0.68), (0.58, -0.5)]
    horns = np.minimum(_polygon(x, y, horn), _polygon(x, y, [(-px, py) for px, py in horn]))
    dome = np.minimum(_circle(x, y, 0, -0.08, 0.62), _box(x, y, 0, 0.38, 0.62, 0.46, 0.12))
    slit = np.minimum(_box(x, y, 0, 0.1, 0.48, 0.07), _box(x, y, 0, 0.4, 0.07, 0.3))
    ridge = _box(x, y, 0, -0.2, 0.06, 0.5)
    return [("light", horns), ("main", dome), ("ink", slit), ("dark", ridge)]


def _bow(x, y):
    limb = np.maximum(np.abs(_circle(x, y, 0.62, 0.0, 1.05)) - 0.12, x - 0.4)
    head = [(-0.98, 0.0), (-0.66, -0.2), (-0.66, 0.2)]
    feather = [(0.62, 0.0), (0.92, -0.2), (0.98, 0.0), (0.92, 0.2)]
    return [
        ("main", limb),
        ("light", _box(x, y, 0.38, 0.0, 0.03, 0.98)),
        ("dark", _box(x, y, 0.05, 0.0, 0.7, 0.05)),
        ("light", np.minimum(_polygon(x, y, head), _polygon(x, y, feather))),
        ("dark", _box(x, y, -0.44, 0.0, 0.14, 0.18, 0.04)),
    ]


def _scroll(x, y):
    rollers = np.minimum(_box(x, y, 0, -0.7, 0.72, 0.15, 0.1), _box(x, y, 0, 0.7, 0.72, 0.15, 0.1))
    lines = np.min([_box(x, y, -0.05, ly, 0.34, 0.045) for ly in (-0.3, -0.08, 0.14)], axis=0)
    return [
        ("light", _box(x, y, 0, 0, 0.56, 0.66)),
        ("main", rollers),
        ("ink", lines),
        ("main", _circle(x, y, 0.26, 0.38, 0.16)),
    ]


SHAPES = (_sword, _shield, _flask, _ring, _key, _skull, _flame, _helm, _bow, _scroll)
