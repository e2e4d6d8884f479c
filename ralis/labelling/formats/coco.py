"""COCO instance JSON: requests out as boxes, labels back as polygons or RLE masks.

* Requests: ``coco_requests.json`` with the round's images, one category per class (id =
  class id + 1) plus a ``"ralis-request"`` category, and one box annotation per requested region
  (``bbox [x, y, w, h]`` in native pixels, ``"ralis_region"``: the region id). Its ``info`` says
  where it comes from (``ralis_project``, ``ralis_project_id``, ``ralis_round``); a labels file
  whose ``info`` still says so must come from this project.
* Labels: a COCO JSON whose annotations carry ``segmentation`` as a polygon list
  (``[[x1, y1, x2, y2, ...], ...]``), an uncompressed RLE (``{"size": [h, w], "counts": [..]}``)
  or a compressed RLE (``counts`` a string). RLE runs are column-major over the whole image.
  Category ids are the file's own and are mapped to our classes by name; images are matched by
  ``file_name`` (the project's image name, else a unique basename).

Every RLE/polygon operation goes through ``pycocotools.mask``; everything is type- and range-checked
first, because its C code trusts its input (a truncated RLE string is read past its end, a run
total short of ``h*w`` leaves uninitialised pixels, a huge coordinate allocates without bound):
an annotation's polygons may hold at most :data:`MAX_POINTS` points and :data:`MAX_OUTLINE`
pixels of outline, and are merged into one mask of the image's size.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from ralis.labelling.formats.base import (
    FORMATS,
    Canvas,
    ExportContext,
    ImageAnswer,
    ImageInfo,
    ImageLabels,
    ImportContext,
    LabelFileError,
)

REQUEST_CATEGORY = "ralis-request"
REQUESTS_FILE = "coco_requests.json"

# A compressed COCO RLE string: groups of up to 6 continuation chars ('P'..'o', bit 0x20 set after
# subtracting 48) closed by one final char ('0'..'O'). 7 chars x 5 bits hold any 32-bit count.
_RLE_STRING = re.compile(r"(?:[P-o]{0,6}[0-O])+")
_MAX_COUNT = 2**32 - 1
MAX_POINTS = 100_000  # polygon points per annotation
MAX_OUTLINE = 2_000_000  # outline length per annotation, in pixels (each edge's longer side)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: object) -> bool:
    return (_is_int(x) or isinstance(x, float)) and not isinstance(x, bool)


def _short(x: object) -> str:
    return repr(x)[:80]


def _decode(rles: dict | list) -> np.ndarray:
    """``pycocotools.mask.decode``, minus its NumPy 2 ``__array__(copy=...)`` deprecation noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        return mask_utils.decode(rles)


# --------------------------------------------------------------------------------------- export
def _categories(ctx: ExportContext) -> list[dict[str, Any]]:
    cats = [{"id": i + 1, "name": n, "supercategory": ""} for i, n in enumerate(ctx.classes.names)]
    cats.append({"id": len(cats) + 1, "name": REQUEST_CATEGORY, "supercategory": ""})
    return cats


def _images(infos: list[ImageInfo]) -> list[dict[str, Any]]:
    return [{"id": i + 1, "file_name": im.name, "width": im.width, "height": im.height}
            for i, im in enumerate(infos)]


def _box_mask(height: int, width: int, boxes: list) -> np.ndarray:
    """``[H, W]`` bool: True inside any of ``boxes`` (RequestBoxes)."""
    inside = np.zeros((height, width), dtype=bool)
    for b in boxes:
        inside[b.top:b.top + b.height, b.left:b.left + b.width] = True
    return inside


