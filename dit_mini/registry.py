"""One registry of the package's model kinds, and one way to save and load any of them.

A kind names a network class and its frozen config dataclass ('dit' -> DiT, DiTConfig; ...).
`save_model` writes a model file (safetensors + JSON header with the kind, the config, free-form
`extra` data such as a training card, and a checksum: `dit_mini.storage`); `load_model` rebuilds
the network from such a file, or from the EMA (or raw) weights of a training checkpoint. Every
shipped model in assets/ is such a file; `dit_mini.models.pretrained.load_pretrained` finds them
by name.

    python -m dit_mini.registry --upgrade FILE...   # rewrite files of dit-mini < 0.2 in place
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from .metrics.classifier import ClassifierConfig, RelicClassifier
from .metrics.clip_checker import CheckerConfig, ClipChecker
from .models.dit import DiT, DiTConfig
from .models.unet import UNet, UNetConfig
from .models.vae import VAE, VAEConfig
from .models.video import VideoDiT, VideoDiTConfig
from .storage import CheckpointError, load_checkpoint, load_tensors, read_header, save_tensors

__all__ = [
    "MODEL_KINDS",
    "kind_of",
    "describe",
    "build_model",
    "save_model",
    "read_config",
    "load_model",
    "upgrade_legacy_file",
    "RENAMED_FIELDS",
    "with_current_names",
]

# kind -> (network class, config class); the kind is stored in every model file and checkpoint.
MODEL_KINDS: dict[str, tuple[type[nn.Module], type]] = {
    "dit": (DiT, DiTConfig),
    "unet": (UNet, UNetConfig),
    "vae": (VAE, VAEConfig),
    "video-dit": (VideoDiT, VideoDiTConfig),
    "relic-classifier": (RelicClassifier, ClassifierConfig),
    "clip-checker": (ClipChecker, CheckerConfig),
}

# Config fields renamed since files were written: {old name: current name}. Files and checkpoints
# that hold the old names still load; the label dropout has one name everywhere.
RENAMED_FIELDS = {"cfg_dropout": "class_dropout_prob", "caption_dropout": "class_dropout_prob"}


def with_current_names(run_config: dict) -> dict:
    """A stored config ({'model': {...}, 'train': {...}, ...} or one model config) with the old
    field names of `RENAMED_FIELDS` replaced by the current ones, one level of sections deep."""

    def rename(values: dict) -> dict:
        return {RENAMED_FIELDS.get(k, k): v for k, v in values.items()}

    out = rename(run_config)
    return {k: rename(v) if isinstance(v, dict) else v for k, v in out.items()}


def kind_of(model: nn.Module) -> str | None:
    """The registered kind of `model`, or None for a network the package does not know."""
    for kind, (cls, _) in MODEL_KINDS.items():
        if type(model) is cls:
            return kind
    return None


def _plain(obj):
    """Tuples to lists and so on: the form a config takes after a trip through JSON."""
    return json.loads(json.dumps(obj))


def describe(model: nn.Module) -> dict:
    """{'kind': ..., **config fields} as plain JSON data, for checkpoints and model files."""
    kind = kind_of(model)
    if kind is None:
        known = ", ".join(cls.__name__ for cls, _ in MODEL_KINDS.values())
        raise ValueError(f"cannot describe a {type(model).__name__}; registered models: {known}")
    return _plain({"kind": kind, **asdict(model.config)})


def _config(config_cls: type, values: dict):
    """A config dataclass from JSON values: lists become tuples, unknown keys are refused."""
    values = {RENAMED_FIELDS.get(k, k): v for k, v in values.items()}
    names = {f.name for f in fields(config_cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise CheckpointError(
            f"{config_cls.__name__} has no field(s) {unknown}: the file was written by a newer "
            "dit-mini; upgrade the package"
        )
    return config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def build_model(description: dict) -> nn.Module:
    """An untrained network from `describe`'s output ({'kind': ..., **config})."""
    values = dict(description)
    kind = values.pop("kind", None)
    if kind not in MODEL_KINDS:
        raise CheckpointError(f"unknown model kind {kind!r}; known kinds: {sorted(MODEL_KINDS)}")
    cls, config_cls = MODEL_KINDS[kind]
    return cls(_config(config_cls, values))


