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

The export is written here; reading an export is :mod:`ralis.labelling.formats.ls_import`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

import numpy as np

from ralis.labelling.formats import ls_rle
from ralis.labelling.formats.base import (
    FORMATS,
    ExportContext,
    ImageAnswer,
    ImageLabels,
    ImportContext,
    RequestBox,
    class_colors,
)
from ralis.labelling.formats.ls_import import (
    BRUSH,
    CONFIG_FILE,
    IMAGE,
    POLYGON,
    REQUEST,
    read_labels,
)

TASKS_FILE = "labelstudio_tasks.json"
REQUEST_LABEL = "label this region"
REQUEST_COLOR = "#ff00ff"
LOCAL_FILES_URL = "/data/local-files/?d="


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
        return read_labels(path, ctx)

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
