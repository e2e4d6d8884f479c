"""PNG masks: ``rounds/<n>/requests.csv`` out, a folder of full-size masks back in.

Export: ``requests.csv`` (``image,region,top,left,height,width``, native pixels), which the project
writes for every format; this format adds nothing else. Import: a folder where
``<image name without its suffix>.png`` (sub-folders as in the images folder) is a full-size mask
of class ids (8/16-bit grey, or a palette PNG whose indices are the ids) or of class colours (RGB,
through the colours in the classes file). The ignore value, and every pixel outside the requested
regions, is not a label.
"""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from ralis.data.masks import MaskSpec, decode_mask
from ralis.data.palettes import PaletteColors
from ralis.errors import RalisError, first_line
from ralis.labelling.formats.base import (
    FORMATS,
    ExportContext,
    ImageAnswer,
    ImageLabels,
    ImportContext,
    LabelFileError,
)

REQUESTS_CSV = "requests.csv"
CSV_COLUMNS = ("image", "region", "top", "left", "height", "width")


def stem_key(name: str) -> str:
    """An image name without its suffix: ``city/a.jpg`` -> ``city/a``."""
    p = PurePosixPath(name)
    return str(p.with_suffix("")) if p.suffix else str(p)


def write_requests_csv(ctx: ExportContext) -> Path:
    path = ctx.out_dir / REQUESTS_CSV
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in ctx.requests:
            w.writerow([r.image, r.region_id, r.top, r.left, r.height, r.width])
    return path


def _mask_spec(path: Path, ctx: ImportContext) -> MaskSpec:
    try:
        with Image.open(path) as im:
            mode = im.mode
    except (OSError, SyntaxError, ValueError) as exc:
        raise LabelFileError(f"cannot read mask {path} ({first_line(exc)}); the file is corrupt "
                             "or not a PNG") from None
    if mode in ("RGB", "RGBA"):
        if ctx.classes.colors is None:
            raise LabelFileError(f"mask {path} is a colour image but the classes file gives no "
                                 "colours; add color: [R, G, B] to every class, or save class ids")
        return MaskSpec(ctx.classes, "rgb")
    return MaskSpec(ctx.classes, "palette" if mode == "P" else "ids")


@FORMATS.register("png")
class PngFormat:
    name = "png"
    description = "requests.csv out; a folder of <image stem>.png class-id (or colour) masks in"

    def export_requests(self, ctx: ExportContext) -> list[Path]:
        return [write_requests_csv(ctx)]

    def import_labels(self, path: Path, ctx: ImportContext) -> list[ImageLabels]:
        folder = Path(path)
        if not folder.is_dir():
            raise LabelFileError(f"{folder} is not a folder; the png format imports a folder of "
                                 "<image stem>.png masks")
        by_stem: dict[str, str] = {}
        for name in ctx.images:
            key = stem_key(name)
            if key in by_stem:
                raise LabelFileError(f"images {by_stem[key]} and {name} share the stem {key}; "
                                     "use another format (their masks would have the same name)")
            by_stem[key] = name
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".png")
        if not files:
            raise LabelFileError(f"{folder} holds no .png masks; save one <image stem>.png per "
                                 "labelled image")
        out = []
        palettes = PaletteColors()  # one index, one colour, in every mask of the folder
        for file in files:
            rel = file.relative_to(folder).as_posix()
            name = by_stem.get(stem_key(rel))
            if name is None:
                raise LabelFileError(f"{file}: no image {stem_key(rel)}.* in this project; masks "
                                     "must be named after the project's images")
            info = ctx.images[name]
            try:
                ids = decode_mask(file, _mask_spec(file, ctx), palettes=palettes)
            except LabelFileError:
                raise
            except RalisError as exc:
                raise LabelFileError(first_line(exc)) from None
            if ids.shape != (info.height, info.width):
                raise LabelFileError(
                    f"{file} is {ids.shape[0]}x{ids.shape[1]} (HxW) but image {name} is "
                    f"{info.height}x{info.width}; masks must have their image's native size")
            out.append(ImageLabels(name, ids.astype(np.int32), 0, str(file)))
        return out

    def write_answer(self, path: Path, answers: list[ImageAnswer], ctx: ExportContext) -> Path:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        ignore = ctx.classes.ignore_index
        for a in answers:
            labels = np.full(a.labels.shape, ignore, dtype=np.int64)
            for b in a.boxes:
                win = (slice(b.top, b.top + b.height), slice(b.left, b.left + b.width))
                labels[win] = a.labels[win]
            dest = folder / (stem_key(a.name) + ".png")
            dest.parent.mkdir(parents=True, exist_ok=True)
            array = labels.astype(np.uint8 if ignore < 256 else np.uint16)
            Image.fromarray(array).save(dest)  # uint8 -> L, uint16 -> I;16
        return folder
