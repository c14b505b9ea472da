"""Image datasets held in memory as tensors: relics, CIFAR-10 and any folder of pictures.

Every loader returns an `ImageDataset`: float32 images in [-1, 1] with shape (N, 3, H, W), int64
labels and the class names, small enough at 32 x 32 to index batches straight from memory (no
DataLoader). CIFAR-10 (Krizhevsky, 2009) is downloaded once, checked against its published MD5,
decoded with a restricted unpickler (its batches are Python pickles, and this package never
unpickles arbitrary objects) and cached as a plain .npz.

Used by every training notebook; introduced in notebook 00 (bonfire).
"""

from __future__ import annotations

import hashlib
import http.client
import pickle
import tarfile
import urllib.request
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ..storage import atomic_write, cache_dir
from .image_dataset import ImageDataset
from .relics import TEST_SEED_OFFSET, make_relics

__all__ = [
    "CIFAR10_URL",
    "CIFAR10_MD5",
    "CIFAR10_CLASSES",
    "IMAGE_EXTENSIONS",
    "load_cifar10",
    "load_image_folder",
    "load_dataset",
    "DATASETS",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR10_SIZE = 32
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
DATASETS = ("relics", "cifar10")


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, ints and numpy arrays; refuses every other global."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} from a CIFAR batch")
        if module.startswith("numpy.") and name in ("_reconstruct", "scalar"):
            module = "numpy._core.multiarray" if hasattr(np, "_core") else "numpy.core.multiarray"
        return super().find_class(module, name)


