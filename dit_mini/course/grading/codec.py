"""Data in and out of the sandbox: nested values as JSON, tensors as safetensors, size-capped.

The grader writes a probe's inputs with `dump` and reads the learner's outputs with `load`. Only
data crosses: numbers, strings, booleans, None, lists, tuples, dicts with string keys and
tensors (numpy arrays become tensors). A few markers stand for objects that the kernel builds
from the package itself: a seeded `torch.Generator`, a pretrained model (or one of its
submodules), a DiT or U-Net config. `load` refuses files over `max_bytes`, nesting deeper
than `MAX_DEPTH` and anything that is not one of those kinds, with a one-line ValueError.

Used by `dit_mini.course.grading.runner` (grader side) and `.kernel` (inside the sandbox).
"""

from __future__ import annotations

import functools
import json
import numbers
import os
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "Generator",
    "Pretrained",
    "Config",
    "Other",
    "encode",
    "decode",
    "dump",
    "load",
    "read_capped",
    "write_new",
]

MAX_BYTES = 64 * 2**20  # one probe's outputs: 64 MiB at most
MAX_DEPTH = 12


class Generator:
    """Marker: a `torch.Generator().manual_seed(seed)` built where the value is decoded."""

    def __init__(self, seed: int):
        self.seed = int(seed)


class Pretrained:
    """Marker: the shipped model `name` (eval mode), or its submodule at dotted `path`."""

    def __init__(self, name: str, path: str = ""):
        self.name, self.path = name, path


def encode(value, tensors: dict, depth: int = 0):
    """`value` as JSON-ready data; tensors are stored in `tensors` under a fresh key."""
    if depth > MAX_DEPTH:
        raise ValueError("the value is nested too deeply")
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous().clone()
        return {"$tensor": key}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return {"$float": repr(float(value))}
    if isinstance(value, torch.Size):
        return {"$tuple": [int(v) for v in value]}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, tensors, depth + 1) for v in value]}
    if isinstance(value, list):
        return [encode(v, tensors, depth + 1) for v in value]
    if isinstance(value, dict):
        return {"$dict": [[str(k), encode(v, tensors, depth + 1)] for k, v in value.items()]}
    if isinstance(value, Generator):
        return {"$generator": value.seed}
    if isinstance(value, Config):
        body = [value.name, encode(value.overrides, tensors, depth + 1)]
        return {"$config": body if value.family == "dit" else [*body, value.family]}
    if isinstance(value, Pretrained):
        return {"$pretrained": [value.name, value.path]}
    return {"$other": type(value).__name__[:80]}


class Config:
    """Marker: `dit_config(name, **overrides)` of the package (`unet_config` for family
    "unet"), built where it is decoded."""

    FAMILIES = ("dit", "unet")

    def __init__(self, name: str, overrides: dict | None = None, family: str = "dit"):
        if family not in self.FAMILIES:
            raise ValueError(f"unknown config family {family!r}; known: {self.FAMILIES}")
        self.name, self.overrides, self.family = name, dict(overrides or {}), family


class Other:
    """A value of a kind that cannot cross (a learner's object); compares unequal to anything."""

    def __init__(self, kind: str):
        self.kind = kind

    def __repr__(self) -> str:
        return f"<a {self.kind}>"


@functools.lru_cache(maxsize=4)
def _pretrained(name: str, path: str):
    from ...models.pretrained import load_pretrained  # deferred: only probes that need a model

    model = load_pretrained(name)
    return model.get_submodule(path) if path else model


def decode(data, tensors: dict, depth: int = 0, build: bool = True):
    """The value that `encode` wrote; markers become objects when `build` (kernel and grader)."""
    if depth > MAX_DEPTH:
        raise ValueError("the data is nested too deeply")
    if data is None or isinstance(data, (bool, int, str)):
        return data
    if isinstance(data, list):
        return [decode(v, tensors, depth + 1, build) for v in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError(f"unexpected data of type {type(data).__name__}")
    ((kind, body),) = data.items()
    if kind == "$tensor":
        if body not in tensors:
            raise ValueError(f"missing tensor {body!r}")
        return tensors[body]
    if kind == "$float":
        return float(body)
    if kind == "$tuple":
        return tuple(decode(v, tensors, depth + 1, build) for v in body)
    if kind == "$dict":
        return {str(k): decode(v, tensors, depth + 1, build) for k, v in body}
    if kind == "$generator":
        return torch.Generator().manual_seed(int(body)) if build else Generator(body)
    if kind == "$pretrained":
        return _pretrained(*body) if build else Pretrained(*body)
    if kind == "$config":
        if not isinstance(body, list) or len(body) not in (2, 3):
            raise ValueError("a config is [name, overrides] or [name, overrides, family]")
        overrides = decode(body[1], tensors, depth + 1, build)
        if not isinstance(overrides, dict):
            raise ValueError("a config's overrides are a dict")
        marker = Config(str(body[0]), overrides, *[str(f) for f in body[2:]])
        if not build:
            return marker
        if marker.family == "unet":
            from ...models.unet import unet_config  # deferred: only probes that need a config

            return unet_config(marker.name, **marker.overrides)
        from ...models.dit import dit_config  # deferred: only probes that need a config

        return dit_config(marker.name, **marker.overrides)
    if kind == "$other":
        return Other(str(body))
    raise ValueError(f"unexpected marker {kind!r}")


def write_new(path: Path, data: bytes) -> None:
    """Create `path` (never through a symlink, never over an existing file) holding `data`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def read_capped(path: Path, max_bytes: int) -> bytes:
    """The bytes of `path`, refusing a symlink or more than `max_bytes`."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{path.name} is over the {max_bytes >> 20} MiB cap")
    return data


def dump(value, path: str | Path) -> None:
    """Write `value` to new files `path`.json and `path`.safetensors."""
    from safetensors.torch import save  # deferred: the grader and kernel only

    tensors: dict = {}
    data = encode(value, tensors)
    write_new(Path(f"{path}.safetensors"), save(tensors))
    write_new(Path(f"{path}.json"), json.dumps(data).encode())


def load(path: str | Path, max_bytes: int = MAX_BYTES, build: bool = True):
    """Read what `dump` wrote at `path`, refusing symlinks and more than `max_bytes` in all."""
    from safetensors.torch import load as load_tensors  # deferred: the grader and kernel only

    try:
        blob = read_capped(Path(f"{path}.safetensors"), max_bytes)
        text = read_capped(Path(f"{path}.json"), max_bytes - len(blob))
    except FileNotFoundError as error:
        raise ValueError(f"no output file {Path(error.filename).name}") from error
    except OSError as error:
        raise ValueError(f"unreadable output ({error.strerror})") from error
    return decode(json.loads(text), load_tensors(blob), build=build)
