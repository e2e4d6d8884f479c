"""Your own data: image/mask folders described by a small YAML or JSON file.

Point ``--data-root`` (the ``root`` argument) at the description file, or at a folder holding
``ralis-dataset.yaml``, ``ralis-dataset.yml`` or ``ralis-dataset.json``. Paths in the description
are relative to the folder the description is in. Example::

    name: my-streets
    classes:                      # ids must be exactly 0..C-1
      - {name: road, id: 0, color: [128, 64, 128]}
      - {name: car,  id: 1, color: [0, 0, 142]}
      - {name: sky,  id: 2, color: [70, 130, 180]}
    ignore_index: 255             # default 255; must not be a class id
    mask_format: ids              # or rgb
    splits:
      train: {images: "images/train/*.jpg", masks: "labels/train/{stem}_mask.png"}
      val:   {images: "images/val/*.jpg",   masks: "labels/{split}/{stem}_mask.png"}
    resolution: [240, 320]        # optional working size H, W (the --resolution option wins)

Fields:

``name``
    A label for messages and reports (default: the description's folder name).
``classes``
    List of ``{name, id, color}``; ``id`` must cover ``0..C-1`` exactly once; ``color`` is
    ``[R, G, B]`` (0..255), optional for ``mask_format: ids`` (used only for drawing) and required
    for ``mask_format: rgb``.
``ignore_index``
    Mask value that is ignored in training and metrics (default 255).
``mask_format``
    ``ids`` (default): single-channel 8- or 16-bit PNGs (or palette PNGs) whose values are class
    ids or the ignore index. ``rgb``: colour masks, translated with the ``classes[].color`` table;
    colours not in the table become the ignore index.
``strict_colors``
    With ``mask_format: rgb``, ``true`` turns a colour that is not in the table into an error
    naming the colour and the file (default ``false``).
``splits``
    Mapping of split name to ``{images, masks}``. ``images`` is a glob (``*``, ``?``, ``[...]``,
    ``**`` for any depth). ``masks`` is a path pattern with placeholders ``{stem}`` (the image's
    file name without extension), ``{split}`` (the split name) and ``{parent}`` (the name of the
    image's folder). Every image needs a mask.
``resolution``
    Optional ``[H, W]`` every sample is resized to (bilinear for images, nearest for masks).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ralis.data.base import ClassInfo, SegmentationDataset, open_image
from ralis.data.camvid import read_id_mask, read_rgb
from ralis.errors import ConfigError, DataError

DESCRIPTION_NAMES = ("ralis-dataset.yaml", "ralis-dataset.yml", "ralis-dataset.json")
MASK_FORMATS = ("ids", "rgb")
KNOWN_FIELDS = {
    "name",
    "classes",
    "ignore_index",
    "mask_format",
    "strict_colors",
    "splits",
    "resolution",
}


@dataclass(frozen=True)
class SplitSpec:
    """Where one split's files are: an image glob and a mask pattern (both relative)."""

    images: str
    masks: str


@dataclass(frozen=True)
class FolderSpec:
    """A parsed, validated dataset description."""

    path: Path
    name: str
    classes: ClassInfo
    mask_format: str
    strict_colors: bool
    splits: dict[str, SplitSpec]
    resolution: tuple[int, int] | None

    @property
    def base(self) -> Path:
        return self.path.parent


# --- reading the description ------------------------------------------------------------------
def find_description(root: str | Path | None) -> Path:
    """The description file: ``root`` itself, or ``root/ralis-dataset.{yaml,yml,json}``."""
    if root is None:
        raise ConfigError(
            "the folder dataset needs --data-root: a ralis-dataset.yaml/.json description file "
            "or the folder holding it"
        )
    path = Path(root)
    if path.is_file():
        return path
    if path.is_dir():
        for name in DESCRIPTION_NAMES:
            if (path / name).is_file():
                return path / name
        raise DataError(
            f"no dataset description in {path}: expected one of {', '.join(DESCRIPTION_NAMES)}"
        )
    raise DataError(
        f"dataset description {path} not found: pass a ralis-dataset.yaml/.json file or its folder"
    )