def _write_json(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------- import
class _Reader:
    """Parses one COCO file against a project; every failure is a one-line LabelFileError."""

    def __init__(self, path: Path, ctx: ImportContext) -> None:
        self.path, self.ctx, self.file = path, ctx, path.name

    def fail(self, where: str, what: str) -> LabelFileError:
        return LabelFileError(f"{self.file}: {where}: {what}" if where else f"{self.file}: {what}")

    def load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise self.fail("", "is not UTF-8 text; give the COCO JSON the tool exported") from None
        except OSError as e:
            raise self.fail("", f"cannot be read ({e.strerror}); check the path") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise self.fail("", f"is not valid JSON ({e.msg} at line {e.lineno} column "
                                f"{e.colno}; truncated?); export the COCO JSON again") from None
        except RecursionError:
            raise self.fail("", "is nested too deeply to be COCO JSON") from None
        if not isinstance(doc, dict):
            raise self.fail("", "is not a COCO JSON object (expected {\"images\": [...], "
                                "\"annotations\": [...], \"categories\": [...]})")
        for key in ("images", "annotations", "categories"):
            if not isinstance(doc.get(key), list):
                raise self.fail("", f"has no {key!r} list; is this a COCO instances JSON?")
        return doc

    def entries(self, doc: dict[str, Any], key: str, fields: dict[str, str]) -> list[dict]:
        """The dict entries of ``doc[key]``, each checked to carry ``fields`` (name -> kind:
        ``"int"``, ``"str"`` or ``"id"`` = an integer or a string)."""
        checks = {"int": (_is_int, "an integer"), "str": (lambda v: isinstance(v, str), "a string"),
                  "id": (lambda v: _is_int(v) or isinstance(v, str), "an integer id")}
        out = []
        for i, e in enumerate(doc[key]):
            where = f"{key}[{i}]"
            if not isinstance(e, dict):
                raise self.fail(where, "is not a JSON object")
            for name, kind in fields.items():
                if name not in e:
                    raise self.fail(where, f"has no {name!r}; every COCO {key[:-1]} needs one")
                ok, what = checks[kind]
                if not ok(e[name]):
                    raise self.fail(where, f"{name!r} is {_short(e[name])}, not {what}")
            out.append(e)
        return out

    def categories(self, doc: dict[str, Any]) -> dict[object, str]:
        cats: dict[object, str] = {}
        for i, c in enumerate(self.entries(doc, "categories", {"id": "id", "name": "str"})):
            if c["id"] in cats:
                raise self.fail(f"categories[{i}]", f"id {_short(c['id'])} is used twice")
            cats[c["id"]] = c["name"]
        return cats

    def images(self, doc: dict[str, Any]) -> dict[object, ImageInfo]:
        fields = {"id": "id", "file_name": "str", "width": "int", "height": "int"}
        by_base: dict[str, list[str]] = {}
        for name in self.ctx.images:
            by_base.setdefault(PurePosixPath(name).name, []).append(name)
        found: dict[object, ImageInfo] = {}
        seen: dict[str, int] = {}
        for i, e in enumerate(self.entries(doc, "images", fields)):
            where = f"images[{i}] ({e['file_name'][:80]!r})"
            info = self._match(e["file_name"], by_base, where)
            if e["id"] in found:
                raise self.fail(where, f"image id {_short(e['id'])} is used twice")
            if info.name in seen:
                raise self.fail(where, f"names the same project image as images[{seen[info.name]}]"
                                       "; list each image once")
            if (e["height"], e["width"]) != (info.height, info.width):
                raise self.fail(where, f"is {e['height']}x{e['width']} (HxW) but the project "
                                       f"image is {info.height}x{info.width}; label the image at "
                                       "its native size")
            found[e["id"]], seen[info.name] = info, i
        return found

    def _match(self, file_name: str, by_base: dict[str, list[str]], where: str) -> ImageInfo:
        self.ctx.check_name(file_name, f"{self.file}: {where}")
        if file_name in self.ctx.images:
            return self.ctx.images[file_name]
        base = PurePosixPath(file_name.replace("\\", "/")).name
        names = by_base.get(base, [])
        if len(names) == 1:
            return self.ctx.images[names[0]]
        if len(names) > 1:
            raise self.fail(where, f"matches several project images by basename "
                                   f"({', '.join(names[:3])}); use the full project image name")
        return self.ctx.image(file_name, f"{self.file}: {where}")  # raises: not in the project

    # ------------------------------------------------------------------ segmentation -> mask
    def mask(self, seg: object, info: ImageInfo, where: str) -> np.ndarray:
        """``[H, W]`` bool mask of one annotation's ``segmentation``."""
        h, w = info.height, info.width
        if isinstance(seg, list):
            return self._polygons(seg, h, w, where)
        if isinstance(seg, dict):
            size, counts = seg.get("size"), seg.get("counts")
            if not (isinstance(size, list) and len(size) == 2 and all(map(_is_int, size))):
                raise self.fail(where, f"RLE 'size' is {_short(size)}, not [height, width]")
            if size != [h, w]:
                raise self.fail(where, f"RLE size {size} (HxW) differs from the image's [{h}, {w}]"
                                       "; masks must have their image's size")
            if isinstance(counts, list):
                return self._uncompressed(counts, h, w, where)
            if isinstance(counts, str):
                return self._compressed(counts, h, w, where)
            raise self.fail(where, "RLE 'counts' must be a list of run lengths or a compressed "
                                   f"string, not {_short(counts)}")
        raise self.fail(where, f"'segmentation' is {_short(seg)}; expected polygons or an RLE")

    def _polygons(self, polys: list, h: int, w: int, where: str) -> np.ndarray:
        if not polys:
            raise self.fail(where, "has no segmentation (a box only?); label with polygons or "
                                   "masks")
        limit = 4 * (h + w)  # far outside the image: bounds pycocotools' boundary rasterisation
        points = sum(len(p) // 2 for p in polys if isinstance(p, list))
        if points > MAX_POINTS:
            raise self.fail(where, f"has {points} polygon points, more than the {MAX_POINTS} "
                                   "ralis reads per annotation; simplify the polygons or export "
                                   "masks (RLE)")
        for j, p in enumerate(polys):
            if not isinstance(p, list) or not all(map(_is_number, p)):
                raise self.fail(where, f"polygon {j} is not a flat list of numbers")
            if len(p) % 2:
                raise self.fail(where, f"polygon {j} has an odd number of coordinates "
                                       f"({len(p)}); polygons are [x1, y1, x2, y2, ...]")
            if len(p) < 6:
                raise self.fail(where, f"polygon {j} has {len(p) // 2} points; a polygon needs "
                                       "at least 3")
            if not all(-limit <= v <= limit and math.isfinite(v) for v in p):
                raise self.fail(where, f"polygon {j} has a coordinate that is not finite or lies "
                                       "far outside the image; coordinates are native pixels")
        xy = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polys]
        outline = sum(float(np.abs(np.roll(q, -1, axis=0) - q).max(axis=1).sum()) for q in xy)
        if outline > MAX_OUTLINE:  # pycocotools' memory grows with the outlines' length
            raise self.fail(where, f"its polygons' outlines are {outline:.0f} pixels long, more "
                                   f"than the {MAX_OUTLINE} ralis reads per annotation; "
                                   "simplify the polygons or export masks (RLE)")
        rles = mask_utils.frPyObjects([[float(v) for v in p] for p in polys], h, w)
        return _decode(mask_utils.merge(rles)).astype(bool)  # the union: one [H, W] mask

    def _uncompressed(self, counts: list, h: int, w: int, where: str) -> np.ndarray:
        if not all(_is_int(c) and 0 <= c <= _MAX_COUNT for c in counts):
            raise self.fail(where, "uncompressed RLE counts must be non-negative integers")
        if sum(counts) != h * w:
            raise self.fail(where, f"uncompressed RLE counts add up to {sum(counts)} pixels, not "
                                   f"{h}x{w} = {h * w}; the RLE is corrupt or for another image")
        rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        return self._decode_exact(rle["counts"], h, w, where)

    def _compressed(self, counts: str, h: int, w: int, where: str) -> np.ndarray:
        if not _RLE_STRING.fullmatch(counts):
            raise self.fail(where, "compressed RLE counts are not a valid COCO RLE string "
                                   "(truncated or corrupted); export the masks again")
        return self._decode_exact(counts, h, w, where)

    def _decode_exact(self, counts: str | bytes, h: int, w: int, where: str) -> np.ndarray:
        """Decode a well-formed RLE string whose runs must total exactly ``h*w``.

        pycocotools refuses runs past the end but leaves a short RLE's tail uninitialised, so a
        second decode into ``h*w - 1`` pixels must fail (runs total at least ``h*w``)."""
        bad = self.fail(where, f"RLE runs do not cover the {h}x{w} image exactly; the RLE is "
                               "corrupt or for another image")
        try:
            m = _decode({"size": [h, w], "counts": counts})
        except ValueError:
            raise bad from None
        try:
            _decode({"size": [1, h * w - 1], "counts": counts})
        except ValueError:
            return m.astype(bool)
        raise bad

    # ------------------------------------------------------------------ whole file
    def read(self) -> list[ImageLabels]:
        doc = self.load()
        info = doc.get("info")
        if isinstance(info, dict):  # kept by tools that keep the requests file's info
            self.ctx.check_origin(info, f"{self.file}: info")
        cats = self.categories(doc)
        images = self.images(doc)
        canvases = {k: Canvas(im.height, im.width, self.ctx.classes.ignore_index, im.name,
                              f"{self.file}: image {im.name!r}") for k, im in images.items()}
        fields = {"image_id": "id", "category_id": "id"}
        for i, a in enumerate(self.entries(doc, "annotations", fields)):
            where = f"annotations[{i}]" + (f" (id {_short(a['id'])})" if "id" in a else "")
            if a["image_id"] not in images:
                raise self.fail(where, f"image_id {_short(a['image_id'])} is not in 'images'")
            if a["category_id"] not in cats:
                raise self.fail(where, f"category_id {_short(a['category_id'])} is not in "
                                       "'categories'")
            name = cats[a["category_id"]]
            if name == REQUEST_CATEGORY:
                continue
            class_id = self.ctx.class_id(name, f"{self.file}: {where}")
            if "segmentation" not in a:
                raise self.fail(where, "has no 'segmentation'; label with polygons or masks")
            canvas = canvases[a["image_id"]]
            canvas.add(self.mask(a["segmentation"], images[a["image_id"]], where), class_id)
        return [c.finish() for c in canvases.values()]


# --------------------------------------------------------------------------------------- format
@FORMATS.register("coco")
class CocoFormat:
    """COCO instances JSON (polygons, compressed or uncompressed RLE); see the module docs."""

    name = "coco"
    description = "COCO JSON: requests as boxes; labels as polygons or RLE masks (any tool)"

    def export_requests(self, ctx: ExportContext) -> list[Path]:
        """Write ``ctx.out_dir/coco_requests.json`` (one box annotation per requested region)."""
        infos = [ctx.images[k] for k in sorted(ctx.images)]
        image_doc = _images(infos)
        ids = {d["file_name"]: d["id"] for d in image_doc}
        request_cat = len(ctx.classes.names) + 1
        anns = []
        for n, r in enumerate(ctx.requests):
            anns.append({"id": n + 1, "image_id": ids[r.image], "category_id": request_cat,
                         "bbox": [r.left, r.top, r.width, r.height], "area": r.width * r.height,
                         "iscrowd": 0, "segmentation": [], "ralis_region": r.region_id})
        doc = {"info": {"description": f"ralis label requests: project {ctx.project}, round "
                                       f"{ctx.round}; label inside each {REQUEST_CATEGORY} box",
                        **ctx.origin()},
               "licenses": [], "images": image_doc, "categories": _categories(ctx),
               "annotations": anns}
        return [_write_json(ctx.out_dir / REQUESTS_FILE, doc)]

    def import_labels(self, path: Path, ctx: ImportContext) -> list[ImageLabels]:
        """One canvas per image listed in the file (union per class, conflicts between classes)."""
        return _Reader(Path(path), ctx).read()

    def write_answer(self, path: Path, answers: list[ImageAnswer], ctx: ExportContext) -> Path:
        """The file a tool exports after a person labelled ``answers`` inside their boxes: per
        image the request boxes (category ``ralis-request``) and one compressed-RLE annotation
        (``iscrowd`` 1) per class present inside them."""
        infos = [ctx.images[a.name] for a in answers]
        request_cat = len(ctx.classes.names) + 1
        anns: list[dict[str, Any]] = []
        for image_id, (ans, info) in enumerate(zip(answers, infos, strict=True), start=1):
            labels = np.asarray(ans.labels)
            if labels.shape != (info.height, info.width):
                raise ValueError(f"answer for {ans.name!r} is {labels.shape}, image is "
                                 f"{(info.height, info.width)}")
            boxes = ans.boxes or [r for r in ctx.requests if r.image == ans.name]
            for b in boxes:
                anns.append({"id": len(anns) + 1, "image_id": image_id,
                             "category_id": request_cat, "segmentation": [],
                             "bbox": [b.left, b.top, b.width, b.height],
                             "area": b.width * b.height, "iscrowd": 0})
            inside = _box_mask(info.height, info.width, boxes)
            for c in np.unique(labels[inside]):
                if c == ctx.classes.ignore_index:
                    continue
                m = np.asfortranarray((labels == c) & inside, dtype=np.uint8)
                rle = mask_utils.encode(m)
                anns.append({"id": len(anns) + 1, "image_id": image_id,
                             "category_id": int(c) + 1,
                             "segmentation": {"size": [info.height, info.width],
                                              "counts": rle["counts"].decode("ascii")},
                             "area": int(mask_utils.area(rle)),
                             "bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": 1})
        doc = {"info": {"description": "ralis scripted annotator", **ctx.origin()},
               "licenses": [],
               "images": _images(infos), "categories": _categories(ctx), "annotations": anns}
        return _write_json(Path(path), doc)
