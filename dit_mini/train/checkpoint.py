"""Checkpoints that survive crashes, and weights to share.

A training checkpoint is one plain dict, laid out like the reference DiT's (`model`, `ema`, `opt`,
`step`, `config`) plus what exact resume needs: the random generators' states (`rng`), the loss
history and a format tag. It holds only tensors, numbers, strings, lists and dicts, so it loads
with `torch.load(..., weights_only=True)`, which runs no code from the file. It is written to a
temporary file in the same folder and renamed into place: a crash mid-write leaves the previous
checkpoint intact, because a rename within one file system is atomic.

Exported weights (the EMA model) are safetensors files whose metadata carries the run's config as
JSON, so `load_model` can rebuild the network from either kind of file.

Used by `dit_mini.train.trainer`, the `dit-mini` command line, and every notebook that loads a
relic model.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "atomic_save",
    "save_checkpoint",
    "load_checkpoint",
    "model_config_dict",
    "build_model",
    "config_diff",
    "export_weights",
    "read_config",
    "load_model",
]

CHECKPOINT_FORMAT = "dit-mini"
CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("model", "ema", "opt", "step", "config", "rng", "history", "version")
# kind -> (module, model class, config class); the kind is stored in every checkpoint's config.
MODEL_KINDS = {
    "dit": ("models.dit", "DiT", "DiTConfig"),
    "unet": ("models.unet", "UNet", "UNetConfig"),
}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: truncated, foreign, or from another config."""


def atomic_save(obj, path: str | Path) -> Path:
    """torch.save `obj` to a temporary file beside `path`, flush it to disk, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write a training checkpoint atomically; `state` needs the keys of `REQUIRED_KEYS`."""
    missing = [k for k in REQUIRED_KEYS if k not in state and k != "version"]
    if missing:
        raise ValueError(f"checkpoint state lacks {missing}; it needs {list(REQUIRED_KEYS)}")
    return atomic_save({**state, "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION}, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by `save_checkpoint`, with weights_only loading only.

    Raises FileNotFoundError for a missing file and CheckpointError for a truncated, corrupt or
    foreign one; each message names the file and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}: check the path (a training run writes "
            "<out>/checkpoint.pt) or train one with `dit-mini train --out DIR`"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path} is not a dit-mini checkpoint: it holds data that safe (weights_only) "
            f"loading refuses or cannot parse ({_first_line(error)}); pass a file written by "
            "`dit-mini train`"
        ) from error
    except Exception as error:  # a damaged file can fail anywhere in the unpickler
        raise CheckpointError(
            f"cannot read {path}: the file is truncated or corrupt ({_first_line(error)}); "
            "copy it again, or delete it and resume from another copy"
        ) from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is a PyTorch file but not a dit-mini checkpoint (no format tag "
            f"{CHECKPOINT_FORMAT!r}); pass a file written by `dit-mini train`"
        )
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing or state["version"] > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {state.get('version')} and lacks {missing}; this "
            f"dit-mini reads version {CHECKPOINT_VERSION}: update the package or retrain"
        )
    return state


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def model_config_dict(model: nn.Module) -> dict:
    """The model's config as plain data plus its kind ('dit', 'unet'), as stored in checkpoints."""
    for kind, (module, cls, _) in MODEL_KINDS.items():
        if type(model).__name__ == cls and type(model).__module__.endswith(module):
            return _plain({"kind": kind, **asdict(model.config)})
    raise ValueError(
        f"cannot describe a {type(model).__name__} in a checkpoint; supported models: "
        f"{[cls for _, cls, _ in MODEL_KINDS.values()]}"
    )


def build_model(config: dict) -> nn.Module:
    """Rebuild an untrained model from `model_config_dict`'s output."""
    import importlib

    config = dict(config)
    kind = config.pop("kind", None)
    if kind not in MODEL_KINDS:
        raise CheckpointError(f"unknown model kind {kind!r}; known kinds: {sorted(MODEL_KINDS)}")
    module, cls, cfg_cls = MODEL_KINDS[kind]
    mod = importlib.import_module(f"dit_mini.{module}")
    return getattr(mod, cls)(getattr(mod, cfg_cls)(**config))


def _plain(obj):
    """Tuples to lists and so on: the form the config takes after a trip through JSON."""
    return json.loads(json.dumps(obj))


def config_diff(
    saved: dict, new: dict, ignore: tuple[str, ...] = (), prefix: str = ""
) -> list[str]:
    """Lines 'key: saved -> new' for every leaf that differs, skipping dotted keys in `ignore`."""
    saved, new, lines = _plain(saved), _plain(new), []
    for key in sorted(set(saved) | set(new)):
        name = f"{prefix}{key}"
        if name in ignore:
            continue
        a, b = saved.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            lines += config_diff(a, b, ignore, prefix=f"{name}.")
        elif a != b:
            lines.append(f"{name}: {a!r} (checkpoint) -> {b!r} (now)")
    return lines


def export_weights(model: nn.Module, path: str | Path, config: dict) -> Path:
    """Save `model`'s weights as safetensors with `config` (JSON) in the metadata, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": CHECKPOINT_FORMAT, "config": json.dumps(_plain(config))}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as error:  # safetensors raises its own error types
        raise CheckpointError(
            f"cannot read {path}: the safetensors file is truncated or corrupt "
            f"({_first_line(error)}); export it again"
        ) from error
    if meta.get("format") != CHECKPOINT_FORMAT or "config" not in meta:
        raise CheckpointError(
            f"{path} has no dit-mini config in its metadata; export weights with "
            "`dit_mini.train.checkpoint.export_weights` so the model can be rebuilt"
        )
    return json.loads(meta["config"]), tensors


def read_config(path: str | Path) -> dict:
    """The run config stored in a .pt checkpoint or a .safetensors export."""
    path = Path(path)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise FileNotFoundError(f"no weights file at {path}; check the path")
        return _read_safetensors(path)[0]
    return load_checkpoint(path)["config"]


def load_model(
    path: str | Path, which: str = "ema", device: str | torch.device = "cpu"
) -> nn.Module:
    """Rebuild a model, in eval mode, from a checkpoint (`which` 'ema' or 'model') or an export."""
    path = Path(path)
    if which not in ("ema", "model"):
        raise ValueError(f"which must be 'ema' or 'model'; got {which!r}")
    if path.suffix == ".safetensors":
        config, weights = _read_safetensors(path) if path.is_file() else (read_config(path), None)
    else:
        state = load_checkpoint(path)
        config, weights = state["config"], state[which]
    model = build_model(config["model"])
    model.load_state_dict(weights)
    return model.to(device).eval()
