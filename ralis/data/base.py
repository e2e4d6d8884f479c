"""The dataset contract shared by every reader.

A :class:`SegmentationDataset` yields ``(image, mask)`` pairs:

* ``image``: float tensor ``[3, H, W]``, normalised with ImageNet mean/std;
* ``mask``: long tensor ``[H, W]`` holding class ids ``0..C-1`` or ``classes.ignore_index``.

Readers only say where the samples are and how to decode one; this base class does resizing to a
working resolution (see :mod:`ralis.data.resize`), validation (sizes, class ids, corrupt files) and
in-memory caching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ralis.data.resize import fit_to_size
from ralis.errors import ConfigError, DataError

MAX_SIDE = 16384  # largest side of a working resolution, in pixels
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


@dataclass(frozen=True)
class ClassInfo:
    """Class names in id order, the ignore index, and optional RGB colours (for drawing)."""

    names: tuple[str, ...]
    ignore_index: int
    colors: tuple[tuple[int, int, int], ...] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class Sample:
    """One image/mask pair on disk (``mask_path`` may be None for unlabelled data)."""

    name: str
    image_path: Path
    mask_path: Path | None


def normalize(image_u8: torch.Tensor) -> torch.Tensor:
    """``image_u8``: uint8 ``[..., 3, H, W]`` -> float, ImageNet-normalised."""
    return (image_u8.float() / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize`; returns floats in [0, 1]."""
    return (image * IMAGENET_STD + IMAGENET_MEAN).clamp(0, 1)


def read_image(path: Path) -> tuple[Image.Image, str | None]:
    """Open and fully decode an image: ``(image, file format as PIL names it, e.g. "PNG")``.

    I/O and decode failures become one-line DataErrors.
    """
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy(), im.format
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read image {path} ({exc}); the file is corrupt or not an image") from None


def open_image(path: Path, mode: str | None = None) -> Image.Image:
    """Open and fully decode an image (converted to ``mode`` if given); errors as one line."""
    im, _ = read_image(path)
    return im.convert(mode) if mode and im.mode != mode else im


def image_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read image {path} ({exc}); the file is corrupt or not an image") from None
    return h, w


def check_same_size(where: str, image: np.ndarray, mask: np.ndarray) -> None:
    """Raise a DataError when an image and its mask differ in size."""
    if image.shape[:2] != mask.shape[:2]:
        raise DataError(
            f"{where}: image is {image.shape[1]}x{image.shape[0]} but mask is "
            f"{mask.shape[1]}x{mask.shape[0]}; image and mask must have the same size"
        )


class SegmentationDataset(torch.utils.data.Dataset):
    """Base dataset: subclasses implement :meth:`load_raw`; everything else is shared.

    Args:
        classes: class names, ignore index.
        names: one identifier per sample (file stem), used in outputs.
        resolution: ``(H, W)`` working resolution, or None to keep the native size.
        cache: keep decoded uint8 images and masks in memory after first access.
        resize: how a sample of another size reaches ``resolution``: ``stretch`` (resize both
            sides) or ``crop`` (scale the short side, then centre-crop); see
            :mod:`ralis.data.resize`.
    """

    #: display name of the dataset (messages, reports); readers override it
    dataset_name = "dataset"

    def __init__(
        self,
        classes: ClassInfo,
        names: Sequence[str],
        resolution: tuple[int, int] | None = None,
        cache: bool = True,
        resize: str = "stretch",
    ) -> None:
        if resolution is not None and not (
            len(resolution) == 2 and all(isinstance(v, int | np.integer) and 0 < v <= MAX_SIDE
                                         for v in resolution)
        ):
            raise ConfigError(
                f"resolution must be (H, W) with integer sides 1..{MAX_SIDE}, got {resolution!r}"
            )
        self.classes = classes
        self.names = list(names)
        self.resolution = tuple(int(v) for v in resolution) if resolution else None
        self.cache = cache
        self.resize = resize
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    # --- what a reader implements -------------------------------------------------------------
    def load_raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(image uint8 [H, W, 3], mask [H, W])`` at native resolution; the mask may
        have any integer dtype (e.g. uint8 as decoded)."""
        raise NotImplementedError

    def describe(self, index: int) -> str:
        """Where sample ``index`` comes from, for error messages."""
        return self.names[index]

    def sample_key(self, index: int) -> str:
        """An identity of sample ``index`` across splits (its file): equal keys = same sample."""
        return self.describe(index)

    def source_files(self, index: int) -> tuple[Path, ...]:
        """The files sample ``index`` is read from (their sizes and times key the disk cache)."""
        return ()

    # --- shared machinery ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.names)

    def load_u8(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(image uint8 [3, H, W], mask long [H, W])`` at the working resolution, validated."""
        if index in self._cache:
            return self._cache[index]
        image, mask = self.load_raw(index)
        check_same_size(self.describe(index), image, mask)
        if self.resolution is not None and tuple(image.shape[:2]) != self.resolution:
            image, mask = fit_to_size(image, mask, self.resolution, self.resize)
        self._check_mask(index, mask)
        img_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        mask_t = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64))
        if self.cache:
            self._cache[index] = (img_t, mask_t)
        return img_t, mask_t

    def _check_mask(self, index: int, mask: np.ndarray) -> None:
        c, ignore = self.classes.num_classes, self.classes.ignore_index
        bad = (mask < 0) | ((mask >= c) & (mask != ignore))
        if bad.any():
            values = sorted({int(v) for v in np.unique(mask[bad])})[:5]
            raise DataError(
                f"{self.describe(index)}: mask has class ids {values} outside 0..{c - 1} and not the "
                f"ignore index {ignore}; fix the mask or the dataset's class list"
            )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.load_u8(index)
        return normalize(image), mask

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of every sample at the working resolution (checked on the first one)."""
        if self.resolution is not None:
            return self.resolution  # type: ignore[return-value]
        return tuple(self.load_u8(0)[0].shape[-2:])  # type: ignore[return-value]


class Subset(SegmentationDataset):
    """A view on some samples of another dataset (shares its cache)."""

    def __init__(self, parent: SegmentationDataset, indices: Sequence[int]) -> None:
        super().__init__(parent.classes, [parent.names[i] for i in indices], parent.resolution, False,
                         parent.resize)
        self.parent = parent
        self.indices = list(indices)
        self.dataset_name = parent.dataset_name

    def load_u8(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.parent.load_u8(self.indices[index])

    def describe(self, index: int) -> str:
        return self.parent.describe(self.indices[index])

    def sample_key(self, index: int) -> str:
        return self.parent.sample_key(self.indices[index])
