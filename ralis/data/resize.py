"""Bringing samples of any size to the working resolution: stretch, crop or tile.

* ``stretch`` (the built-in readers and the default): resize width and height independently;
  images whose aspect ratio differs from the working resolution are distorted.
* ``crop``: scale so that the image covers the working size (the short side fits), then cut the
  centre; nothing is distorted, the borders of the long side are lost.
* ``tile``: no scaling; every image is cut into working-size tiles on a grid from the top-left
  corner (the remainder at the right and bottom that does not fill a tile is dropped), and each
  tile is a sample of its own. Readers that support it (``folder``) list the tiles themselves;
  :func:`tile_grid` and :func:`cut_tile` do the geometry.

Images are resized bilinearly, masks with nearest neighbour (class ids are never blended; done in
numpy, so any integer dtype and id survive).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

RESIZE_MODES = ("stretch", "crop", "tile")


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each of ``n_out`` output pixels for a nearest-neighbour resize of
    ``n_in`` pixels: the pixel under each output pixel's centre, accumulated the way PIL's
    ``NEAREST`` does, so masks stay aligned with the bilinearly resized image."""
    scale = n_in / n_out
    centres = np.cumsum(np.concatenate([[scale / 2], np.full(n_out - 1, scale)]))
    return np.minimum(centres.astype(np.intp), n_in - 1)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an integer ``[H, W]`` mask to ``size = (h, w)``, in numpy: any
    integer dtype and value (16-bit ids, a large ignore index) is kept as it is."""
    rows = nearest_indices(mask.shape[0], size[0])
    cols = nearest_indices(mask.shape[1], size[1])
    return mask[rows[:, None], cols[None, :]]


def resize_pair(
    image: np.ndarray, mask: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Resize uint8 ``[H, W, 3]`` (bilinear) and integer ``[H, W]`` (nearest, dtype kept) to
    ``size = (h, w)``."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image, mask
    image = np.array(Image.fromarray(image).resize((w, h), Image.BILINEAR))
    return image, resize_mask(mask, (h, w))


def crop_geometry(height: int, width: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """For ``crop``: ``(scaled_h, scaled_w, top, left)``, the smallest scaling of the image that
    covers ``size`` (aspect ratio kept) and the offset of the centred ``size`` window in it."""
    th, tw = size
    scale = max(th / height, tw / width)
    sh, sw = max(th, round(height * scale)), max(tw, round(width * scale))
    return sh, sw, (sh - th) // 2, (sw - tw) // 2


def fit_to_size(
    image: np.ndarray, mask: np.ndarray, size: tuple[int, int], mode: str = "stretch"
) -> tuple[np.ndarray, np.ndarray]:
    """Bring one sample to ``size = (h, w)`` by ``stretch`` or ``crop`` (tiles are cut by the
    reader, so a ``tile`` sample is already at ``size`` and only stretched if it is not)."""
    if mode == "crop":
        sh, sw, top, left = crop_geometry(image.shape[0], image.shape[1], size)
        image, mask = resize_pair(image, mask, (sh, sw))
        window = (slice(top, top + size[0]), slice(left, left + size[1]))
        return image[window], mask[window]
    return resize_pair(image, mask, size)


def tile_grid(height: int, width: int, size: tuple[int, int]) -> tuple[int, int]:
    """Number of whole ``size`` tiles ``(rows, cols)`` that fit in a ``height x width`` image."""
    return height // size[0], width // size[1]


def cut_tile(array: np.ndarray, row: int, col: int, size: tuple[int, int]) -> np.ndarray:
    """The tile at grid position ``(row, col)`` of an ``[H, W, ...]`` array."""
    th, tw = size
    return array[row * th:(row + 1) * th, col * tw:(col + 1) * tw]
