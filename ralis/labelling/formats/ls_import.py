"""Reading a Label Studio export (see :mod:`ralis.labelling.formats.labelstudio`): the project's JSON
or JSON_MIN export, the latest non-cancelled annotation of each task, its brush (RLE) and polygon
results painted at native pixels into one label canvas per image.

The control names of the labelling config ralis exports are defined here, where the results are
recognised by them; the export writes them.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ralis.labelling.formats import ls_rle
from ralis.labelling.formats.base import Canvas, ImageLabels, ImportContext, LabelFileError
from ralis.labelling.formats.ls_tasks import resolve_image

CONFIG_FILE = "labelstudio_config.xml"
IMAGE, BRUSH, POLYGON, REQUEST = "image", "label", "polygon", "request"  # control names
_MIN_TYPES = ("brushlabels", "polygonlabels", "rectanglelabels")



def _read_json(path: Path) -> Any:
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise LabelFileError(f"cannot read {path} ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise LabelFileError(f"{path} is not UTF-8 text; pass the JSON file Label Studio "
                             "exported") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabelFileError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column "
                             f"{exc.colno}); the file is truncated or not Label Studio's JSON "
                             "export: export the project again (Export > JSON)") from None


def _time(value: object, where: str) -> datetime:
    if value is None or value == "":
        return datetime.min.replace(tzinfo=UTC)
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise LabelFileError(f"{where}: time {str(value)[:40]!r} is not an ISO date; export the "
                             "project again") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _latest(annotations: list[dict], where: str) -> tuple[int, dict] | None:
    """The latest annotation that was not cancelled (module docs), with its index."""
    best: tuple[tuple[datetime, int], int, dict] | None = None
    for k, a in enumerate(annotations):
        if not isinstance(a, dict):
            raise LabelFileError(f"{where}: annotation {k} is not an object; export the project "
                                 "again (Export > JSON)")
        if a.get("was_cancelled") or a.get("skipped"):
            continue
        at = f"{where} annotation {k}"
        key = (_time(a.get("updated_at") or a.get("created_at"), at), k)
        if best is None or key >= best[0]:
            best = (key, k, a)
    return None if best is None else (best[1], best[2])


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _one_label(value: dict, key: str, ctx: ImportContext, where: str) -> int:
    labels = value.get(key)
    if not isinstance(labels, list) or len(labels) != 1:
        raise LabelFileError(f"{where}: value.{key} must name exactly one class, got "
                             f"{str(labels)[:80]}; give every region one label")
    return ctx.class_id(labels[0], where)


def _check_size(result: dict, height: int, width: int, where: str, required: bool) -> None:
    ow, oh = result.get("original_width"), result.get("original_height")
    if ow is None and oh is None and not required:
        return
    if not (isinstance(ow, int) and isinstance(oh, int)):
        raise LabelFileError(f"{where}: original_width/original_height missing or not integers; "
                             "export the project again")
    if (oh, ow) != (height, width):
        raise LabelFileError(f"{where}: a {oh}x{ow} (HxW) result for an image of {height}x{width}"
                             "; the task shows another image than the project's, or the image "
                             "was resized: label the original image")


def polygon_mask(points: object, height: int, width: int, where: str) -> np.ndarray:
    """Percent points ``[[x, y], ...]`` -> boolean ``[H, W]``: the pixels whose centre is inside
    (even-odd rule; a centre on a left/top edge is inside, on a right/bottom edge outside).

    Scanlines through the pixel centres, vectorised over rows x edges."""
    if (not isinstance(points, list) or len(points) < 3
            or not all(isinstance(p, list | tuple) and len(p) == 2 and all(map(_number, p))
                       for p in points)):
        raise LabelFileError(f"{where}: value.points must be at least 3 [x, y] pairs in percent; "
                             "delete the broken polygon or export again")
    xy = np.asarray(points, dtype=np.float64) * [width / 100.0, height / 100.0]  # [E, 2] pixels
    x0, y0 = xy[:, 0], xy[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)  # edge e runs from point e to point e+1
    mask = np.zeros((height, width), dtype=bool)
    r0 = int(np.clip(np.ceil(y0.min() - 0.5), 0, height))
    r1 = int(np.clip(np.ceil(y0.max() - 0.5), 0, height))
    if r1 <= r0:
        return mask
    yc = (np.arange(r0, r1) + 0.5)[:, None]  # [R, 1] row centres
    crosses = ((y0 <= yc) & (yc < y1)) | ((y1 <= yc) & (yc < y0))  # [R, E], half-open
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = x0 + (yc - y0) * (x1 - x0) / (y1 - y0)
    xs = np.sort(np.where(crosses, xs, np.inf), axis=1)  # crossings first, in x order
    pairs = xs.shape[1] // 2 * 2
    start, stop = xs[:, 0:pairs:2], xs[:, 1:pairs:2]  # [R, P] inside spans [start, stop)
    rows = np.broadcast_to(np.arange(r1 - r0)[:, None], start.shape)[np.isfinite(stop)]
    c0 = np.clip(np.ceil(start[np.isfinite(stop)] - 0.5), 0, width).astype(np.int64)
    c1 = np.clip(np.ceil(stop[np.isfinite(stop)] - 0.5), 0, width).astype(np.int64)
    diff = np.zeros((r1 - r0, width + 1), dtype=np.int32)
    np.add.at(diff, (rows, c0), 1)
    np.add.at(diff, (rows, c1), -1)
    mask[r0:r1] = np.cumsum(diff, axis=1)[:, :width] > 0
    return mask


def _paint(canvas: Canvas, result: object, ctx: ImportContext, where: str) -> None:
    """Add one result to ``canvas`` (or ignore a request box)."""
    if not isinstance(result, dict) or not isinstance(result.get("value"), dict):
        raise LabelFileError(f"{where}: a result needs a type and a value object; export the "
                             "project again (Export > JSON)")
    kind, value = str(result.get("type", "")).lower(), result["value"]
    h, w = canvas.shape
    if kind == "rectanglelabels" and result.get("from_name") == REQUEST:
        return
    if kind == "brushlabels":
        if value.get("format") != "rle" or "rle" not in value:
            raise LabelFileError(f"{where}: brush value.format is {value.get('format')!r}, ralis "
                                 "reads format 'rle' with value.rle; export as JSON")
        _check_size(result, h, w, where, required=True)
        class_id = _one_label(value, "brushlabels", ctx, where)
        canvas.add(ls_rle.decode(value["rle"], h, w, where), class_id)
    elif kind == "polygonlabels":
        _check_size(result, h, w, where, required=False)
        class_id = _one_label(value, "polygonlabels", ctx, where)
        canvas.add(polygon_mask(value.get("points"), h, w, where), class_id)
    else:
        raise LabelFileError(
            f"{where}: a {kind or 'untyped'} result of control {result.get('from_name')!r}; ralis "
            f"reads brushlabels ({BRUSH!r}) and polygonlabels ({POLYGON!r}) and ignores the "
            f"{REQUEST!r} boxes: use the labelling config ralis exported ({CONFIG_FILE})")


def _min_kind(value: object) -> str | None:
    """The result type of a JSON_MIN value (its label key: the converter drops ``type``)."""
    if isinstance(value, dict):
        for kind in _MIN_TYPES:
            if kind in value:
                return kind
    return None


def _from_min(record: dict, k: int) -> dict:
    """A JSON_MIN record (one annotation; task data and results flattened, results as lists of
    values under their control's name) -> a task of the JSON export."""
    result, data = [], {}
    for key, value in record.items():
        if isinstance(value, list) and value and all(_min_kind(v) for v in value):
            for v in value:
                r = {"type": _min_kind(v), "from_name": key, "value": v}
                r.update({s: v[s] for s in ("original_width", "original_height") if s in v})
                result.append(r)
        else:
            data[key] = value
    annotation = {"result": result, "created_at": record.get("created_at"),
                  "updated_at": record.get("updated_at")}
    annotations = [annotation] if record.get("annotation_id") is not None else []
    return {"id": record.get("id", f"record {k}"), "data": data, "annotations": annotations}


def _tasks(doc: object, path: Path) -> list[dict]:
    """The tasks of a JSON or JSON_MIN export (JSON_MIN records of one task merged)."""
    if not isinstance(doc, list):
        raise LabelFileError(f"{path}: expected a list of tasks (Label Studio's JSON export), "
                             f"got a JSON {type(doc).__name__}; export the project as JSON")
    tasks: list[dict] = []
    merged: dict[object, dict] = {}
    for k, item in enumerate(doc):
        if not isinstance(item, dict):
            raise LabelFileError(f"{path}: entry {k} is not a task object; export the project "
                                 "as JSON")
        if "data" in item or "annotations" in item:
            tasks.append(item)
            continue
        task = _from_min(item, k)  # JSON_MIN: a record per annotation
        if task["id"] in merged:
            merged[task["id"]]["annotations"] += task["annotations"]
        else:
            merged[task["id"]] = task
            tasks.append(task)
    return tasks


def read_labels(path: Path, ctx: ImportContext) -> list[ImageLabels]:
    """The label canvases of a Label Studio JSON or JSON_MIN export (see
    :mod:`.labelstudio`): one per image whose latest annotation has results."""
    path = Path(path)
    canvases: dict[str, Canvas] = {}
    for k, task in enumerate(_tasks(_read_json(path), path)):
        where = f"{path}: task {task.get('id', k)}"
        data, annotations = task.get("data"), task.get("annotations", [])
        if not isinstance(data, dict) or not isinstance(annotations, list):
            raise LabelFileError(f"{where}: a task needs a data object and an annotations "
                                 "list; export the project as JSON")
        name = resolve_image(data, ctx, where)
        latest = _latest(annotations, where)
        if latest is None:
            continue
        a_index, annotation = latest
        result = annotation.get("result") or []
        if not isinstance(result, list):
            raise LabelFileError(f"{where} annotation {a_index}: result is not a list; "
                                 "export the project again")
        info = ctx.images[name]
        canvas = canvases.get(name)
        if canvas is None:
            canvas = canvases[name] = Canvas(info.height, info.width,
                                             ctx.classes.ignore_index, name, where)
        for r, item in enumerate(result):
            _paint(canvas, item, ctx, f"{where} annotation {a_index} result {r}")
    return [c.finish() for c in canvases.values()]
