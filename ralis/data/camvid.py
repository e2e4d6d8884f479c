"""CamVid in the SegNet layout (367 train, 101 val, 233 test images of 480x360).

Expected layout under the root::

    train/ trainannot/ val/ valannot/ test/ testannot/    RGB PNGs and 8-bit class-id PNGs
    train.txt val.txt test.txt                            optional image/mask pair lists

The list files carry absolute paths from the machine they were made on
(``/SegNet/CamVid/train/0001TP_006690.png /SegNet/CamVid/trainannot/0001TP_006690.png``); each
path is resolved against the root by its last two components (split folder and file name). When a
list file is missing, the split folder is listed instead (sorted by file name).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ralis.data.base import ClassInfo, SegmentationDataset, open_image
from ralis.data.masks import read_ids
from ralis.errors import ConfigError, DataError

SPLITS = ("train", "val", "test", "dr", "train-dr")
REWARD_EVERY = 7  # ``dr``: every 7th train image in name order (from the 4th): 52 of 367
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

# (name, colour) in class-id order; id 11 is Unlabelled (void).
_CLASSES = (
    ("Sky", (128, 128, 128)),
    ("Building", (128, 0, 0)),
    ("Pole", (192, 192, 128)),
    ("Road", (128, 64, 128)),
    ("Pavement", (60, 40, 222)),
    ("Tree", (128, 128, 0)),
    ("SignSymbol", (192, 128, 128)),
    ("Fence", (64, 64, 128)),
    ("Car", (64, 0, 128)),
    ("Pedestrian", (64, 64, 0)),
    ("Bicyclist", (0, 128, 192)),
)

CAMVID_CLASSES = ClassInfo(
    names=tuple(name for name, _ in _CLASSES),
    ignore_index=11,
    colors=tuple(color for _, color in _CLASSES),
)

LAYOUT_HINT = (
    "expected the SegNet layout with train/, trainannot/, val/, valannot/, test/, testannot/ "
    "(and optionally train.txt, val.txt, test.txt); pass --data-root"
)


def default_root(name: str = "camvid") -> Path:
    """Where a shared dataset lives when no root is given.

    Tries ``../shared/datasets/<name>`` relative to the working directory, then relative to the
    repository holding this package. Returns the first that exists, else the first candidate (so
    that error messages name the conventional place).
    """
    candidates = [
        Path.cwd() / ".." / "shared" / "datasets" / name,
        Path(__file__).resolve().parents[3] / "shared" / "datasets" / name,
    ]
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    return candidates[0].resolve()


def check_split(split: str, valid: tuple[str, ...], dataset: str) -> None:
    """Raise ConfigError naming the valid splits when ``split`` is not one of them."""
    if split not in valid:
        raise ConfigError(f"unknown {dataset} split {split!r}; valid splits: {', '.join(valid)}")


def _pairs_from_list(root: Path, list_file: Path) -> list[tuple[Path, Path]]:
    """Parse a SegNet list file; paths are re-rooted by their last two components."""
    pairs = []
    for lineno, line in enumerate(list_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError(
                f"{list_file}:{lineno}: expected 'IMAGE MASK' (two paths), got {line.strip()!r}"
            )
        image, mask = (root / Path(p).parent.name / Path(p).name for p in parts)
        for path in (image, mask):
            if not path.is_file():
                raise DataError(f"{list_file}:{lineno} lists {parts}, but {path} does not exist")
        pairs.append((image, mask))
    if not pairs:
        raise DataError(f"{list_file} lists no images")
    return pairs


def _pairs_from_folders(image_dir: Path, mask_dir: Path) -> list[tuple[Path, Path]]:
    """Pair every image in ``image_dir`` with the same file name in ``mask_dir``."""
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DataError(f"no images in {image_dir}; {LAYOUT_HINT}")
    pairs = []
    for image in images:
        mask = mask_dir / image.name
        if not mask.is_file():
            raise DataError(f"image {image} has no mask: expected {mask}")
        pairs.append((image, mask))
    return pairs


def camvid_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """``(image, mask)`` paths of one split, checked to exist."""
    if not root.is_dir():
        raise DataError(f"CamVid root {root} not found: {LAYOUT_HINT}")
    image_dir, mask_dir = root / split, root / f"{split}annot"
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError(f"CamVid folder {folder} not found: {LAYOUT_HINT}")
    list_file = root / f"{split}.txt"
    if list_file.is_file():
        return _pairs_from_list(root, list_file)
    return _pairs_from_folders(image_dir, mask_dir)


def split_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """A split's pairs. ``dr`` is a reward split carved from train: every
    :data:`REWARD_EVERY`-th image in file-name order, starting at the 4th (52 images: 0001TP 9,
    0006R0 14, 0016E5 29, so every train sequence, spread over its frames); ``train-dr`` is train
    without them, so D_S, D_T and the pool never hold a ``dr`` image. Which images ``dr`` holds
    depends only on the train file names."""
    if split not in ("dr", "train-dr"):
        return camvid_pairs(root, split)
    train = sorted(camvid_pairs(root, "train"), key=lambda p: p[0].name)
    return [p for i, p in enumerate(train)
            if (i % REWARD_EVERY == REWARD_EVERY // 2) == (split == "dr")]


def read_id_mask(path: Path) -> np.ndarray:
    """A class-id mask by the shared ``ids`` rules (:func:`ralis.data.masks.read_ids`: lossless,
    single-channel 8/16-bit, no palette PNG) -> its values ``[H, W]`` (uint8/uint16 as stored)."""
    return read_ids(path)


def read_rgb(path: Path) -> np.ndarray:
    """Any image file -> uint8 ``[H, W, 3]``."""
    return np.array(open_image(path, "RGB"), dtype=np.uint8)  # writable, for torch


class CamVid(SegmentationDataset):
    """CamVid (SegNet copy): 11 classes, ignore index 11.

    Args:
        split: ``train``, ``val``, ``test``, ``dr`` (a reward split of 52 train images across
            every train sequence, :func:`split_pairs`) or ``train-dr`` (train without them).
        root: dataset folder; None -> :func:`default_root`.
        resolution: ``(H, W)`` working resolution, None keeps 360x480.
        cache: keep decoded samples in memory.
    """

    dataset_name = "camvid"

    def __init__(
        self,
        split: str = "train",
        root: str | Path | None = None,
        resolution: tuple[int, int] | None = None,
        cache: bool = True,
    ) -> None:
        check_split(split, SPLITS, "CamVid")
        self.root = Path(root) if root is not None else default_root("camvid")
        self.split = split
        self.pairs = split_pairs(self.root, split)
        super().__init__(CAMVID_CLASSES, [p[0].stem for p in self.pairs], resolution, cache)

    @staticmethod
    def class_info(root: str | Path | None = None, **options: object) -> ClassInfo:
        return CAMVID_CLASSES

    def load_raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.pairs[index]
        return read_rgb(image_path), read_id_mask(mask_path)

    def describe(self, index: int) -> str:
        return f"CamVid {self.split} sample {self.names[index]} ({self.pairs[index][0]})"

    def sample_key(self, index: int) -> str:
        return str(self.pairs[index][0].resolve())

    def source_files(self, index: int) -> tuple[Path, ...]:
        return tuple(self.pairs[index])
