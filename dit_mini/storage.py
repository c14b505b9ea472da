"""Files that survive crashes and say what they hold.

- `atomic_write`: every file the package writes (checkpoints, exported models, data caches) goes
  to a temporary file beside its target, is flushed to disk, then renamed into place. A rename
  within one file system is atomic, so a crash mid-write leaves the previous file intact, and a
  failed write removes its temporary file.
- Training checkpoints: one plain dict laid out like the reference DiT's (`model`, `ema`, `opt`,
  `step`, `config`) plus what exact resume needs (`rng`, `history`), written with torch.save and
  read with `weights_only=True`, which runs no code from the file; a checksum of the model and
  EMA tensors is verified on load.
- Model files: safetensors (tensors only, nothing executable) with one small JSON header in the
  safetensors metadata: `{"format": "dit-mini", "version": 1, "model": {"kind", ...config}, "extra",
  "sha256"}`. The checksum covers every tensor's name, dtype, shape and bytes; it is verified on
  load, so a file with flipped bytes is refused instead of silently giving wrong weights.

Models are saved and loaded by kind through `dit_mini.models.registry`, which builds on this.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

__all__ = [
    "FORMAT",
    "VERSION",
    "HEADER_KEY",
    "CheckpointError",
    "cache_dir",
    "atomic_write",
    "check_writable",
    "remove_stale_temporaries",
    "tensor_checksum",
    "CHECKPOINT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "save_tensors",
    "read_header",
    "load_tensors",
]

FORMAT = "dit-mini"
VERSION = 1
HEADER_KEY = "dit_mini"  # the safetensors metadata key that holds the JSON header
TMP_MARK = ".tmp-"  # temporary files are named .<name>.tmp-<pid>
CHECKPOINT_VERSION = 2  # 2: model and EMA tensors carry a checksum (1: none, still read)
CHECKPOINT_KEYS = ("model", "ema", "opt", "step", "config", "rng", "history")


class CheckpointError(ValueError):
    """A model file or training checkpoint that cannot be used: missing, truncated, corrupted,
    foreign, or from another run's config. The message names the file and what to do."""


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def cache_dir() -> Path:
    """The folder for downloads and generated data: $DIT_MINI_CACHE, else ~/.cache/dit_mini."""
    return Path(os.environ.get("DIT_MINI_CACHE") or Path.home() / ".cache" / "dit_mini")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write(f)` on a temporary binary file beside `path`, fsync it, rename it to `path`.

    On any failure (a full disk, Ctrl-C) the temporary file is removed and `path` is untouched;
    a full disk is reported as a CheckpointError that says the previous file survived.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        kept = f"the previous {path.name} is intact" if path.exists() else "nothing was written"
        raise CheckpointError(
            f"the disk is full: could not write {path}; {kept}. Free some disk and resume"
        ) from error
    finally:
        tmp.unlink(missing_ok=True)
    return path


def check_writable(folder: str | Path, need_bytes: int = 0) -> None:
    """Fail now, with the fix, when `folder` cannot take a file of `need_bytes` (read-only, not
    a folder, or too little free disk), rather than after a long run at its first save."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder} is a file, not a folder; choose another output folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test{TMP_MARK}{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise CheckpointError(
            f"cannot write in {folder} ({error.strerror}); choose a writable output folder"
        ) from error
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise CheckpointError(
            f"{folder} has {free / 2**20:.0f} MiB free but one checkpoint needs about "
            f"{need_bytes / 2**20:.0f} MiB; free some disk or choose another output folder"
        )


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete temporary files that a killed writer (SIGKILL, power loss) left in `folder`.

    Only files of processes that are no longer running are removed. Returns what was removed.
    """
    removed = []
    for tmp in Path(folder).glob(f".*{TMP_MARK}*"):
        pid = tmp.name.rsplit(TMP_MARK, 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in sorted name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], header: dict) -> Path:
    """Write `tensors` as safetensors with `header` (plain JSON data) and their checksum."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    full = {"format": FORMAT, "version": VERSION, **header, "sha256": tensor_checksum(tensors)}
    meta = {HEADER_KEY: json.dumps(full)}
    return atomic_write(path, lambda f: f.write(safetensors_bytes(tensors, metadata=meta)))


def _open(path: Path):
    if not path.is_file():
        raise CheckpointError(f"no model file at {path}; check the path")
    try:
        return safe_open(str(path), framework="pt")
    except Exception as error:  # safetensors raises its own error types
        raise CheckpointError(
            f"cannot read {path}: the safetensors file is truncated or corrupt "
            f"({_first_line(error)}); export or download it again"
        ) from error


def read_header(path: str | Path) -> dict:
    """The JSON header of a model file, without reading its tensors."""
    path = Path(path)
    with _open(path) as f:
        meta = f.metadata() or {}
    if HEADER_KEY not in meta:
        raise CheckpointError(
            f"{path} has no dit-mini header: it was not written by dit-mini's save_model, or "
            "by a dit-mini older than 0.2 (convert it with "
            "`python -m dit_mini.models.registry --upgrade FILE`)"
        )
    header = json.loads(meta[HEADER_KEY])
    if header.get("format") != FORMAT or header.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path} is a {header.get('format')!r} file of version {header.get('version')}; "
            f"this dit-mini reads {FORMAT!r} up to version {VERSION}: upgrade dit-mini"
        )
    return header


def load_tensors(path: str | Path, device: str | torch.device = "cpu"):
    """(header, tensors) of a model file, after checking the tensors against the checksum."""
    path = Path(path)
    header = read_header(path)
    try:
        with _open(path) as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except CheckpointError:
        raise
    except Exception as error:
        raise CheckpointError(
            f"cannot read the tensors of {path} ({_first_line(error)}); the file is corrupt: "
            "export or download it again"
        ) from error
    if tensor_checksum(tensors) != header.get("sha256"):
        raise CheckpointError(
            f"{path} is corrupted: its tensors do not match the checksum in its header; "
            "export or download it again"
        )
    return header, {k: v.to(device) for k, v in tensors.items()}


# ----- training checkpoints (.pt) -----


def _weights_checksum(state: dict) -> str:
    return tensor_checksum(
        {f"{part}.{k}": v for part in ("model", "ema") for k, v in state[part].items()}
    )


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write a training checkpoint atomically; `state` needs the keys of `CHECKPOINT_KEYS`."""
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise ValueError(f"checkpoint state lacks {missing}; it needs {list(CHECKPOINT_KEYS)}")
    full = {
        **state,
        "format": FORMAT,
        "version": CHECKPOINT_VERSION,
        "sha256": _weights_checksum(state),
    }
    return atomic_write(path, lambda f: torch.save(full, f))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by `save_checkpoint`, with weights_only loading only.

    Raises CheckpointError for a missing, truncated, corrupted or foreign file; each message
    names the file and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
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
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a PyTorch file but not a dit-mini checkpoint (no format tag "
            f"{FORMAT!r}); pass a file written by `dit-mini train`"
        )
    missing = [k for k in (*CHECKPOINT_KEYS, "version") if k not in state]
    if missing or state["version"] > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {state.get('version')} and lacks {missing}; this "
            f"dit-mini reads versions up to {CHECKPOINT_VERSION}: update the package or retrain"
        )
    if state["version"] >= 2 and _weights_checksum(state) != state.get("sha256"):
        raise CheckpointError(
            f"{path} is corrupted: its model and EMA weights do not match the checksum saved "
            "with them; resume from another copy or retrain"
        )
    return state
