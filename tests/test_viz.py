"""Image grids and loss curves."""

import numpy as np
import pytest
import torch
from PIL import Image

from dit_mini.viz import image_grid, save_image_grid, save_loss_curve, smooth, to_uint8


def test_to_uint8_maps_the_range_and_layout():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 2, 2).expand(1, 3, 2, 2)
    pixels = to_uint8(x)
    assert pixels.shape == (1, 2, 2, 3) and pixels.dtype == np.uint8
    assert pixels[0, :, :, 0].tolist() == [[0, 128], [255, 255]]  # clamped above 1


def test_grid_places_images_row_major_with_padding():
    images = torch.stack([torch.full((3, 4, 4), v) for v in (-1.0, 1.0, -1.0)])
    grid = image_grid(images, nrow=2, pad=1)
    assert grid.shape == (2 * 5 + 1, 2 * 5 + 1, 3)
    assert grid[1:5, 6:10].min() == 255 and grid[1:5, 1:5].max() == 0  # second image is white
    assert grid[6:10, 6:10].max() == 0  # the empty fourth cell stays black
    with pytest.raises(ValueError, match="non-empty"):
        image_grid(torch.zeros(0, 3, 4, 4))


def test_png_files(tmp_path):
    images = torch.rand(6, 3, 8, 8) * 2 - 1
    path = save_image_grid(images, tmp_path / "g.png", nrow=3, zoom=2, row_labels=["a", "b"])
    width, height = Image.open(path).size
    assert height == 2 * (16 + 2) + 2 and width > 3 * 18
    assert np.allclose(smooth([1, 3, 5, 7], 2), [1, 2, 4, 6])
    curve = save_loss_curve([1.0, 0.5, 0.25], tmp_path / "loss.png")
    assert Image.open(curve).size == (600, 350)
    with pytest.raises(ValueError, match="empty"):
        save_loss_curve([], tmp_path / "x.png")
