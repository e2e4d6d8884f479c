"""Label Studio: tasks with the requested boxes out, the project's JSON export back in.

Export (``rounds/<n>/``):

* ``labelstudio_config.xml``: the labelling config to paste into the project's settings
  (Settings > Labeling Interface > Code): an ``Image`` named ``image`` (``$image``), a
  ``BrushLabels`` control ``label`` and a ``PolygonLabels`` control ``polygon`` with one ``Label``
  per class (value = class name, background = its colour), and a ``RectangleLabels`` control
  ``request`` with the one label ``label this region``;
* ``labelstudio_tasks.json``: one task per image with requests, to import in the project (Import >
  upload the file). ``data`` holds ``image`` (the URL Label Studio loads), ``ralis_image`` (the
  image's name in the ralis project; the import uses it), where the task comes from
  (``ralis_project``, ``ralis_project_id``, ``ralis_round``) and ``ralis_regions`` (the
  requested region ids). The image URL is ``--image-root-url`` + ``/`` + the name when one is
  given (a web server that serves the images folder), else Label Studio's local files,
  ``/data/local-files/?d=<images folder's name>/<name>``: start Label Studio with
  ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and
  ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<the folder that holds the images folder>`` (it refuses
  a storage at the root itself), and add a *Local files* storage whose absolute path is the
  images folder (Settings > Cloud Storage; no need to sync it: the tasks file has the tasks).
  Elsewhere, ``--image-root-url "/data/local-files/?d=<path from the root>"`` works too.
  The requested boxes come as a prediction (pre-annotation): one ``rectanglelabels`` result per
  box (control ``request``, in percent of the image); when the project has a model, the
  prediction also carries its predicted classes *inside the requested boxes* as ``brushlabels``
  RLE masks (control ``label``), to correct rather than paint from scratch. A pre-annotation
  that the annotator submits unchanged counts as their label.

Import: the project's export in Label Studio's ``JSON`` format (Export > JSON): a list of tasks
with ``data`` and ``annotations[*].result``. Per task, the **latest non-cancelled annotation**
counts: annotations with ``was_cancelled`` (skipped) are dropped, and of the rest the one with the
latest ``updated_at`` (else ``created_at``; equal or missing times: the later one in the list)
wins; a task without one labels nothing. The image is ``data.ralis_image``, else found from the
image URL, and a task of another project is refused (:mod:`ralis.labelling.formats.ls_tasks`).
Results: ``brushlabels`` with ``value.format == "rle"`` (its ``original_width`` /
``original_height`` must be the image's size) and ``polygonlabels`` (percent points, rasterised
at native pixels: a pixel is inside when its centre is); ``rectanglelabels`` of the ``request``
control are ignored; any other result is an error. Several results of one class are a union,
pixels two classes claim are conflicts (:class:`~ralis.labelling.formats.base.Canvas`); tasks of
one image are merged into one canvas. The ``JSON_MIN`` export (one flat record per annotation,
results under their control names, cancelled annotations already left out) is read the same way.

Verified against label-studio 1.23.2 / label-studio-sdk 2.1.2 by ``benchmarks/labelstudio_e2e.py``
(a real server: config, tasks, local files, annotations, JSON and JSON_MIN exports) and
``benchmarks/make_ls_golden.py`` (the SDK's RLE bytes).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

import numpy as np

from ralis.labelling.formats import ls_rle
from ralis.labelling.formats.base import (
    FORMATS,
    Canvas,
    ExportContext,
    ImageAnswer,
    ImageLabels,
    ImportContext,
    LabelFileError,
    RequestBox,
    class_colors,
)
from ralis.labelling.formats.ls_tasks import resolve_image

TASKS_FILE = "labelstudio_tasks.json"
CONFIG_FILE = "labelstudio_config.xml"
IMAGE, BRUSH, POLYGON, REQUEST = "image", "label", "polygon", "request"  # control names
REQUEST_LABEL = "label this region"
REQUEST_COLOR = "#ff00ff"
LOCAL_FILES_URL = "/data/local-files/?d="
_MIN_TYPES = ("brushlabels", "polygonlabels", "rectanglelabels")


# ----------------------------------------------------------------------------- export


def label_config(ctx: ExportContext) -> str:
    """The labelling config (XML) for ``ctx``'s classes."""
    labels = "\n".join(f"    <Label value={quoteattr(n)} background={quoteattr(c)}/>"
                       for n, c in zip(ctx.classes.names, class_colors(ctx.classes), strict=True))
    header = (f"ralis project {ctx.project}, round {ctx.round}: paint the classes inside the "
              f"'{REQUEST_LABEL}' boxes; pixels left unpainted are not labels")
    return f"""<View>
  <Header value={quoteattr(header)}/>
  <Image name="{IMAGE}" value="$image" zoom="true" zoomControl="true"/>
  <BrushLabels name="{BRUSH}" toName="{IMAGE}">
{labels}
  </BrushLabels>
  <PolygonLabels name="{POLYGON}" toName="{IMAGE}" strokeWidth="2">
{labels}
  </PolygonLabels>
  <RectangleLabels name="{REQUEST}" toName="{IMAGE}">
    <Label value="{REQUEST_LABEL}" background="{REQUEST_COLOR}"/>
  </RectangleLabels>
</View>
"""


