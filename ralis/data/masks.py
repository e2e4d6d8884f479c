"""Decoding label masks into class ids, with the same rules wherever masks come from.

A :class:`MaskSpec` says how a dataset's masks are encoded:

* ``ids``: single-channel PNGs (8 or 16 bit) whose values are class ids or the ignore index;
* ``palette``: palette ("P" mode) PNGs whose palette *indices* are the class ids; when the
  classes have colours, each class id that occurs must be drawn in its class's colour (else the
  file's indices follow another order, and ``rgb`` is the format to use);
* ``rgb``: colour masks (RGB, or palette PNGs, whose colours count), translated through the
  class colours; ``void_colors`` become the ignore index; any other colour is an *unknown
  colour*: an error by default (``strict_colors``), or, if the user opted out, the ignore index.

:func:`decode_mask` decodes one file. Lossy files (JPEG, detected by the decoded format and the
file name) are refused, since compression invents colours and ids along every edge. Unknown
colours can be tallied over many files with :class:`UnknownColors`, so an error can name every
colour with its pixel count and the first files it occurs in. Ids come in the smallest integer
dtype that holds them (uint8 for up to 255), and colour masks are translated in blocks of rows, so
a large mask needs little memory beyond its own pixels. :func:`read_ids` applies the ``ids`` rules
without a class list, for the built-in readers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ralis.data.base import ClassInfo, read_image
from ralis.data.palettes import PaletteColors
from ralis.errors import ConfigError, DataError

MASK_FORMATS = ("ids", "palette", "rgb")
LOSSY_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")
LOSSY_FORMATS = ("JPEG", "MPO")  # MPO: multi-picture JPEG (some cameras)
ID_MODES = ("1", "L", "I", "I;16", "I;16B", "I;16L")
COLOR_MODES = ("RGB", "RGBA", "P", "PA")
BLOCK_PIXELS = 1 << 20  # rgb decoding works on blocks of rows of about this many pixels

Color = tuple[int, int, int]


def pack(colors: np.ndarray) -> np.ndarray:
    """uint8 ``[..., 3]`` colours -> uint32 ``[...]`` keys ``R << 16 | G << 8 | B``."""
    c = np.asarray(colors)
    key = c[..., 0].astype(np.uint32)
    key <<= 16
    key |= c[..., 1].astype(np.uint32) << 8
    key |= c[..., 2].astype(np.uint32)
    return key


def id_dtype(classes: ClassInfo) -> np.dtype:
    """The smallest unsigned dtype holding every class id and the ignore index (uint8 for up to
    255, uint16 up to 65535)."""
    return np.min_scalar_type(max(classes.ignore_index, classes.num_classes - 1, 0))


def unpack(key: int) -> Color:
    return (key >> 16) & 255, (key >> 8) & 255, key & 255


@dataclass(frozen=True)
class MaskSpec:
    """How masks are encoded: format, class colours (via ``classes``) and declared void colours."""

    classes: ClassInfo
    mask_format: str = "ids"
    void_colors: tuple[Color, ...] = ()
    strict_colors: bool = True

    def __post_init__(self) -> None:
        if self.mask_format not in MASK_FORMATS:
            raise ConfigError(
                f"mask_format must be one of {', '.join(MASK_FORMATS)}, got {self.mask_format!r}"
            )
        if self.mask_format == "rgb" and self.classes.colors is None:
            raise ConfigError("mask_format: rgb needs a color for every class")
        if self.void_colors and self.mask_format != "rgb":
            raise ConfigError("void_colors only apply to mask_format: rgb; remove them")
        clash = set(self.void_colors) & set(self.classes.colors or ())
        if clash:
            raise ConfigError(
                f"void_colors {sorted(clash)} are also class colours; a colour is a class or void"
            )

    def color_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted colour keys uint32 ``[K]`` (classes and void) and the id of each ``[K]`` (in
        :func:`id_dtype`)."""
        colors = list(self.classes.colors or ()) + list(self.void_colors)
        ids = list(range(self.classes.num_classes)) + [self.classes.ignore_index] * len(
            self.void_colors
        )
        keys = pack(np.array(colors, dtype=np.uint8).reshape(-1, 3))
        order = np.argsort(keys)
        return keys[order], np.array(ids, dtype=id_dtype(self.classes))[order]


