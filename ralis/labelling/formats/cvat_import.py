"""Reading a CVAT for images 1.1 export (see :mod:`ralis.labelling.formats.cvat`): the XML (or the
zip CVAT downloads, or a folder holding it), parsed with defusedxml, every pixel shape rasterised
at native pixels into one label canvas per image.

The names ralis gives its request boxes (:data:`REQUEST_LABEL` and their attributes) are
defined here, where they are recognised; the export writes them.
"""

from __future__ import annotations

import math
import posixpath
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree as ET

import defusedxml
import defusedxml.ElementTree as SafeET
import numpy as np

from ralis.labelling.formats.base import (
    Canvas,
    ImageInfo,
    ImageLabels,
    ImportContext,
    LabelFileError,
)
from ralis.labelling.formats.cvat_raster import box_corners, decode_rle, fill_ellipse, fill_polygon

REQUEST_LABEL = "ralis-request"
REGION_ATTRIBUTE = "region"
ORIGIN_ATTRIBUTES = ("project", "project_id", "round")  # a request's project and round
_AREA_TAGS = ("mask", "polygon", "box", "ellipse")  # the shapes that carry pixels
_MAX_XML_BYTES = 2 << 30  # an annotations.xml inside a zip larger than this is refused
_INT = re.compile(r"\s*\d{1,15}\s*")
_RLE = re.compile(r"\s*\d{1,15}(\s*,\s*\d{1,15})*\s*")
_FIX = "export the task from CVAT as 'CVAT for images 1.1' and import that file"


def _check_origin(root: ET.Element, ctx: ImportContext, path: Path) -> None:
    """The request boxes' project and round attributes (CVAT keeps them) must be this
    project's."""
    for box in root.iter("box"):
        if box.get("label") != REQUEST_LABEL:
            continue
        found = {a.get("name"): (a.text or "").strip() for a in box.findall("attribute")}
        origin = {key: found.get(name) or None for key, name in zip(
            ("ralis_project", "ralis_project_id", "ralis_round"), ORIGIN_ATTRIBUTES, strict=True)}
        if origin["ralis_round"] is not None:
            text = origin["ralis_round"]
            origin["ralis_round"] = int(text) if _INT.fullmatch(text) else text
        ctx.check_origin(origin, f"{path.name}: a {REQUEST_LABEL} box")