def save_model(
    model: nn.Module, path: str | Path, extra: dict | None = None, dtype: torch.dtype | None = None
) -> Path:
    """Write `model` (its kind, config and weights) and `extra` (plain data) as a model file.

    `dtype` (e.g. torch.float16) stores floating-point weights smaller; loading casts them back
    to float32. Written atomically; the header carries a checksum of the tensors.
    """
    tensors = {
        k: v.to(dtype) if dtype is not None and v.is_floating_point() else v
        for k, v in model.state_dict().items()
    }
    header = {"model": describe(model), "extra": _plain(extra or {})}
    return save_tensors(path, tensors, header)


def read_config(path: str | Path) -> dict:
    """What a model file or training checkpoint says about itself, without building the model:
    {'model': {'kind', ...config}, ...} plus the run config (e.g. 'train', 'diffusion') or the
    card saved with it."""
    path = Path(path)
    if path.suffix == ".safetensors":
        header = read_header(path)
        return with_current_names({"model": header["model"], **header.get("extra", {})})
    return with_current_names(load_checkpoint(path)["config"])


def load_model(
    path: str | Path, device: str | torch.device = "cpu", which: str = "ema"
) -> nn.Module:
    """Rebuild a model, in eval mode and float32, from a model file (.safetensors, checksum
    verified) or a training checkpoint (.pt, read with weights_only; `which` 'ema' or 'model').
    """
    path = Path(path)
    if which not in ("ema", "model"):
        raise ValueError(f"which must be 'ema' or 'model'; got {which!r}")
    if path.suffix == ".safetensors":
        header, weights = load_tensors(path)
        description = header["model"]
    else:
        state = load_checkpoint(path)
        description, weights = state["config"].get("model"), state[which]
        if not isinstance(description, dict) or description.get("kind") not in MODEL_KINDS:
            raise CheckpointError(
                f"{path} holds a network the package cannot rebuild "
                f"({description!r}); load it into your own module with "
                "dit_mini.storage.load_checkpoint"
            )
    model = build_model(description)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(
            f"the weights in {path} do not fit its {description['kind']} config "
            f"({str(error).splitlines()[0]}); the file is damaged or hand-edited"
        ) from error
    return model.to(device).eval()


# ----- files written before the header existed (dit-mini < 0.2) -----


def _legacy_description(meta: dict) -> tuple[dict, dict]:
    """(model description, extra) from the metadata layouts of dit-mini < 0.2."""
    config = json.loads(meta["config"])
    if "card" in meta:  # save_classifier / save_checker: {"config": config, "card": {...}}
        kind = "relic-classifier" if "num_classes" in config else "clip-checker"
        return {"kind": kind, **config}, {"card": json.loads(meta["card"])}
    if "video_dit" in config:  # the video DiT's export: {"video_dit": config, ...}
        rest = {k: v for k, v in config.items() if k != "video_dit"}
        return {"kind": "video-dit", **config["video_dit"]}, rest
    rest = {k: v for k, v in config.items() if k != "model"}
    return config["model"], rest  # export_weights: {"model": {"kind", ...}, ...run config}


def upgrade_legacy_file(path: str | Path) -> Path:
    """Rewrite a model file of dit-mini < 0.2 in the current format, tensors unchanged."""
    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if "dit_mini" in meta:
        return path  # already current
    if "config" not in meta:
        raise CheckpointError(f"{path} was not written by dit-mini (no config in its metadata)")
    description, extra = _legacy_description(meta)
    build_model(description).load_state_dict({k: v.float() for k, v in tensors.items()})
    return save_tensors(path, tensors, {"model": description, "extra": extra})


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Upgrade model files of dit-mini < 0.2 in place.")
    p.add_argument("--upgrade", nargs="+", required=True, metavar="FILE")
    for path in p.parse_args(argv).upgrade:
        print(f"{upgrade_legacy_file(path)}: current format")


if __name__ == "__main__":
    main()