class UnknownColors:
    """Colours outside the class table, tallied over masks: pixels, files, first files.

    Each file is counted once, however often it is decoded.
    """

    def __init__(self, first_files: int = 3) -> None:
        self.pixels: dict[int, int] = {}
        self.file_count: dict[int, int] = {}
        self.first: dict[int, list[str]] = {}
        self.files: set[str] = set()
        self.first_files = first_files

    def add(self, path: Path | str, keys: np.ndarray, counts: np.ndarray) -> None:
        """Record one file's unknown colour keys (distinct) and their pixel counts."""
        name = str(path)
        if name in self.files:
            return
        self.files.add(name)
        for key, n in zip(keys.tolist(), counts.tolist(), strict=True):  # distinct colours
            self.pixels[key] = self.pixels.get(key, 0) + int(n)
            self.file_count[key] = self.file_count.get(key, 0) + 1
            first = self.first.setdefault(key, [])
            if len(first) < self.first_files:
                first.append(name)

    def __bool__(self) -> bool:
        return bool(self.pixels)

    @property
    def total_pixels(self) -> int:
        return sum(self.pixels.values())

    def items(self, limit: int | None = None) -> list[dict]:
        """Colours by pixel count, most first: ``{color, pixels, files, first_files}``."""
        keys = sorted(self.pixels, key=lambda k: (-self.pixels[k], k))[:limit]
        return [
            {"color": list(unpack(k)), "pixels": self.pixels[k], "files": self.file_count[k],
             "first_files": list(self.first[k])}
            for k in keys
        ]

    def summary(self, limit: int = 4, relative_to: Path | None = None) -> str:
        """``(1, 2, 3): 1234 px in 2 files (first a.png); ...`` for the most frequent colours."""
        parts = []
        for item in self.items(limit):
            first = _short(item["first_files"][0], relative_to)
            parts.append(f"{tuple(item['color'])}: {item['pixels']} px in {item['files']} "
                         f"file(s) (first {first})")
        more = len(self.pixels) - limit
        return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")

    def message(self, where: str, masks: int, relative_to: Path | None = None) -> str:
        """The one-line error for unknown colours found in ``masks`` mask files of ``where``."""
        return (
            f"{where}: {len(self.pixels)} colour(s) in {len(self.files)} of {masks} masks are not "
            f"in the class table ({self.total_pixels} px): {self.summary(relative_to=relative_to)}"
            "; add them to 'classes', list them under 'void_colors' (void on purpose), or set "
            "strict_colors: false to make unknown colours void"
        )


def _short(path: str, base: Path | None) -> str:
    if base is None:
        return path
    try:
        return Path(path).relative_to(base).as_posix()
    except ValueError:
        return path


class UnknownColorsError(DataError):
    """A mask has colours outside the class table (strict mode); ``colors`` holds the tally."""

    def __init__(self, message: str, colors: UnknownColors) -> None:
        super().__init__(message)
        self.colors = colors


def check_lossless(path: Path, file_format: str | None = None) -> None:
    """Refuse a mask stored in a lossy format (by file name, and by the decoded format if known)."""
    lossy = Path(path).suffix.lower() in LOSSY_SUFFIXES or file_format in LOSSY_FORMATS
    if lossy:
        raise DataError(
            f"mask {path} is a JPEG: lossy compression changes colours and ids along every edge, "
            "so masks must be lossless; export the masks as PNG"
        )


def read_mask_image(path: Path) -> Image.Image:
    """Open a mask file, refusing lossy ones (by name before reading, by format after)."""
    path = Path(path)
    check_lossless(path)
    im, file_format = read_image(path)
    check_lossless(path, file_format)
    return im


def id_values(im: Image.Image) -> np.ndarray:
    """The stored values of a single-channel image: uint8, uint16 or int32 ``[H, W]``."""
    values = np.asarray(im)
    return values.astype(np.uint8) if values.dtype == bool else values


def read_ids(path: Path) -> np.ndarray:
    """A single-channel class-id mask by the ``ids`` rules of :func:`decode_mask` (lossless, not a
    palette PNG, one channel), its values as stored (uint8, uint16 or int32 ``[H, W]``) and not
    yet checked against a class list. The built-in readers (CamVid, Cityscapes) read theirs so."""
    path = Path(path)
    im = read_mask_image(path)
    if im.mode == "P":
        raise DataError(
            f"mask {path} is a palette PNG; expected a single-channel image of class ids (mode L "
            "or 16-bit), so convert it, or describe the data as a folder dataset with mask_format: "
            "palette or rgb"
        )
    if im.mode not in ID_MODES:
        raise DataError(
            f"mask {path} has mode {im.mode}; expected a single-channel image of class ids"
        )
    return id_values(im)


