"""Synthetic street scenes: a CamVid-like dataset that needs no download.

Every image is generated from ``np.random.default_rng([seed, split_code, index])``, so a sample
depends only on ``(seed, split, index)`` and can be generated in any order, at any size. The
scenes themselves (what is drawn, and why classes cannot be told apart by colour alone) are
:mod:`ralis.data.street_scenes`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ralis.data.base import ClassInfo, SegmentationDataset
from ralis.data.camvid import check_split
from ralis.data.scene_canvas import IGNORE
from ralis.data.street_scenes import generate_scene
from ralis.errors import ConfigError

SPLITS = ("train", "val", "test")
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
DEFAULT_NUM_IMAGES = {"train": 120, "val": 30, "test": 40}
DEFAULT_RESOLUTION = (120, 160)
MIN_SIZE = 16


SYNTHETIC_CLASSES = ClassInfo(
    names=(
        "sky",
        "building",
        "road",
        "sidewalk",
        "vegetation",
        "pole",
        "sign",
        "person",
        "bicycle",
    ),
    ignore_index=IGNORE,
    colors=(
        (70, 130, 180),
        (70, 70, 70),
        (128, 64, 128),
        (244, 35, 232),
        (107, 142, 35),
        (153, 153, 153),
        (220, 220, 0),
        (220, 20, 60),
        (119, 11, 32),
    ),
)


# --- the dataset ------------------------------------------------------------------------------
def _check_options(
    resolution: tuple[int, int] | None, seed: int, num_images: int | None
) -> tuple[int, int]:
    size = tuple(resolution) if resolution else DEFAULT_RESOLUTION
    if len(size) != 2 or any(int(s) != s or s < MIN_SIZE for s in size):
        raise ConfigError(
            f"synthetic resolution must be (H, W) with sides >= {MIN_SIZE}, got {resolution}"
        )
    if int(seed) != seed or seed < 0:
        raise ConfigError(f"synthetic seed must be a non-negative integer, got {seed!r}")
    if num_images is not None and (int(num_images) != num_images or num_images < 1):
        raise ConfigError(f"synthetic num_images must be a positive integer, got {num_images!r}")
    return int(size[0]), int(size[1])


class SyntheticStreets(SegmentationDataset):
    """Procedural street scenes, 9 classes (see :data:`SYNTHETIC_CLASSES`), ignore index 255.

    Args:
        split: ``train`` (120 images by default), ``val`` (30) or ``test`` (40).
        root: unused (accepted so that every dataset takes the same arguments).
        resolution: ``(H, W)`` size the scenes are drawn at (default 120 x 160).
        cache: keep generated samples in memory.
        seed: dataset seed; sample ``i`` of a split depends only on ``(seed, split, i)``.
        num_images: number of images in the split (default: per split, see above).
    """

    dataset_name = "synthetic"

    def __init__(
        self,
        split: str = "train",
        root: str | Path | None = None,
        resolution: tuple[int, int] | None = None,
        cache: bool = True,
        seed: int = 0,
        num_images: int | None = None,
    ) -> None:
        check_split(split, SPLITS, "synthetic")
        self.size = _check_options(resolution, seed, num_images)
        self.split, self.seed = split, int(seed)
        count = int(num_images) if num_images is not None else DEFAULT_NUM_IMAGES[split]
        names = [f"synthetic-{split}-{i:04d}" for i in range(count)]
        super().__init__(SYNTHETIC_CLASSES, names, self.size, cache)

    @staticmethod
    def class_info(root: str | Path | None = None, **options: object) -> ClassInfo:
        return SYNTHETIC_CLASSES

    def load_raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} synthetic images")
        rng = np.random.default_rng([self.seed, SPLIT_CODES[self.split], index])
        return generate_scene(rng, *self.size)

    def describe(self, index: int) -> str:
        return f"synthetic {self.split} sample {index} (seed {self.seed})"