def _read_batch(tar: tarfile.TarFile, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch from the archive -> (pixels (N, 32, 32, 3) uint8, labels (N,))."""
    member = tar.extractfile(f"cifar-10-batches-py/{name}")
    if member is None:
        raise ValueError(f"the CIFAR-10 archive has no file cifar-10-batches-py/{name}")
    batch = _CifarUnpickler(member, encoding="bytes").load()
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, CIFAR10_SIZE, CIFAR10_SIZE)
    return data.transpose(0, 2, 3, 1), np.asarray(batch[b"labels"], dtype=np.int64)


def _download(url: str, path: Path, md5: str) -> None:
    """Fetch `url` to `path` (atomically) unless it is there, then verify its MD5."""
    if not path.exists():
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                payload = response.read()
        except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
            reason = getattr(error, "reason", None) or error
            raise ValueError(
                f"cannot download {url}: a network problem ({reason}); check the internet "
                f"connection (or proxy), or fetch the file by hand and put it at {path}"
            ) from error
        atomic_write(path, lambda f: f.write(payload))
    actual = _md5(path)
    if actual != md5:
        raise ValueError(
            f"checksum mismatch for {path}: expected md5 {md5}, got {actual}; "
            "the download is corrupt or incomplete: delete the file and try again"
        )


def load_cifar10(
    root: str | Path | None = None,
    train: bool = True,
    download: bool = True,
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
) -> ImageDataset:
    """CIFAR-10's 50,000 training or 10,000 test images, downloaded and cached under `root`.

    root defaults to cache_dir() / "cifar10". The decoded split is cached as a .npz, so later
    calls read neither the network nor the archive.

    Shapes: images (N, 3, 32, 32) in [-1, 1], labels (N,) in [0, 10).
    """
    root = Path(root) if root is not None else cache_dir() / "cifar10"
    split = root / ("cifar10-train.npz" if train else "cifar10-test.npz")
    if not split.exists():
        archive = root / "cifar-10-python.tar.gz"
        if not archive.exists() and not download:
            raise ValueError(f"CIFAR-10 is not in {root}; call with download=True to fetch it")
        _download(url, archive, md5)
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        with tarfile.open(archive, "r:gz") as tar:
            parts = [_read_batch(tar, name) for name in names]
        pixels = np.concatenate([p for p, _ in parts])
        labels = np.concatenate([y for _, y in parts])
        atomic_write(split, lambda f: np.savez(f, pixels=pixels, labels=labels))
    with np.load(split, allow_pickle=False) as z:
        return ImageDataset.from_uint8(z["pixels"], z["labels"], CIFAR10_CLASSES)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB of any mode: 16- and 32-bit grey scaled to 0..255 (a plain convert would clip
    them to white), palette expanded, transparency composited over white (how a viewer shows
    it)."""
    if image.mode.startswith("I") or image.mode == "F":
        a = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or a.max() > 255 else 255.0
        if image.mode == "F" and a.max() <= 1.0:
            top = 1.0
        grey = np.clip(np.rint(a / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _square(image: Image.Image, size: int) -> np.ndarray:
    """Center-crop to a square, resize to size x size (bicubic), return (size, size, 3) uint8."""
    w, h = image.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    image = _to_rgb(image).crop(box).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def _find_images(path: Path) -> tuple[list[Path], list[str]]:
    """Image files under `path` and their class names (first subfolder, or '' for loose files)."""
    files = sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise ValueError(
            f"no images found in {path}; accepted extensions: {', '.join(IMAGE_EXTENSIONS)}"
        )
    names = [p.relative_to(path).parts[0] if p.parent != path else "" for p in files]
    if "" in names and any(names):
        loose = next(p for p, c in zip(files, names) if c == "")
        raise ValueError(
            f"{path} mixes images in subfolders (classes) with loose images such as {loose.name}; "
            "move the loose images into a subfolder"
        )
    return files, names


def load_image_folder(path: str | Path, size: int = 32) -> ImageDataset:
    """Every picture under `path` (searched recursively), center-cropped and resized to size.

    The class of an image is the name of its top-level subfolder; a folder without subfolders
    is one class named after the folder.

    Shapes: images (N, 3, size, size) in [-1, 1], labels (N,).
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"image folder {path} does not exist; give an existing folder of pictures")
    if size < 1:
        raise ValueError(f"size={size} must be a positive number of pixels")
    files, names = _find_images(path)
    classes = sorted(set(names)) if any(names) else [path.name or "images"]
    index = {c: i for i, c in enumerate(sorted(set(names)))}
    pixels, transparent = [], []
    for file in files:
        try:
            with Image.open(file) as image:
                if _has_alpha(image):
                    transparent.append(file)
                pixels.append(_square(image, size))
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read image {file}: {error}; delete or replace it") from error
    if transparent:  # one note for the whole folder, not one per image
        warnings.warn(
            f"{len(transparent)} of {len(files)} images in {path} have transparency (e.g. "
            f"{transparent[0].name}); it was composited over white, as a viewer shows it",
            stacklevel=2,
        )
    return ImageDataset.from_uint8(np.stack(pixels), [index[c] for c in names], classes)


def load_dataset(
    name_or_path: str | Path,
    train: bool = True,
    n: int | None = None,
    seed: int = 0,
    size: int = 32,
    root: str | Path | None = None,
) -> ImageDataset:
    """'relics', 'cifar10' or a folder of images, optionally cut to its first n images.

    Relics are generated: the training split from `seed`, the test split from
    `seed + relics.TEST_SEED_OFFSET`; n defaults to CIFAR-10's 50,000 / 10,000. CIFAR-10 comes
    only at 32 x 32; `root` is its download folder. `seed` only affects relics.

    Shapes: images (N, 3, size, size) in [-1, 1], labels (N,).
    """
    if name_or_path == "relics":
        n = n if n is not None else (50_000 if train else 10_000)
        return make_relics(n, seed=seed if train else seed + TEST_SEED_OFFSET, size=size)
    if name_or_path == "cifar10":
        if size != CIFAR10_SIZE:
            raise ValueError(f"CIFAR-10 images are 32 x 32, not size={size}; use size=32")
        data = load_cifar10(root=root, train=train)
    elif Path(name_or_path).is_dir():
        data = load_image_folder(name_or_path, size=size)
    else:
        raise ValueError(
            f"unknown dataset {name_or_path!r}: choose one of {', '.join(DATASETS)} "
            "or give the path of an existing folder of images"
        )
    return data if n is None else data.subset(n)
