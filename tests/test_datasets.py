"""Tests for dit_mini.data.datasets: ImageDataset, CIFAR-10 from an offline archive, image
folders."""

import hashlib
import io
import pickle
import tarfile
from datetime import date

import numpy as np
import pytest
import torch
from PIL import Image

from dit_mini.data.datasets import (
    CIFAR10_CLASSES,
    ImageDataset,
    cache_dir,
    load_cifar10,
    load_dataset,
    load_image_folder,
)

PER_BATCH = 4


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIT_MINI_CACHE", str(tmp_path / "cache"))


def _batch(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"batch %d" % seed,
        b"labels": [(seed * PER_BATCH + i) % 10 for i in range(PER_BATCH)],
        b"data": rng.integers(0, 256, (PER_BATCH, 3072), dtype=np.uint8),
        b"filenames": [b"img%d.png" % i for i in range(PER_BATCH)],
    }


def _cifar_archive(path, evil: bool = False):
    """A tiny archive in CIFAR-10's layout; returns (file:// url, md5, batches by name)."""
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {name: _batch(i) for i, name in enumerate(names)}
    if evil:
        batches["data_batch_3"][b"labels"] = date(2020, 1, 1)
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in [*batches.items(), ("batches.meta", meta)]:
            blob = pickle.dumps(obj, protocol=2)  # the protocol of the real (Python 2) files
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path.as_uri(), hashlib.md5(path.read_bytes()).hexdigest(), batches


def test_image_dataset_basics():
    pixels = np.zeros((5, 4, 4, 3), np.uint8)
    pixels[1] = 255
    data = ImageDataset.from_uint8(pixels, [0, 1, 2, 1, 0], ("a", "b", "c"), list("vwxyz"))
    assert data.images.shape == (5, 3, 4, 4) and data.images.dtype == torch.float32
    assert data.images[0].eq(-1).all() and data.images[1].eq(1).all()
    image, label = data[1]
    assert image.shape == (3, 4, 4) and label == 1 and len(data) == 5 and data.num_classes == 3
    sub = data.subset(2)
    assert len(sub) == 2 and sub.captions == ["v", "w"] and torch.equal(sub.labels, data.labels[:2])
    with pytest.raises(ValueError, match="n=6"):
        data.subset(6)
    with pytest.raises(ValueError, match="captions"):
        ImageDataset(data.images, data.labels, data.classes, ["only one"])
    with pytest.raises(ValueError, match="labels"):
        ImageDataset(data.images, data.labels.int(), data.classes)


def test_cache_dir_follows_environment(tmp_path):
    assert cache_dir() == tmp_path / "cache"


def test_cifar10_offline_archive(tmp_path):
    url, md5, batches = _cifar_archive(tmp_path / "source.tar.gz")
    root = tmp_path / "cifar"
    train = load_cifar10(root=root, url=url, md5=md5)
    test = load_cifar10(root=root, train=False, url=url, md5=md5)
    assert train.images.shape == (5 * PER_BATCH, 3, 32, 32) and len(test) == PER_BATCH
    assert train.images.min() >= -1 and train.images.max() <= 1
    expected = sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    assert train.labels.tolist() == expected and test.labels.tolist() == [0, 1, 2, 3]
    raw = batches["data_batch_2"][b"data"][1].reshape(3, 32, 32)  # planes R, G, B, row-major
    torch.testing.assert_close(train.images[PER_BATCH + 1], torch.from_numpy(raw) / 127.5 - 1)
    assert train.classes == CIFAR10_CLASSES and (root / "cifar-10-python.tar.gz").exists()
    (tmp_path / "source.tar.gz").unlink()  # cached: no second download
    assert torch.equal(load_cifar10(root=root, url=url, md5=md5).images, train.images)
    assert torch.equal(load_dataset("cifar10", root=root, n=3).images, train.images[:3])


def test_cifar10_bad_checksum_names_file_and_fix(tmp_path):
    url, md5, _ = _cifar_archive(tmp_path / "source.tar.gz")
    with pytest.raises(ValueError, match=f"expected md5 {'0' * 32}, got {md5}.*delete"):
        load_cifar10(root=tmp_path / "cifar", url=url, md5="0" * 32)
    assert not (tmp_path / "cifar" / "cifar10-train.npz").exists()


def test_cifar10_refuses_foreign_objects(tmp_path):
    url, md5, _ = _cifar_archive(tmp_path / "source.tar.gz", evil=True)
    with pytest.raises(pickle.UnpicklingError, match="datetime.date"):
        load_cifar10(root=tmp_path / "cifar", url=url, md5=md5)


def test_cifar10_without_download(tmp_path):
    with pytest.raises(ValueError, match="download=True"):
        load_cifar10(root=tmp_path / "empty", download=False)


def _png(path, size, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_image_folder_classes_from_subfolders(tmp_path):
    _png(tmp_path / "imgs" / "dogs" / "a.png", (40, 40), (0, 0, 255))
    _png(tmp_path / "imgs" / "cats" / "deep" / "b.jpg", (20, 30), (255, 0, 0))
    wide = Image.new("RGB", (60, 40), (0, 255, 0))
    wide.paste((0, 0, 0), (0, 0, 10, 40))  # black strips outside the central square
    wide.paste((0, 0, 0), (50, 0, 60, 40))
    wide.save(tmp_path / "imgs" / "dogs" / "c.png")
    data = load_image_folder(tmp_path / "imgs", size=16)
    assert data.classes == ("cats", "dogs") and data.labels.tolist() == [0, 1, 1]
    assert data.images.shape == (3, 3, 16, 16)
    assert data.images[0, 0].mean() > 0.95 and data.images[0, 2].mean() < -0.95
    assert data.images[2, 1].min() > 0.95  # center crop removed the black strips


def test_image_folder_single_class(tmp_path):
    for i in range(3):
        _png(tmp_path / "flat" / f"{i}.png", (8, 8), (i * 80, 0, 0))
    data = load_image_folder(tmp_path / "flat")
    assert data.classes == ("flat",) and data.labels.tolist() == [0, 0, 0]
    assert data.images.shape == (3, 3, 32, 32)
    assert len(load_dataset(tmp_path / "flat", n=2)) == 2


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures")
    with pytest.raises(ValueError, match=r"no images found.*\.png"):
        load_image_folder(tmp_path / "empty")
    _png(tmp_path / "broken" / "ok.png", (8, 8), (0, 0, 0))
    (tmp_path / "broken" / "bad.png").write_bytes(b"not a picture")
    with pytest.raises(ValueError, match="bad.png"):
        load_image_folder(tmp_path / "broken")
    _png(tmp_path / "mixed" / "sub" / "a.png", (8, 8), (0, 0, 0))
    _png(tmp_path / "mixed" / "loose.png", (8, 8), (0, 0, 0))
    with pytest.raises(ValueError, match="loose.png"):
        load_image_folder(tmp_path / "mixed")


def test_load_dataset_relics_and_unknown_names():
    train = load_dataset("relics", n=20)
    test = load_dataset("relics", train=False, n=20)
    assert len(train) == 20 and train.captions is not None
    assert not torch.equal(train.images, test.images)
    assert torch.equal(load_dataset("relics", n=20).images, train.images)
    with pytest.raises(ValueError, match="relics, cifar10"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="size=64"):
        load_dataset("cifar10", size=64)