def _read_root(path: Path) -> ET.Element:
    """The ``<annotations>`` element of an XML file, a CVAT zip, or a folder with
    ``annotations.xml``; one-line errors for everything a user can get wrong."""
    path = Path(path)
    if path.is_dir():
        path = path / "annotations.xml"
    if not path.is_file():
        raise LabelFileError(f"{path}: no such file; give the annotations.xml (or the .zip) that "
                             "CVAT exported as 'CVAT for images 1.1'")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                members = [i for i in zf.infolist() if posixpath.basename(i.filename)
                           == "annotations.xml"]
                if len(members) != 1:
                    raise LabelFileError(f"{path}: the zip holds {len(members)} annotations.xml "
                                         f"files, not 1; {_FIX}")
                if members[0].file_size > _MAX_XML_BYTES:
                    raise LabelFileError(f"{path}: annotations.xml is over 2 GiB; split the task")
                root = SafeET.fromstring(zf.read(members[0]))
        else:
            root = SafeET.parse(path).getroot()
    except ET.ParseError as exc:
        raise LabelFileError(f"{path}: malformed or truncated XML ({exc}); {_FIX}") from None
    except defusedxml.DefusedXmlException as exc:
        raise LabelFileError(f"{path}: XML with forbidden constructs ({type(exc).__name__}: DTD "
                             f"entities or external references); {_FIX}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise LabelFileError(f"{path}: cannot read it ({exc}); {_FIX}") from None
    if root.tag != "annotations":
        raise LabelFileError(f"{path}: the root element is <{root.tag}>, not <annotations>; {_FIX}")
    if root.find("image") is None and root.find("track") is not None:
        raise LabelFileError(f"{path}: this is a 'CVAT for video 1.1' export (tracks, no images); "
                             f"{_FIX}")
    return root


def _floats(el: ET.Element, names: Sequence[str], where: str, optional: bool = False
            ) -> list[float]:
    out = []
    for n in names:
        text = el.get(n)
        if text is None:
            if optional:
                out.append(0.0)
                continue
            raise LabelFileError(f"{where}: attribute {n!r} is missing; {_FIX}")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise LabelFileError(f"{where}: {n}={text[:40]!r} is not a finite number")
        out.append(value)
    return out


def _int(el: ET.Element, name: str, where: str) -> int:
    text = el.get(name)
    if text is None or not _INT.fullmatch(text):
        raise LabelFileError(f"{where}: {name}={str(text)[:40]!r} must be a non-negative "
                             f"integer; {_FIX}")
    return int(text)


def _polygon_xy(el: ET.Element, where: str) -> np.ndarray:
    text = el.get("points")
    if text is None:
        raise LabelFileError(f"{where}: attribute 'points' is missing; {_FIX}")
    try:
        xy = np.array([p.split(",") for p in text.split(";")], dtype=np.float64)
    except ValueError:
        xy = np.zeros((0,))
    if xy.ndim != 2 or xy.shape[1] != 2 or not np.isfinite(xy).all():
        raise LabelFileError(f"{where}: points={text[:60]!r} is not 'x,y;x,y;...' with finite "
                             "numbers")
    if len(xy) < 3:
        raise LabelFileError(f"{where}: a polygon needs at least 3 points, it has {len(xy)}; "
                             "delete it in CVAT and export again")
    return xy


def _mask(el: ET.Element, info: ImageInfo, where: str) -> np.ndarray:
    left, top = _int(el, "left", where), _int(el, "top", where)
    w, h = _int(el, "width", where), _int(el, "height", where)
    if w < 1 or h < 1 or left + w > info.width or top + h > info.height:
        raise LabelFileError(
            f"{where}: mask box left={left} top={top} width={w} height={h} does not fit in the "
            f"{info.height}x{info.width} (HxW) image; {_FIX}")
    text = el.get("rle", "")
    if not _RLE.fullmatch(text):
        raise LabelFileError(f"{where}: rle={text[:60]!r} is not a list of non-negative integer "
                             "counts 'c0, c1, ...'")
    counts = np.array(text.split(","), dtype=np.int64)
    fits = counts.max() <= w * h  # checked first, so that the sum cannot wrap around int64
    total = int(counts.sum()) if fits else None
    if total != w * h:
        raise LabelFileError(f"{where}: the rle counts add up to {total if fits else 'more'}, "
                             f"but the mask box is {h}x{w} (HxW) = {w * h} pixels; {_FIX}")
    full = np.zeros((info.height, info.width), dtype=bool)
    full[top:top + h, left:left + w] = decode_rle(counts, h, w)
    return full


def _rasterise(el: ET.Element, info: ImageInfo, where: str) -> np.ndarray:
    """Boolean ``[H, W]`` pixels of one area shape at native size."""
    if el.tag == "mask":
        return _mask(el, info, where)
    if el.tag == "polygon":
        return fill_polygon(_polygon_xy(el, where), info.height, info.width)
    if el.tag == "box":
        xtl, ytl, xbr, ybr = _floats(el, ("xtl", "ytl", "xbr", "ybr"), where)
        if xbr < xtl or ybr < ytl:
            raise LabelFileError(f"{where}: box corners are inverted (xbr < xtl or ybr < ytl)")
        (rot,) = _floats(el, ("rotation",), where, optional=True)
        return fill_polygon(box_corners(xtl, ytl, xbr, ybr, rot), info.height, info.width)
    cx, cy, rx, ry = _floats(el, ("cx", "cy", "rx", "ry"), where)
    (rot,) = _floats(el, ("rotation",), where, optional=True)
    if rx <= 0 or ry <= 0:
        return np.zeros((info.height, info.width), dtype=bool)
    return fill_ellipse(cx, cy, rx, ry, rot, info.height, info.width)


class _Names:
    """Resolves CVAT image names to project images: exact, else a unique file name."""

    def __init__(self, ctx: ImportContext) -> None:
        self.ctx = ctx
        self.by_base: dict[str, list[str]] = {}
        for name in ctx.images:
            self.by_base.setdefault(posixpath.basename(name), []).append(name)

    def resolve(self, name: str | None, where: str) -> ImageInfo:
        if name is None:
            raise LabelFileError(f"{where}: <image> has no name attribute; {_FIX}")
        self.ctx.check_name(name, where)
        if name in self.ctx.images:
            return self.ctx.images[name]
        hits = self.by_base.get(posixpath.basename(name.replace("\\", "/")), [])
        if len(hits) == 1:
            return self.ctx.images[hits[0]]
        if len(hits) > 1:
            raise LabelFileError(f"{where}: image {name[:120]!r} matches several project images "
                                 f"by file name ({', '.join(sorted(hits)[:4])}); keep the "
                                 "folders in the CVAT image names")
        return self.ctx.image(name, where)  # raises the standard one-line error


def read_labels(path: Path, ctx: ImportContext) -> list[ImageLabels]:
    """The label canvases of a CVAT 1.1 export (see :mod:`.cvat`): one per image with pixel
    shapes."""
    path = Path(path)
    root = _read_root(path)
    _check_origin(root, ctx, path)
    names = _Names(ctx)
    canvases: dict[str, Canvas] = {}
    for i, image in enumerate(root.findall("image")):
        shapes = [el for el in image if el.tag in _AREA_TAGS
                  and not (el.tag == "box" and el.get("label") == REQUEST_LABEL)]
        if not shapes:
            continue  # unlabelled (or only the requests): nothing to read
        where = f"{path.name}: <image id={image.get('id', i)!s}>"
        info = names.resolve(image.get("name"), where)
        where = f"{path.name}: image {info.name!r}"
        size = image.get("width"), image.get("height")
        if size[0] is not None or size[1] is not None:
            w, h = _int(image, "width", where), _int(image, "height", where)
            if (w, h) != (info.width, info.height):
                raise LabelFileError(
                    f"{where}: CVAT says {h}x{w} (HxW) but the image is "
                    f"{info.height}x{info.width}; create the CVAT task from the original "
                    "image files (no resizing)")
        canvas = canvases.setdefault(info.name, Canvas(
            info.height, info.width, ctx.classes.ignore_index, info.name, where))
        for k, el in enumerate(shapes):
            label = el.get("label")
            at = f"{where}: <{el.tag}> #{k} (label {str(label)[:60]!r})"
            if label == REQUEST_LABEL:
                raise LabelFileError(f"{at}: drawn with the '{REQUEST_LABEL}' label; give it "
                                     "a class label in CVAT and export again")
            class_id = ctx.class_id(label, at)
            canvas.add(_rasterise(el, info, at), class_id)
    return [c.finish() for c in canvases.values()]