def image_url(ctx: ExportContext, name: str) -> str:
    """Where Label Studio loads image ``name`` from (see the module docs): under
    ``ctx.image_root_url``, else ``/data/local-files/?d=<images folder's name>/<name>``."""
    if ctx.image_root_url:
        return ctx.image_root_url.rstrip("/") + "/" + quote(name, safe="/")
    path = PurePosixPath(Path(ctx.images[name].path).as_posix())
    parts = PurePosixPath(name).parts
    if path.parts[-len(parts):] == parts and len(path.parts) > len(parts) + 1:
        name = f"{path.parents[len(parts) - 1].name}/{name}"  # the images folder's name first
    return LOCAL_FILES_URL + quote(name, safe="/")


def _boxes_by_image(ctx: ExportContext) -> dict[str, list[RequestBox]]:
    by_image: dict[str, list[RequestBox]] = {}
    for box in ctx.requests:
        by_image.setdefault(box.image, []).append(box)
    return by_image


def _inside(boxes: Sequence[RequestBox], height: int, width: int) -> np.ndarray:
    """Boolean ``[H, W]``: the union of ``boxes``."""
    inside = np.zeros((height, width), dtype=bool)
    for b in boxes:
        inside[b.top: b.top + b.height, b.left: b.left + b.width] = True
    return inside


def _size(height: int, width: int) -> dict[str, int]:
    return {"original_width": width, "original_height": height, "image_rotation": 0}


def request_result(box: RequestBox, height: int, width: int) -> dict[str, Any]:
    """One requested box as a ``rectanglelabels`` result (percent of the native size)."""
    value = {"x": 100.0 * box.left / width, "y": 100.0 * box.top / height,
             "width": 100.0 * box.width / width, "height": 100.0 * box.height / height,
             "rotation": 0, "rectanglelabels": [REQUEST_LABEL]}
    return {"id": f"request-{box.region_id}", "type": "rectanglelabels", "from_name": REQUEST,
            "to_name": IMAGE, **_size(height, width), "value": value}


def brush_results(labels: np.ndarray, inside: np.ndarray, names: Sequence[str],
                  prefix: str) -> list[dict[str, Any]]:
    """One ``brushlabels`` RLE result per class id of ``labels [H, W]`` present in ``inside``
    (ids outside ``0..len(names)-1``, e.g. the ignore value, are left unpainted)."""
    h, w = labels.shape
    present = np.unique(labels[inside])
    out = []
    for c in present[(present >= 0) & (present < len(names))].tolist():
        rle = ls_rle.encode((labels == c) & inside)
        out.append({"id": f"{prefix}-{c}", "type": "brushlabels", "from_name": BRUSH,
                    "to_name": IMAGE, **_size(h, w),
                    "value": {"format": "rle", "rle": rle, "brushlabels": [names[c]]}})
    return out