def load_description(path: Path) -> dict[str, Any]:
    """Parse a YAML (``.yaml``/``.yml``) or JSON (anything else) file into a mapping."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read dataset description {path} ({exc})") from None
    try:
        data = (
            yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
        )
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"cannot parse dataset description {path}: {detail}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"dataset description {path} must be a mapping of fields, got {data!r}")
    return dict(data)


def _color(value: Any, where: str) -> tuple[int, int, int]:
    ok = (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)
    )
    if not ok:
        raise ConfigError(f"{where}: color must be [R, G, B] with integers 0..255, got {value!r}")
    return tuple(value)  # type: ignore[return-value]


def parse_classes(items: Any, ignore_index: Any, need_colors: bool, where: str) -> ClassInfo:
    """Validate ``classes`` (ids exactly 0..C-1) and ``ignore_index`` into a ClassInfo."""
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: 'classes' must be a non-empty list of {{name, id, color}}")
    by_id: dict[int, tuple[str, tuple[int, int, int] | None]] = {}
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or "name" not in item or "id" not in item:
            raise ConfigError(f"{where}: classes[{i}] must have 'name' and 'id', got {item!r}")
        cid = item["id"]
        if not isinstance(cid, int) or isinstance(cid, bool):
            raise ConfigError(f"{where}: classes[{i}] id must be an integer, got {cid!r}")
        if cid in by_id:
            raise ConfigError(f"{where}: class id {cid} is used twice")
        color = item.get("color")
        if color is None and need_colors:
            raise ConfigError(
                f"{where}: classes[{i}] ({item['name']}) needs a color for mask_format: rgb"
            )
        by_id[cid] = (
            str(item["name"]),
            None if color is None else _color(color, f"{where}: classes[{i}]"),
        )
    if sorted(by_id) != list(range(len(by_id))):
        raise ConfigError(
            f"{where}: class ids must be 0..{len(by_id) - 1} with none missing, got {sorted(by_id)}"
        )
    if not isinstance(ignore_index, int) or isinstance(ignore_index, bool):
        raise ConfigError(f"{where}: ignore_index must be an integer, got {ignore_index!r}")
    if ignore_index < len(by_id):
        raise ConfigError(
            f"{where}: ignore_index {ignore_index} must be above the class ids 0..{len(by_id) - 1}"
        )
    entries = [by_id[i] for i in range(len(by_id))]
    given = [c for _, c in entries if c is not None]
    if len(set(given)) != len(given):
        raise ConfigError(f"{where}: two classes share the same color")
    palette = tuple(given) if len(given) == len(entries) else None
    return ClassInfo(tuple(n for n, _ in entries), ignore_index, palette)  # type: ignore[arg-type]


def _parse_splits(value: Any, where: str) -> dict[str, SplitSpec]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{where}: 'splits' must map split names to {{images, masks}}")
    splits = {}
    for name, item in value.items():
        if not isinstance(item, Mapping) or not all(
            isinstance(item.get(k), str) for k in ("images", "masks")
        ):
            raise ConfigError(
                f"{where}: splits.{name} needs 'images' (a glob) and 'masks' (a pattern with {{stem}})"
            )
        splits[str(name)] = SplitSpec(item["images"], item["masks"])
    return splits


def _parse_resolution(value: Any, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    ok = isinstance(value, list | tuple) and len(value) == 2
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    if not ok:
        raise ConfigError(
            f"{where}: resolution must be [H, W] with positive integers, got {value!r}"
        )
    return int(value[0]), int(value[1])


def parse_description(path: Path) -> FolderSpec:
    """Read and validate a description file; every mistake is a one-line ConfigError."""
    data = load_description(path)
    where = str(path)
    unknown = sorted(set(data) - KNOWN_FIELDS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown fields {unknown}; known: {', '.join(sorted(KNOWN_FIELDS))}"
        )
    mask_format = data.get("mask_format", "ids")
    if mask_format not in MASK_FORMATS:
        raise ConfigError(
            f"{where}: mask_format must be one of {', '.join(MASK_FORMATS)}, got {mask_format!r}"
        )
    strict = data.get("strict_colors", False)
    if not isinstance(strict, bool):
        raise ConfigError(f"{where}: strict_colors must be true or false, got {strict!r}")
    if "classes" not in data or "splits" not in data:
        raise ConfigError(f"{where}: a dataset description needs 'classes' and 'splits'")
    classes = parse_classes(
        data["classes"], data.get("ignore_index", 255), mask_format == "rgb", where
    )
    return FolderSpec(
        path=path,
        name=str(data.get("name") or path.parent.name),
        classes=classes,
        mask_format=mask_format,
        strict_colors=strict,
        splits=_parse_splits(data["splits"], where),
        resolution=_parse_resolution(data.get("resolution"), where),
    )


# --- finding and decoding files ---------------------------------------------------------------
def mask_path_for(spec: FolderSpec, split: str, image: Path) -> Path:
    """Fill the split's mask pattern for one image."""
    pattern = spec.splits[split].masks
    try:
        rel = pattern.format_map({"stem": image.stem, "split": split, "parent": image.parent.name})
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{spec.path}: splits.{split}.masks {pattern!r} is not a valid pattern ({exc!r}); "
            "use the placeholders {stem}, {split} and {parent}"
        ) from None
    return spec.base / rel


