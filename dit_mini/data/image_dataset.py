"""The one dataset type of the package: images, labels, class names and captions, in memory.

Relics, CIFAR-10 and image folders all load into an `ImageDataset` (`dit_mini.data.datasets`),
so the trainer, the samplers' tests and the notebooks handle them alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["ImageDataset", "as_images"]


@dataclass
class ImageDataset:
    """Images, labels, class names and (optionally) one caption per image, all in memory.

    Shapes: images (N, 3, H, W) float32 in [-1, 1], labels (N,) int64.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    captions: list[str] | None = None

    def __post_init__(self):
        if self.images.dim() != 4 or self.images.dtype != torch.float32:
            raise ValueError(
                "images must be float32 of shape (N, C, H, W); "
                f"got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],) or self.labels.dtype != torch.int64:
            raise ValueError(
                f"labels must be int64 of shape ({self.images.shape[0]},); "
                f"got {self.labels.dtype} {tuple(self.labels.shape)}"
            )
        if self.captions is not None and len(self.captions) != len(self):
            raise ValueError(
                f"got {len(self.captions)} captions for {len(self)} images; need one each"
            )

    @classmethod
    def from_uint8(cls, pixels: np.ndarray, labels, classes, captions=None) -> ImageDataset:
        """Build from uint8 pixels in (N, H, W, 3) layout, mapping 0..255 to -1..1.

        Shapes: pixels (N, H, W, 3) uint8, labels (N,) -> images (N, 3, H, W).
        """
        x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2)  # (N, 3, H, W)
        images = x.float().div_(127.5).sub_(1.0).contiguous()
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        return cls(images, labels, tuple(classes), None if captions is None else list(captions))

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.images[i], self.labels[i]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, n: int) -> ImageDataset:
        """The first n images (with their labels and captions)."""
        if not 0 < n <= len(self):
            raise ValueError(f"subset size n={n} must lie in [1, {len(self)}] (the dataset size)")
        captions = None if self.captions is None else self.captions[:n]
        return ImageDataset(self.images[:n], self.labels[:n], self.classes, captions)


def as_images(data) -> torch.Tensor:
    """The image tensor of an ImageDataset, or `data` itself when it is an image batch.

    Shapes: -> (N, C, H, W) with N >= 1; anything else is a ValueError naming what came in.
    """
    images = data.images if hasattr(data, "images") else data
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[0] < 1:
        raise ValueError(
            "data must be an ImageDataset or an (N, C, H, W) tensor with N >= 1; got "
            f"{type(images).__name__} {tuple(getattr(images, 'shape', ()))}"
        )
    return images
