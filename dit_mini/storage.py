"""Files that survive crashes and say what they hold.

- `atomic_write`: every file the package writes (checkpoints, exported models, sample grids, data
  caches) goes to a temporary file beside its target, is flushed to disk, then renamed into place.
  A rename within one file system is atomic, so a crash mid-write leaves the previous file intact.
  Any failure of the writer (torch.save reports a full disk as a RuntimeError, not an OSError)
  removes the temporary file and becomes a `WriteError` that names the target and what was kept.
- Training checkpoints: one plain dict laid out like the reference DiT's (`model`, `ema`, `opt`,
  `step`, `config`) plus what exact resume needs (`rng`, `history`), written with torch.save and
  read with `weights_only=True`, which runs no code from the file; every part (model, EMA,
  optimizer, generator states, loss history, step, config) carries its own checksum, verified on
  load, so a flipped bit anywhere is refused with the name of the part.
- Model files: safetensors (tensors only, nothing executable) with one small JSON header in the
  safetensors metadata: `{"format": "dit-mini", "version": 1, "model": {"kind", ...config}, "extra",
  "sha256"}`. The checksum covers every tensor's name, dtype, shape and bytes; it is verified on
  load, so a file with flipped bytes is refused instead of silently giving wrong weights.

Models are saved and loaded by kind through `dit_mini.registry`, which builds on this.
"""

from __future__ import annotations

import contextlib
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
    "WriteError",
    "UPGRADE_COMMAND",
    "cache_dir",
    "atomic_write",
    "check_writable",
    "check_output_file",
    "remove_stale_temporaries",
    "tensor_checksum",
    "part_checksums",
    "CHECKPOINT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "save_tensors",
    "read_header",
    "load_tensors",
    "sniff_format",
]

FORMAT = "dit-mini"
VERSION = 1
HEADER_KEY = "dit_mini"  # the safetensors metadata key that holds the JSON header
TMP_MARK = ".tmp-"  # temporary files are named .<name>.tmp-<pid>
# 3: every part carries a checksum; 2: model and EMA only; 1: none. All three are read.
CHECKPOINT_VERSION = 3
CHECKPOINT_KEYS = ("model", "ema", "opt", "step", "config", "rng", "history")
# The parts of a checkpoint that carry a checksum (version 3), with the words an error uses.
CHECKSUMMED_PARTS = {
    "model": "model weights",
    "ema": "EMA weights",
    "opt": "optimizer state",
    "rng": "random-generator states",
    "history": "loss history",
    "step": "step count",
    "config": "run config",
    "scaler": "gradient-scaler state",
}
UPGRADE_COMMAND = "python -m dit_mini.registry --upgrade"  # rewrites files of dit-mini < 0.2


class CheckpointError(ValueError):
    """A model file or training checkpoint that cannot be used: missing, truncated, corrupted,
    foreign, or from another run's config. The message names the file and what to do."""


class WriteError(CheckpointError):
    """A file could not be written (full disk, read-only folder, a folder in the way, ...). The
    target is untouched: its previous version, if any, is still there. `disk_full` says which."""

    def __init__(self, message: str, path: Path, disk_full: bool = False):
        super().__init__(message)
        self.path, self.disk_full = path, disk_full


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def cache_dir() -> Path:
    """The folder for downloads and generated data: $DIT_MINI_CACHE, else ~/.cache/dit_mini."""
    return Path(os.environ.get("DIT_MINI_CACHE") or Path.home() / ".cache" / "dit_mini")