def split_pairs(spec: FolderSpec, split: str) -> list[tuple[Path, Path]]:
    """``(image, mask)`` paths of one split, sorted; every image must have its mask."""
    pattern = os.path.join(glob.escape(str(spec.base)), spec.splits[split].images)
    images = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not images:
        raise DataError(f"{spec.path}: splits.{split}.images matched no files (glob {pattern})")
    pairs = []
    for image in images:
        mask = mask_path_for(spec, split, image)
        if not mask.is_file():
            raise DataError(f"image {image} has no mask: expected {mask} (splits.{split}.masks)")
        pairs.append((image, mask))
    return pairs


def _sample_names(images: list[Path], base: Path) -> list[str]:
    """File stems, or relative paths without suffix when stems repeat (e.g. across folders)."""
    stems = [p.stem for p in images]
    if len(set(stems)) == len(stems):
        return stems
    return [p.relative_to(base).with_suffix("").as_posix() for p in images]


def color_table(classes: ClassInfo) -> tuple[np.ndarray, np.ndarray]:
    """Sorted packed colours ``R<<16 | G<<8 | B`` int64 ``[C]`` and their class ids ``[C]``."""
    assert classes.colors is not None
    keys = np.array([(r << 16) | (g << 8) | b for r, g, b in classes.colors], dtype=np.int64)
    order = np.argsort(keys)
    return keys[order], order.astype(np.int64)


def rgb_to_ids(
    rgb: np.ndarray, keys: np.ndarray, ids: np.ndarray, ignore_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Colour mask uint8 ``[H, W, 3]`` -> (ids int64 ``[H, W]``, bool ``[H, W]`` unknown colour)."""
    packed = (
        (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    )
    pos = np.clip(np.searchsorted(keys, packed), 0, keys.size - 1)
    known = keys[pos] == packed
    return np.where(known, ids[pos], ignore_index), ~known


class FolderDataset(SegmentationDataset):
    """A dataset described by a ``ralis-dataset.yaml``/``.json`` file (see the module docs).

    Args:
        split: a split name from the description's ``splits``.
        root: the description file or its folder.
        resolution: ``(H, W)`` working size; None -> the description's ``resolution`` (if any).
        cache: keep decoded samples in memory.
    """

    def __init__(
        self,
        split: str = "train",
        root: str | Path | None = None,
        resolution: tuple[int, int] | None = None,
        cache: bool = True,
    ) -> None:
        self.spec = parse_description(find_description(root))
        if split not in self.spec.splits:
            raise ConfigError(
                f"unknown split {split!r} in {self.spec.path}; valid splits: "
                f"{', '.join(self.spec.splits)}"
            )
        self.split = split
        self.pairs = split_pairs(self.spec, split)
        if self.spec.mask_format == "rgb":
            self._keys, self._ids = color_table(self.spec.classes)
        names = _sample_names([p[0] for p in self.pairs], self.spec.base)
        super().__init__(self.spec.classes, names, resolution or self.spec.resolution, cache)

    @staticmethod
    def class_info(root: str | Path | None = None, **options: object) -> ClassInfo:
        return parse_description(find_description(root)).classes

    def load_raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.pairs[index]
        image = read_rgb(image_path)
        if self.spec.mask_format == "ids":
            return image, read_id_mask(mask_path)
        return image, self._decode_rgb_mask(mask_path)

    def _decode_rgb_mask(self, path: Path) -> np.ndarray:
        rgb = np.asarray(open_image(path, "RGB"), dtype=np.uint8)
        ids, unknown = rgb_to_ids(rgb, self._keys, self._ids, self.classes.ignore_index)
        if self.spec.strict_colors and unknown.any():
            colors = np.unique(rgb[unknown], axis=0)
            shown = ", ".join(str(tuple(int(v) for v in c)) for c in colors[:3])
            raise DataError(
                f"mask {path} has {len(colors)} colour(s) not in the class table, e.g. {shown} "
                f"({int(unknown.sum())} pixels); add them to 'classes' or set strict_colors: false"
            )
        return ids

    def describe(self, index: int) -> str:
        return f"{self.spec.name} {self.split} sample {self.names[index]} ({self.pairs[index][0]})"