def decode_mask(path: Path, spec: MaskSpec, colors: UnknownColors | None = None,
                palettes: PaletteColors | None = None) -> np.ndarray:
    """Decode one mask file into class ids ``[H, W]`` (``0..C-1`` or the ignore index).

    The ids come in the smallest dtype that holds them: uint8/uint16 as stored for ``ids`` and
    ``palette`` (int32 for a 32-bit id image), :func:`id_dtype` for ``rgb``.

    Args:
        path: the mask file.
        spec: the encoding rules.
        colors: with ``rgb``, a tally that records unknown colours. Without one, unknown colours
            raise :class:`UnknownColorsError` (naming colours and pixel counts) when
            ``spec.strict_colors``; with one, they are recorded and become the ignore index, and
            the caller decides (e.g. raise ``colors.message(...)`` after a whole split).
        palettes: with ``palette``, the colours of the ids in the masks read before
            (:class:`~ralis.data.palettes.PaletteColors`): one drawn differently is an error.
    """
    path = Path(path)
    im = read_mask_image(path)
    fmt = spec.mask_format
    if fmt == "rgb":
        return _decode_rgb(path, im, spec, colors)
    if fmt == "ids" and im.mode == "P":
        raise DataError(
            f"mask {path} is a palette PNG but mask_format is ids; set mask_format: palette if its "
            "palette indices are the class ids, or mask_format: rgb to read its colours through "
            "classes[].color"
        )
    if fmt == "palette" and im.mode != "P":
        raise DataError(
            f"mask {path} has mode {im.mode}, not a palette PNG, but mask_format is palette; use "
            "mask_format: ids for single-channel id masks or rgb for colour masks"
        )
    if fmt == "ids" and im.mode not in ID_MODES:
        hint = "; use mask_format: rgb for colour masks" if im.mode in COLOR_MODES else ""
        raise DataError(
            f"mask {path} has mode {im.mode}; expected a single-channel image of class ids{hint}"
        )
    ids = id_values(im)
    check_ids(str(path), ids, spec.classes)
    if fmt == "palette":
        check_palette_colors(path, im, ids, spec.classes)
        if palettes is not None:
            palettes.check(path, im, ids, spec.classes)
    return ids


def check_palette_colors(path: Path, im: Image.Image, ids: np.ndarray, classes: ClassInfo) -> None:
    """With declared class colours, a palette PNG must draw each class id that occurs in it in
    that class's colour; otherwise its indices are not the class ids (another tool's order)."""
    if classes.colors is None:
        return
    c = classes.num_classes
    present = np.flatnonzero(np.bincount(ids.ravel(), minlength=c)[:c] > 0)
    palette = np.array(im.getpalette() or [], dtype=np.int64).reshape(-1, 3)
    present = present[present < len(palette)]  # entries the file's palette defines
    declared = np.array(classes.colors, dtype=np.int64)[present]
    wrong = present[np.any(palette[present] != declared, axis=1)]
    if wrong.size:
        i = int(wrong[0])
        more = f" (and {wrong.size - 1} more ids)" if wrong.size > 1 else ""
        raise DataError(
            f"mask {path}: palette index {i} is drawn as {tuple(int(v) for v in palette[i])} but "
            f"class {i} ({classes.names[i]}) has color {tuple(classes.colors[i])}{more}, so the "
            "palette indices are not your class ids; use mask_format: rgb to read these masks by "
            "their colours, or fix classes[].color"
        )


def check_ids(where: str, ids: np.ndarray, classes: ClassInfo) -> None:
    """Raise a DataError naming values that are neither a class id nor the ignore index."""
    c, ignore = classes.num_classes, classes.ignore_index
    bad = (ids < 0) | ((ids >= c) & (ids != ignore))
    if bad.any():
        values = [int(v) for v in np.unique(ids[bad])[:5]]
        raise DataError(
            f"{where}: mask has class ids {values} outside 0..{c - 1} and not the ignore index "
            f"{ignore}; fix the mask or the dataset's class list"
        )


def _decode_rgb(
    path: Path, im: Image.Image, spec: MaskSpec, colors: UnknownColors | None
) -> np.ndarray:
    """Colours -> ids through the sorted colour table (uint32 keys, binary search), in blocks of
    rows so that the temporaries stay small however large the mask is."""
    if im.mode not in COLOR_MODES:
        raise DataError(
            f"mask {path} is a single-channel image (mode {im.mode}) but mask_format is rgb; use "
            "mask_format: ids if its values are class ids"
        )
    rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    keys, ids = spec.color_table()
    height, width = rgb.shape[:2]
    out = np.empty((height, width), dtype=ids.dtype)
    step = max(1, BLOCK_PIXELS // max(width, 1))
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for top in range(0, height, step):  # a few blocks of rows, each fully vectorised
        packed = pack(rgb[top:top + step])
        pos = np.searchsorted(keys, packed)  # clip: past the last key is unknown anyway
        known = keys.take(pos, mode="clip") == packed
        block = out[top:top + step]
        ids.take(pos, out=block, mode="clip")
        del pos
        if not known.all():
            block[~known] = spec.classes.ignore_index
            found.append(np.unique(packed[~known], return_counts=True))
    if found:
        unknown_keys, where = np.unique(np.concatenate([k for k, _ in found]), return_inverse=True)
        counts = np.bincount(where, weights=np.concatenate([n for _, n in found]))
        counts = counts.astype(np.int64)
        if colors is not None:
            colors.add(path, unknown_keys, counts)
        elif spec.strict_colors:
            tally = UnknownColors()
            tally.add(path, unknown_keys, counts)
            raise UnknownColorsError(tally.message(f"mask {path}", 1), tally)
    return out


def decode_masks(paths: Iterable[Path], spec: MaskSpec) -> UnknownColors:
    """Decode many masks only to tally their unknown colours (for a split-wide report)."""
    tally = UnknownColors()
    for path in paths:
        decode_mask(path, spec, tally)
    return tally