def _disk_full(error: BaseException, folder: Path) -> bool:
    """Whether a failed write ran out of disk: ENOSPC/EDQUOT, or for an error without an errno
    (torch.save's RuntimeError) its wording ("unexpected pos", "file write failed") or a folder
    with (almost) no free space left."""
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno in (errno.ENOSPC, errno.EDQUOT)  # else: read-only, no access, ...
    if any(w in str(error) for w in ("No space left", "unexpected pos", "file write failed")):
        return True
    try:
        return shutil.disk_usage(folder).free < 2**20
    except OSError:
        return False


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write(f)` on a temporary binary file beside `path`, fsync it, rename it to `path`.

    On any failure of the writer, the temporary file is removed and `path` is untouched. A
    failure to write (full disk, read-only folder, a folder named like the file, or any error
    of the writer: torch.save reports a full disk as a RuntimeError) is raised as a WriteError
    that names `path`, the cause and what was kept; Ctrl-C passes through unchanged.
    """
    path = Path(path)
    if path.is_dir():
        raise WriteError(
            f"cannot write {path}: it is a folder; give a file name (e.g. {path / 'out'}"
            f"{path.suffix or '.pt'}) or remove the folder", path
        )  # fmt: skip
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as error:
        kept = f"the previous {path.name} is intact" if path.is_file() else "nothing was written"
        if _disk_full(error, path.parent):
            raise WriteError(
                f"the disk is full: could not write {path}; {kept}. Free some disk space (or "
                "choose a folder on another disk) and try again", path, disk_full=True
            ) from error  # fmt: skip
        cause = error.strerror if isinstance(error, OSError) and error.strerror else None
        raise WriteError(
            f"cannot write {path} ({cause or _first_line(error)}); {kept}. Choose a writable "
            "folder with free space", path
        ) from error  # fmt: skip
    finally:
        with contextlib.suppress(OSError):  # e.g. a read-only folder, where nothing was made
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


def check_output_file(path: str | Path, suffixes: tuple[str, ...], what: str) -> Path:
    """Fail now, naming the fix, when `path` cannot become a `what` file: no or another
    extension than `suffixes`, an existing folder of that name, or an unwritable folder. Run it
    before the expensive work (sampling, training), not after."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        shown = repr(path.suffix) if path.suffix else "no extension"
        raise ValueError(
            f"{path} has {shown}; a {what} needs one of {', '.join(suffixes)} (e.g. "
            f"{path.with_suffix(suffixes[0]).name})"
        )
    if path.is_dir():
        raise ValueError(
            f"{path} is a folder; give a file name such as {path / ('out' + suffixes[0])}"
        )
    check_writable(path.parent)
    return path


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


def sniff_format(path: str | Path) -> str | None:
    """'safetensors' or 'torch' (a torch.save zip) from a file's first bytes, else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return None
    if head[:4] == b"PK\x03\x04":
        return "torch"
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 2**27:
        return "safetensors"
    return None


def _misnamed(path: Path) -> str | None:
    """A sentence for a file whose content does not match its extension, else None."""
    kind = sniff_format(path)
    if kind == "safetensors" and path.suffix != ".safetensors":
        return (
            f"{path} is a safetensors model file, but its extension {path.suffix or '(none)'!r} "
            f"says training checkpoint: rename it to {path.with_suffix('.safetensors').name}"
        )
    if kind == "torch" and path.suffix == ".safetensors":
        return (
            f"{path} is a PyTorch training checkpoint, but its extension '.safetensors' says "
            f"model file: rename it to {path.with_suffix('.pt').name}"
        )
    return None


def _open(path: Path):
    if not path.is_file():
        raise CheckpointError(f"no model file at {path}; check the path")
    try:
        return safe_open(str(path), framework="pt")
    except Exception as error:  # safetensors raises its own error types
        if _misnamed(path):
            raise CheckpointError(_misnamed(path)) from error
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
            f"by a dit-mini older than 0.2 (convert it with `{UPGRADE_COMMAND} {path}`)"
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
    """The single checksum of version-2 checkpoints: model and EMA tensors only."""
    return tensor_checksum(
        {f"{part}.{k}": v for part in ("model", "ema") for k, v in state[part].items()}
    )


def _digest(obj, h) -> None:
    """Feed nested plain data (dicts, lists, tensors, numbers, strings) into the hash `h`."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(b"{")
        for key in sorted(obj, key=repr):
            h.update(repr(key).encode() + b":")
            _digest(obj[key], h)
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for item in obj:
            _digest(item, h)
        h.update(b"]")
    else:
        h.update(repr(obj).encode() + b",")


def part_checksums(state: dict) -> dict[str, str]:
    """sha256 of each checksummed part of a checkpoint state (model, ema, opt, rng, ...)."""
    sums = {}
    for part in CHECKSUMMED_PARTS:
        if part in state:
            h = hashlib.sha256()
            _digest(state[part], h)
            sums[part] = h.hexdigest()
    return sums


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write a training checkpoint atomically; `state` needs the keys of `CHECKPOINT_KEYS`."""
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise ValueError(f"checkpoint state lacks {missing}; it needs {list(CHECKPOINT_KEYS)}")
    full = {
        **state,
        "format": FORMAT,
        "version": CHECKPOINT_VERSION,
        "sha256": part_checksums(state),
    }
    return atomic_write(path, lambda f: torch.save(full, f))


def _verify(path: Path, state: dict) -> None:
    """Refuse a checkpoint whose parts do not match their checksums, naming the parts."""
    if state["version"] == 2 and _weights_checksum(state) != state.get("sha256"):
        bad = ["model weights or EMA weights"]
    elif state["version"] >= 3:
        saved = state.get("sha256")
        if not isinstance(saved, dict):
            bad = ["checksum table"]
        else:
            actual = part_checksums(state)
            bad = [CHECKSUMMED_PARTS[p] for p in actual if saved.get(p) != actual[p]]
            bad += [CHECKSUMMED_PARTS[p] for p in saved if p not in actual]
    else:
        return
    if bad:
        raise CheckpointError(
            f"{path} is corrupted: its {' and '.join(bad)} do not match the checksum saved with "
            "them, so resuming would silently diverge; resume from another copy of the file, "
            "or start the run again in a new folder"
        )


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
        if _misnamed(path):
            raise CheckpointError(_misnamed(path)) from error
        raise CheckpointError(
            f"{path} is not a dit-mini checkpoint: it holds data that safe (weights_only) "
            f"loading refuses or cannot parse ({_first_line(error)}); pass a file written by "
            "`dit-mini train`"
        ) from error
    except Exception as error:  # a damaged file can fail anywhere in the unpickler
        if _misnamed(path):
            raise CheckpointError(_misnamed(path)) from error
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
    _verify(path, state)
    return state
