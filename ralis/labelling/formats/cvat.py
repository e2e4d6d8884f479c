"""CVAT for images 1.1 XML: requests out as rectangles, pixel labels back from masks and shapes.

Export (``cvat_annotations.xml``, ``cvat_images.txt``, ``cvat_labels.json`` under ``out_dir``):
one ``<image>`` per image with requests, one ``<box label="ralis-request">`` per requested region
(corners ``xtl=left, ytl=top, xbr=left+width, ybr=top+height``: CVAT's coordinates are continuous,
pixel ``c`` spans ``[c, c+1)``), with an ``<attribute name="region">`` holding the region id and
``project``, ``project_id``, ``round`` saying where it comes from (an export whose request boxes
name another project is refused on import). Create
the CVAT task from the images listed in ``cvat_images.txt`` with the labels of ``cvat_labels.json``
(paste it into the label constructor's *Raw* tab), then upload ``cvat_annotations.xml`` as
"CVAT 1.1" annotations. Images are numbered in name order, CVAT's default (lexicographic) sorting.

Import (an ``annotations.xml``, the ``.zip`` CVAT downloads, or a folder holding
``annotations.xml``), for every ``<image>``:

* ``<mask rle="c0, c1, ..." left top width height>``: counts alternate background/foreground,
  start with background (``c0`` may be 0), run row-major over the mask's own box
  ``width x height`` (CVAT stores right/bottom inclusive and writes ``width = right - left + 1``)
  and must add up to ``width * height``; an odd number of counts is normal.
* ``<polygon points="x,y;...">``, class-labelled ``<box>`` (optionally ``rotation``) and
  ``<ellipse>``: a pixel belongs to the shape when its **centre** ``(c + 0.5, r + 0.5)`` is inside
  (even-odd rule). This is the convention of CVAT's own mask exports (boxes and polygons become
  masks there too) and it partitions pixels between polygons sharing an edge; a rasteriser that
  includes the outline (PIL's ``ImageDraw.polygon``) paints one extra row and column, which would
  turn every shared edge into a conflict line.
* ``<box label="ralis-request">`` (the requests themselves), polylines, points, cuboids, skeletons
  and tags carry no pixels and are skipped.

Images are matched by exact name, else by a unique file name (CVAT may drop folders). Results of
one class are a union; pixels two classes claim are conflicts (see :class:`base.Canvas`). Images
without pixel shapes are not returned. The model's prediction is not exported as pre-annotation:
CVAT's export could not tell an untouched prediction from a person's label.
"""

from __future__ import annotations

import json
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
    FORMATS,
    Canvas,
    ExportContext,
    ImageAnswer,
    ImageInfo,
    ImageLabels,
    ImportContext,
    LabelFileError,
    RequestBox,
    class_colors,
)
from ralis.labelling.formats.cvat_raster import (
    box_corners,
    decode_rle,
    encode_rle,
    fill_ellipse,
    fill_polygon,
)

REQUEST_LABEL = "ralis-request"
REGION_ATTRIBUTE = "region"
ORIGIN_ATTRIBUTES = ("project", "project_id", "round")  # a request's project and round
ANNOTATIONS_FILE = "cvat_annotations.xml"
IMAGES_FILE = "cvat_images.txt"
LABELS_FILE = "cvat_labels.json"
REQUEST_COLOR = "#ff00ff"
_AREA_TAGS = ("mask", "polygon", "box", "ellipse")  # the shapes that carry pixels
_MAX_XML_BYTES = 2 << 30  # an annotations.xml inside a zip larger than this is refused
_INT = re.compile(r"\s*\d{1,15}\s*")
_RLE = re.compile(r"\s*\d{1,15}(\s*,\s*\d{1,15})*\s*")
_FIX = "export the task from CVAT as 'CVAT for images 1.1' and import that file"


# ----------------------------------------------------------------------------- writing


def _labels_spec(ctx: ExportContext) -> list[dict]:
    """The task's labels, in the JSON of CVAT's label constructor (Raw tab)."""
    spec: list[dict] = [{"name": n, "color": c, "type": "any", "attributes": []}
                        for n, c in zip(ctx.classes.names, class_colors(ctx.classes), strict=True)]
    spec.append({"name": REQUEST_LABEL, "color": REQUEST_COLOR, "type": "rectangle",
                 "attributes": [{"name": name, "mutable": False, "input_type": "text",
                                 "default_value": "", "values": [""]}
                                for name in (REGION_ATTRIBUTE, *ORIGIN_ATTRIBUTES)]})
    return spec


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def _document(ctx: ExportContext, names: list[str]) -> tuple[ET.Element, dict[str, ET.Element]]:
    """``<annotations>`` with version and meta, and one empty ``<image>`` per name (in order)."""
    root = ET.Element("annotations")
    _sub(root, "version", "1.1")
    task = _sub(_sub(root, "meta"), "task")
    _sub(task, "name", f"{ctx.project} round {ctx.round}")
    _sub(task, "size", str(len(names)))
    _sub(task, "mode", "annotation")
    _sub(task, "overlap", "0")
    _sub(task, "start_frame", "0")
    _sub(task, "stop_frame", str(max(len(names) - 1, 0)))
    labels = _sub(task, "labels")
    for spec in _labels_spec(ctx):
        label = _sub(labels, "label")
        _sub(label, "name", spec["name"])
        _sub(label, "color", spec["color"])
        _sub(label, "type", spec["type"])
        attrs = _sub(label, "attributes")
        for a in spec["attributes"]:
            attr = _sub(attrs, "attribute")
            _sub(attr, "name", a["name"])
            _sub(attr, "mutable", str(a["mutable"]))
            _sub(attr, "input_type", a["input_type"])
            _sub(attr, "default_value", a["default_value"])
            _sub(attr, "values", "\n".join(a["values"]))
    images = {}
    for i, name in enumerate(names):
        info = ctx.images[name]
        images[name] = _sub(root, "image", id=str(i), name=name, width=str(info.width),
                            height=str(info.height))
    return root, images


