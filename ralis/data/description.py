"""Reading and validating a ``ralis-dataset.yaml``/``.json`` description (see
:mod:`ralis.data.folder` for the format). Every mistake is a one-line ConfigError."""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ralis.data.base import MAX_SIDE, ClassInfo
from ralis.data.masks import MASK_FORMATS, Color, MaskSpec
from ralis.data.resize import RESIZE_MODES
from ralis.errors import ConfigError, DataError

DESCRIPTION_NAMES = ("ralis-dataset.yaml", "ralis-dataset.yml", "ralis-dataset.json")
KNOWN_FIELDS = {
    "name",
    "classes",
    "ignore_index",
    "mask_format",
    "strict_colors",
    "void_colors",
    "splits",
    "resolution",
    "resize",
}
SPLIT_FIELDS = ("images", "masks", "replace", "from", "fraction", "seed")
PLACEHOLDERS = ("stem", "split", "parent", "relpath", "dir")
MAX_IGNORE_INDEX = 65535  # masks are at most 16-bit images


@dataclass(frozen=True)
class SplitSpec:
    """One split: its own files (``images`` glob + ``masks`` pattern, optional ``replace``
    rewrites), or images carved out of another split (``source`` = the description's ``from``)
    by a ``fraction`` (drawn with ``seed``) or by an ``images`` glob."""

    images: str | None = None
    masks: str | None = None
    replace: tuple[tuple[str, str], ...] = ()
    source: str | None = None
    fraction: float | None = None
    seed: int = 0

    @property
    def carved(self) -> bool:
        return self.source is not None


@dataclass(frozen=True)
class FolderSpec:
    """A parsed, validated dataset description."""

    path: Path
    name: str
    classes: ClassInfo
    masks: MaskSpec
    splits: dict[str, SplitSpec]
    resolution: tuple[int, int] | None
    resize: str = "stretch"

    @property
    def base(self) -> Path:
        return self.path.parent

    @property
    def mask_format(self) -> str:
        return self.masks.mask_format

    @property
    def strict_colors(self) -> bool:
        return self.masks.strict_colors


# --- finding and parsing the file ---------------------------------------------------------------
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


# --- fields -------------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _color(value: Any, where: str) -> Color:
    ok = (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(_is_int(c) and 0 <= c <= 255 for c in value)
    )
    if not ok:
        raise ConfigError(f"{where}: color must be [R, G, B] with integers 0..255, got {value!r}")
    return int(value[0]), int(value[1]), int(value[2])


def parse_classes(items: Any, ignore_index: Any, need_colors: bool, where: str) -> ClassInfo:
    """Validate ``classes`` (ids exactly 0..C-1) and ``ignore_index`` into a ClassInfo."""
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: 'classes' must be a non-empty list of {{name, id, color}}")
    by_id: dict[int, tuple[str, Color | None]] = {}
    names: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or "name" not in item or "id" not in item:
            raise ConfigError(f"{where}: classes[{i}] must have 'name' and 'id', got {item!r}")
        cid = item["id"]
        if not _is_int(cid):
            raise ConfigError(f"{where}: classes[{i}] id must be an integer, got {cid!r}")
        if cid in by_id:
            raise ConfigError(f"{where}: class id {cid} is used twice")
        name = item["name"]
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(
                f"{where}: classes[{i}] name must be a non-empty text, e.g. name: road, got "
                f"{name!r}"
            )
        if name in names:
            raise ConfigError(
                f"{where}: class name {name!r} is used twice (classes[{names.index(name)}] and "
                f"classes[{i}]); give every class its own name"
            )
        names.append(name)
        color = item.get("color")
        if color is None and need_colors:
            raise ConfigError(f"{where}: classes[{i}] ({name}) needs a color for mask_format: rgb")
        by_id[cid] = (name, None if color is None else _color(color, f"{where}: classes[{i}]"))
    if sorted(by_id) != list(range(len(by_id))):
        raise ConfigError(
            f"{where}: class ids must be 0..{len(by_id) - 1} with none missing, got {sorted(by_id)}"
        )
    if not _is_int(ignore_index):
        raise ConfigError(f"{where}: ignore_index must be an integer, got {ignore_index!r}")
    if ignore_index < len(by_id):
        raise ConfigError(
            f"{where}: ignore_index {ignore_index} must be above the class ids 0..{len(by_id) - 1}"
        )
    if ignore_index > MAX_IGNORE_INDEX:
        raise ConfigError(
            f"{where}: ignore_index {ignore_index} is above {MAX_IGNORE_INDEX}, the largest value a "
            "16-bit mask holds; use a smaller one, e.g. 255"
        )
    entries = [by_id[i] for i in range(len(by_id))]
    given = [c for _, c in entries if c is not None]
    if len(set(given)) != len(given):
        raise ConfigError(f"{where}: two classes share the same color")
    palette = tuple(given) if len(given) == len(entries) else None
    return ClassInfo(tuple(n for n, _ in entries), ignore_index, palette)  # type: ignore[arg-type]


def check_pattern(pattern: str, where: str) -> None:
    """A mask pattern may only use the known placeholders, each exactly as ``{name}`` (no
    attribute, index, format spec or conversion); ``{{`` and ``}}`` are literal braces."""
    names = "{stem}, {split}, {parent}, {relpath} and {dir}"
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise ConfigError(
            f"{where}: mask pattern {pattern!r} is malformed ({exc}); write placeholders as "
            f"{names}, and a literal brace as {{{{ or }}}}"
        ) from None
    bad = []
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in PLACEHOLDERS or spec or conversion is not None:
            text = field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            bad.append("{" + text + "}")
    if bad:
        raise ConfigError(
            f"{where}: mask pattern {pattern!r} uses {', '.join(bad)}; the placeholders are "
            f"{names}, each written exactly so (no attributes, indices or formats)"
        )


