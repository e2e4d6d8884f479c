"""Cityscapes (fine annotations), mapped to the 19 evaluation classes.

Expected layout under the root::

    leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

The 34 raw label ids are mapped to the 19 train ids with the standard Cityscapes table; every
other id (void, license plate, parking, rail track, guard rail, ...) becomes the ignore index 19.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ralis.data.base import ClassInfo, SegmentationDataset
from ralis.data.camvid import check_split, default_root, read_id_mask, read_rgb
from ralis.errors import DataError

SPLITS = ("train", "val", "test", "dr", "train-dr")
IGNORE_INDEX = 19
REWARD_IMAGES = 200  # the paper's D_R: 200 train images, the reward and early-stopping set

# The 19 evaluated classes in train-id order: (name, raw Cityscapes labelId, colour).
TRAIN_CLASSES = (
    ("road", 7, (128, 64, 128)),
    ("sidewalk", 8, (244, 35, 232)),
    ("building", 11, (70, 70, 70)),
    ("wall", 12, (102, 102, 156)),
    ("fence", 13, (190, 153, 153)),
    ("pole", 17, (153, 153, 153)),
    ("traffic light", 19, (250, 170, 30)),
    ("traffic sign", 20, (220, 220, 0)),
    ("vegetation", 21, (107, 142, 35)),
    ("terrain", 22, (152, 251, 152)),
    ("sky", 23, (70, 130, 180)),
    ("person", 24, (220, 20, 60)),
    ("rider", 25, (255, 0, 0)),
    ("car", 26, (0, 0, 142)),
    ("truck", 27, (0, 0, 70)),
    ("bus", 28, (0, 60, 100)),
    ("train", 31, (0, 80, 100)),
    ("motorcycle", 32, (0, 0, 230)),
    ("bicycle", 33, (119, 11, 32)),
)

CITYSCAPES_CLASSES = ClassInfo(
    names=tuple(name for name, _, _ in TRAIN_CLASSES),
    ignore_index=IGNORE_INDEX,
    colors=tuple(color for _, _, color in TRAIN_CLASSES),
)

# Raw labelId -> trainId; every other label id (void, parking, rail track, ...) is ignored.
LABEL_TO_TRAIN = {label_id: train_id for train_id, (_, label_id, _) in enumerate(TRAIN_CLASSES)}

LAYOUT_HINT = (
    "expected leftImg8bit/<split>/<city>/*_leftImg8bit.png and "
    "gtFine/<split>/<city>/*_gtFine_labelIds.png under the root; pass --data-root"
)


def label_lut() -> np.ndarray:
    """int64 ``[256]`` lookup table: raw labelId -> trainId (19 for everything unmapped)."""
    lut = np.full(256, IGNORE_INDEX, dtype=np.int64)
    for label_id, train_id in LABEL_TO_TRAIN.items():
        lut[label_id] = train_id
    return lut


LUT = label_lut()


def to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Raw labelIds ``[H, W]`` (any int dtype) -> trainIds int64 ``[H, W]``; ids > 255 -> 19."""
    label_ids = np.asarray(label_ids)
    in_range = (label_ids >= 0) & (label_ids < LUT.size)
    return np.where(in_range, LUT[np.clip(label_ids, 0, LUT.size - 1)], IGNORE_INDEX)


def cityscapes_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """``(image, labelIds mask)`` paths of one split, sorted, checked to exist."""
    if not root.is_dir():
        raise DataError(f"Cityscapes root {root} not found: {LAYOUT_HINT}")
    image_dir, mask_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError(f"Cityscapes folder {folder} not found: {LAYOUT_HINT}")
    images = sorted(image_dir.glob("*/*_leftImg8bit.png"))
    if not images:
        raise DataError(f"no images match {image_dir}/*/*_leftImg8bit.png: {LAYOUT_HINT}")
    pairs = []
    for image in images:
        stem = image.name[: -len("_leftImg8bit.png")]
        mask = mask_dir / image.parent.name / f"{stem}_gtFine_labelIds.png"
        if not mask.is_file():
            raise DataError(f"image {image} has no mask: expected {mask}")
        pairs.append((image, mask))
    return pairs


def split_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """A split's pairs; ``dr`` is the paper's D_R (200 train images drawn with a fixed seed)
    and ``train-dr`` the rest of train, so D_R is disjoint from D_S, D_T and the pool."""
    if split not in ("dr", "train-dr"):
        return cityscapes_pairs(root, split)
    train = cityscapes_pairs(root, "train")
    chosen = set(np.random.default_rng(0).permutation(len(train))[:REWARD_IMAGES].tolist())
    return [p for i, p in enumerate(train) if (i in chosen) == (split == "dr")]


class Cityscapes(SegmentationDataset):
    """Cityscapes with 19 classes, ignore index 19.

    Args:
        split: ``train``, ``val``, ``test`` (its labels are placeholders), ``dr`` (the paper's
            D_R: 200 train images) or ``train-dr`` (train without them).
        root: dataset folder; None -> ``../shared/datasets/cityscapes`` (see
            :func:`ralis.data.camvid.default_root`).
        resolution: ``(H, W)`` working resolution, None keeps the native 1024x2048.
        cache: keep decoded samples in memory.
    """

    dataset_name = "cityscapes"

    def __init__(
        self,
        split: str = "train",
        root: str | Path | None = None,
        resolution: tuple[int, int] | None = None,
        cache: bool = True,
    ) -> None:
        check_split(split, SPLITS, "Cityscapes")
        self.root = Path(root) if root is not None else default_root("cityscapes")
        self.split = split
        self.pairs = split_pairs(self.root, split)
        names = [p[0].name[: -len("_leftImg8bit.png")] for p in self.pairs]
        super().__init__(CITYSCAPES_CLASSES, names, resolution, cache)

    @staticmethod
    def class_info(root: str | Path | None = None, **options: object) -> ClassInfo:
        return CITYSCAPES_CLASSES

    def load_raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.pairs[index]
        return read_rgb(image_path), to_train_ids(read_id_mask(mask_path))

    def describe(self, index: int) -> str:
        return f"Cityscapes {self.split} sample {self.names[index]} ({self.pairs[index][0]})"

    def sample_key(self, index: int) -> str:
        return str(self.pairs[index][0].resolve())

    def source_files(self, index: int) -> tuple[Path, ...]:
        return tuple(self.pairs[index])