def _add_request(image: ET.Element, box: RequestBox, source: str, ctx: ExportContext) -> None:
    el = _sub(image, "box", label=REQUEST_LABEL, source=source, occluded="0",
              xtl=f"{box.left:.2f}", ytl=f"{box.top:.2f}", xbr=f"{box.left + box.width:.2f}",
              ybr=f"{box.top + box.height:.2f}", z_order="0")
    _sub(el, "attribute", str(box.region_id), name=REGION_ATTRIBUTE)
    for name, value in zip(ORIGIN_ATTRIBUTES, ctx.origin().values(), strict=True):
        if value is not None:
            _sub(el, "attribute", str(value), name=name)


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


def _write(root: ET.Element, path: Path) -> None:
    ET.indent(root, space="  ")
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _requests_by_image(ctx: ExportContext) -> dict[str, list[RequestBox]]:
    by_image: dict[str, list[RequestBox]] = {}
    for box in ctx.requests:
        if box.image not in ctx.images:
            raise ValueError(f"request {box.region_id} names image {box.image!r}, which is not "
                             "in the export context")
        by_image.setdefault(box.image, []).append(box)
    return by_image


# ----------------------------------------------------------------------------- reading


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
            f"{info.width}x{info.height} (WxH) image; {_FIX}")
    text = el.get("rle", "")
    if not _RLE.fullmatch(text):
        raise LabelFileError(f"{where}: rle={text[:60]!r} is not a list of non-negative integer "
                             "counts 'c0, c1, ...'")
    counts = np.array(text.split(","), dtype=np.int64)
    fits = counts.max() <= w * h  # checked first, so that the sum cannot wrap around int64
    total = int(counts.sum()) if fits else None
    if total != w * h:
        raise LabelFileError(f"{where}: the rle counts add up to {total if fits else 'more'}, "
                             f"but the mask box is {w}x{h} = {w * h} pixels; {_FIX}")
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


# ----------------------------------------------------------------------------- the format


@FORMATS.register("cvat")
class CvatFormat:
    """CVAT for images 1.1 XML (see the module docs)."""

    name = "cvat"
    description = ("CVAT for images 1.1 XML: requests as 'ralis-request' boxes; labels back from "
                   "masks, polygons, boxes and ellipses")

    def export_requests(self, ctx: ExportContext) -> list[Path]:
        by_image = _requests_by_image(ctx)
        names = sorted(by_image)
        root, images = _document(ctx, names)
        for name in names:
            for box in sorted(by_image[name], key=lambda b: b.region_id):
                _add_request(images[name], box, "auto", ctx)
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        xml_path = ctx.out_dir / ANNOTATIONS_FILE
        _write(root, xml_path)
        list_path = ctx.out_dir / IMAGES_FILE
        list_path.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
        labels_path = ctx.out_dir / LABELS_FILE
        labels_path.write_text(json.dumps(_labels_spec(ctx), indent=2) + "\n", encoding="utf-8")
        return [xml_path, list_path, labels_path]

    def import_labels(self, path: Path, ctx: ImportContext) -> list[ImageLabels]:
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
                        f"{where}: CVAT says {w}x{h} (WxH) but the image is "
                        f"{info.width}x{info.height}; create the CVAT task from the original "
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

    def write_answer(self, path: Path, answers: list[ImageAnswer], ctx: ExportContext) -> Path:
        by_image = _requests_by_image(ctx)
        for a in answers:
            if a.boxes:
                by_image[a.name] = list(a.boxes)
        names = sorted({a.name for a in answers} | set(by_image))
        root, images = _document(ctx, names)
        answer_of = {a.name: a for a in answers}
        for name in names:
            boxes = sorted(by_image.get(name, []), key=lambda b: b.region_id)
            for box in boxes:
                _add_request(images[name], box, "file", ctx)
            if name in answer_of:
                _add_answer_masks(images[name], answer_of[name].labels, boxes, ctx)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(root, path)
        return path


def _add_answer_masks(image: ET.Element, labels: np.ndarray, boxes: list[RequestBox],
                      ctx: ExportContext) -> None:
    """One ``<mask>`` per class present inside ``boxes`` (its tight box, CVAT's RLE)."""
    inside = np.zeros(labels.shape, dtype=bool)
    for b in boxes:
        inside[b.top:b.top + b.height, b.left:b.left + b.width] = True
    for class_id, class_name in enumerate(ctx.classes.names):
        pixels = inside & (labels == class_id)
        if not pixels.any():
            continue
        rows, cols = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
        top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
        counts = encode_rle(pixels[top:bottom + 1, left:right + 1])
        _sub(image, "mask", label=class_name, source="manual", occluded="0",
             rle=", ".join(map(str, counts)), left=str(left), top=str(top),
             width=str(right - left + 1), height=str(bottom - top + 1), z_order="0")