def _parse_split(name: str, item: Any, where: str) -> SplitSpec:
    at = f"{where}: splits.{name}"
    if not isinstance(item, Mapping):
        raise ConfigError(f"{at} must be a mapping with 'images' and 'masks' (or 'from')")
    unknown = sorted(set(item) - set(SPLIT_FIELDS))
    if unknown:
        raise ConfigError(f"{at} has unknown fields {unknown}; known: {', '.join(SPLIT_FIELDS)}")
    if "from" in item:
        return _parse_carved(item, at)
    if not all(isinstance(item.get(k), str) and item.get(k) for k in ("images", "masks")):
        raise ConfigError(
            f"{at} needs 'images' (a glob) and 'masks' (a pattern with {{stem}} or {{relpath}}), "
            "or 'from' to carve it out of another split"
        )
    for key in ("fraction", "seed"):
        if key in item:
            raise ConfigError(f"{at}.{key} only applies with 'from' (a carved split)")
    check_pattern(item["masks"], f"{at}.masks")
    replace = item.get("replace") or {}
    ok = isinstance(replace, Mapping) and all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in replace.items()
    )
    if not ok:
        raise ConfigError(
            f"{at}.replace must map text to text, e.g. {{\"_image\": \"_label\"}}, got {replace!r}"
        )
    return SplitSpec(images=item["images"], masks=item["masks"], replace=tuple(replace.items()))


def _parse_carved(item: Mapping, at: str) -> SplitSpec:
    source = item["from"]
    if not isinstance(source, str) or not source:
        raise ConfigError(f"{at}.from must name another split, got {source!r}")
    for key in ("masks", "replace"):
        if key in item:
            raise ConfigError(
                f"{at}.{key}: a carved split (from: {source}) uses the masks of {source}; remove it"
            )
    has_fraction, has_images = "fraction" in item, "images" in item
    if has_fraction == has_images:
        raise ConfigError(
            f"{at} (from: {source}) needs exactly one of 'fraction' (e.g. 0.2) or 'images' (a glob)"
        )
    if has_images:
        if not isinstance(item["images"], str) or not item["images"]:
            raise ConfigError(f"{at}.images must be a glob, got {item['images']!r}")
        if "seed" in item:
            raise ConfigError(f"{at}.seed only applies with 'fraction'")
        return SplitSpec(images=item["images"], source=source)
    fraction, seed = item["fraction"], item.get("seed", 0)
    if not isinstance(fraction, int | float) or isinstance(fraction, bool) or not 0 < fraction < 1:
        raise ConfigError(f"{at}.fraction must be a number between 0 and 1, got {fraction!r}")
    if not _is_int(seed) or seed < 0:
        raise ConfigError(f"{at}.seed must be a non-negative integer, got {seed!r}")
    return SplitSpec(source=source, fraction=float(fraction), seed=int(seed))


def _parse_splits(value: Any, where: str) -> dict[str, SplitSpec]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{where}: 'splits' must map split names to {{images, masks}}")
    splits = {str(name): _parse_split(str(name), item, where) for name, item in value.items()}
    for name, split in splits.items():
        if split.source is None:
            continue
        if split.source not in splits:
            raise ConfigError(
                f"{where}: splits.{name}.from names {split.source!r}, which is not a split; "
                f"splits: {', '.join(splits)}"
            )
        if splits[split.source].carved:
            raise ConfigError(
                f"{where}: splits.{name}.from: {split.source} is itself carved; carve from a split "
                "with its own images"
            )
    return splits


def _parse_resolution(value: Any, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    ok = isinstance(value, list | tuple) and len(value) == 2
    ok = ok and all(_is_int(v) and 0 < v <= MAX_SIDE for v in value)
    if not ok:
        raise ConfigError(
            f"{where}: resolution must be [H, W] with integers 1..{MAX_SIDE}, got {value!r}"
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
    strict = data.get("strict_colors", True)
    if not isinstance(strict, bool):
        raise ConfigError(f"{where}: strict_colors must be true or false, got {strict!r}")
    voids = data.get("void_colors") or []
    if not isinstance(voids, list):
        raise ConfigError(f"{where}: void_colors must be a list of [R, G, B], got {voids!r}")
    void_colors = tuple(_color(c, f"{where}: void_colors") for c in voids)
    resize = data.get("resize", "stretch")
    if resize not in RESIZE_MODES:
        raise ConfigError(
            f"{where}: resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}"
        )
    if "classes" not in data or "splits" not in data:
        raise ConfigError(f"{where}: a dataset description needs 'classes' and 'splits'")
    classes = parse_classes(
        data["classes"], data.get("ignore_index", 255), mask_format == "rgb", where
    )
    try:
        masks = MaskSpec(classes, mask_format, void_colors, strict)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return FolderSpec(
        path=path,
        name=str(data.get("name") or path.parent.name),
        classes=classes,
        masks=masks,
        splits=_parse_splits(data["splits"], where),
        resolution=_parse_resolution(data.get("resolution"), where),
        resize=resize,
    )