def _task(ctx: ExportContext, name: str, boxes: Sequence[RequestBox]) -> dict[str, Any]:
    """The task of image ``name`` as ralis exports it (data + the requests as a prediction)."""
    info = ctx.images[name]
    h, w = info.height, info.width
    results = [request_result(b, h, w) for b in boxes]
    if ctx.prediction is not None:
        pred = ctx.prediction(name)  # type: ignore[operator]
        if pred is not None:
            pred = np.asarray(pred)
            if pred.shape != (h, w):
                raise ValueError(f"prediction for {name} is {pred.shape}, the image is {(h, w)}")
            results += brush_results(pred, _inside(boxes, h, w), ctx.classes.names, "model")
    data = {"image": image_url(ctx, name), "ralis_image": name, **ctx.origin(),
            "ralis_regions": [int(b.region_id) for b in boxes]}
    return {"data": data,
            "predictions": [{"model_version": f"ralis round {ctx.round}", "result": results}]}


# ----------------------------------------------------------------------------- import


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
        raise LabelFileError(f"{where}: a {ow}x{oh} (WxH) result for an image of {width}x{height}"
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


# ----------------------------------------------------------------------------- the format


@FORMATS.register("labelstudio")
class LabelStudioFormat:
    name = "labelstudio"
    description = ("Label Studio: tasks + labelling config out (requests as pre-annotated boxes); "
                   "the project's JSON export in")

    def export_requests(self, ctx: ExportContext) -> list[Path]:
        tasks = [_task(ctx, name, boxes) for name, boxes in _boxes_by_image(ctx).items()]
        tasks_path, config_path = ctx.out_dir / TASKS_FILE, ctx.out_dir / CONFIG_FILE
        tasks_path.write_text(json.dumps(tasks, indent=1) + "\n")
        config_path.write_text(label_config(ctx))
        return [tasks_path, config_path]

    def import_labels(self, path: Path, ctx: ImportContext) -> list[ImageLabels]:
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

    def write_answer(self, path: Path, answers: list[ImageAnswer], ctx: ExportContext) -> Path:
        """The JSON export after an annotator painted each answer's labels inside its boxes
        (one ``brushlabels`` result per class; ignore pixels unpainted), submitted on top of
        ralis's pre-annotation (whose request boxes the annotation keeps). Laid out as Label
        Studio 1.23's export: ``predictions`` as ids, the annotation's parent ``prediction``
        in full (the import reads neither)."""
        by_image = _boxes_by_image(ctx)
        answered = {a.name: a for a in answers}
        stamp = "2024-01-01T00:00:00.000000Z"
        tasks = []
        for task_id, name in enumerate(dict.fromkeys([*by_image, *answered]), start=1):
            answer = answered.get(name)
            boxes = (answer.boxes if answer is not None and answer.boxes
                     else by_image.get(name, []))
            exported = _task(ctx, name, boxes)
            prediction = {"id": task_id, **exported["predictions"][0], "task": task_id,
                          "project": 1}
            task = {"id": task_id, "annotations": [], "drafts": [], "predictions": [task_id],
                    "data": exported["data"], "meta": {}, "created_at": stamp,
                    "updated_at": stamp, "inner_id": task_id, "total_annotations": 0,
                    "cancelled_annotations": 0, "total_predictions": 1, "project": 1}
            if answer is not None:
                info = ctx.images[name]
                labels = np.asarray(answer.labels)
                if labels.shape != (info.height, info.width):
                    raise ValueError(f"answer for {name} is {labels.shape}, the image is "
                                     f"{(info.height, info.width)}")
                inside = _inside(boxes, info.height, info.width)
                result = [request_result(b, info.height, info.width) for b in boxes]
                result += brush_results(labels, inside, ctx.classes.names, "brush")
                task["annotations"].append({
                    "id": task_id, "completed_by": 1, "result": result, "was_cancelled": False,
                    "ground_truth": False, "created_at": stamp, "updated_at": stamp,
                    "lead_time": 1.0, "prediction": prediction, "result_count": len(result),
                    "task": task_id, "project": 1})
                task["total_annotations"] = 1
            tasks.append(task)
        path = Path(path)
        path.write_text(json.dumps(tasks, indent=1) + "\n")
        return path
