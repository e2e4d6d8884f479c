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

The export is written here; reading an export is :mod:`ralis.labelling.formats.cvat_import`.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from ralis.labelling.formats.base import (
    FORMATS,
    ExportContext,
    ImageAnswer,
    ImageLabels,
    ImportContext,
    RequestBox,
    class_colors,
)
from ralis.labelling.formats.cvat_import import (
    ORIGIN_ATTRIBUTES,
    REGION_ATTRIBUTE,
    REQUEST_LABEL,
    read_labels,
)
from ralis.labelling.formats.cvat_raster import encode_rle

ANNOTATIONS_FILE = "cvat_annotations.xml"
IMAGES_FILE = "cvat_images.txt"
LABELS_FILE = "cvat_labels.json"
REQUEST_COLOR = "#ff00ff"


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
        return read_labels(path, ctx)

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
