"""The project's images at the working resolution, in one file read lazily.

``cache/images-<H>x<W>.u8`` holds every image as uint8 ``[3, H, W]`` records, in the project's
image order, resized exactly as the dataset readers do (:func:`ralis.data.resize.resize_pair`:
bilinear, from the decoded RGB file). It is built once, when the project is created, with a
progress bar; an interrupted build continues where it stopped (an image counts as cached only
after its bytes are on disk). Reads go through :class:`ralis.files.arrays.LazyTensor` (``os.pread`` on the records
they need), so memory does not grow with the number of images.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ralis.data.camvid import read_rgb
from ralis.data.resize import resize_pair
from ralis.files.arrays import LazyTensor
from ralis.labelling.ledger import crash_point


def cache_path(root: Path, working: tuple[int, int]) -> Path:
    return Path(root) / "cache" / f"images-{working[0]}x{working[1]}.u8"


def working_image(path: Path, working: tuple[int, int]) -> np.ndarray:
    """One image file at the working resolution: uint8 ``[3, H, W]``."""
    rgb = read_rgb(path)
    if rgb.shape[:2] != tuple(working):
        rgb, _ = resize_pair(rgb, np.zeros(rgb.shape[:2], np.uint8), tuple(working))
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


class ImageCache:
    """Fixed-size records of ``num_images`` working-resolution images in one file."""

    def __init__(self, path: Path, num_images: int, working: tuple[int, int]) -> None:
        self.path = Path(path)
        self.num_images = num_images
        self.working = (int(working[0]), int(working[1]))
        self.record = 3 * self.working[0] * self.working[1]

    def build(self, files: Sequence[tuple[int, Path]], done: Callable[[list[int]], None],
              progress: Callable | None = None, batch: int = 64) -> None:
        """Write the records of ``files`` ``[(index, path)]``; ``done(indices)`` is called
        after each batch is on disk (the ledger marks them cached)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < self.num_images * self.record:
                os.ftruncate(fd, self.num_images * self.record)
            pending: list[int] = []
            items = progress(files) if progress else files
            for index, path in items:
                data = working_image(path, self.working)
                os.pwrite(fd, data.tobytes(), index * self.record)
                pending.append(index)
                if len(pending) >= batch:
                    os.fsync(fd)
                    done(pending)
                    pending = []
                    crash_point("init:caching")
            if pending:
                os.fsync(fd)
                done(pending)
                crash_point("init:caching")
        finally:
            os.close(fd)

    def tensor(self) -> LazyTensor:
        """The images as a lazy ``[N, 3, H, W]`` uint8 tensor (:mod:`ralis.files.arrays`)."""
        return LazyTensor(self.path, (3, *self.working), np.uint8, self.num_images, torch.uint8)
