"""``ralis label import``: labels from an annotation tool's export into the ledger.

A file is read by its format (:mod:`ralis.labelling.formats`) into one full-size label canvas
per image; every check runs before anything is written, then the import is one transaction:

* a file already imported (same SHA-256, a folder by its files' names and contents) is a no-op;
* an image with no requested region is refused (a label for a region never requested);
* pixels outside the image's requested regions are dropped, and counted;
* a requested region with no labelled pixel stays pending;
* a region that already has a label keeps it when the new one is identical (counted
  ``unchanged``); a different one is refused unless ``replace``, and then the old label stays in
  the ledger, inactive, with the import that replaced it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ralis.errors import ConfigError
from ralis.files.folders import FolderError, refuse_links
from ralis.labelling.crops import pack_label, unpack_label
from ralis.labelling.formats import ImageLabels, LabelFileError, get_format
from ralis.labelling.ledger import crash_point
from ralis.labelling.project import Project, now


def source_digest(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and contents, sorted). A link,
    FIFO or device inside a folder is refused: an export folder holds its own files."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_dir():
        try:
            refuse_links(path, "labels folder")
        except FolderError as exc:
            raise LabelFileError(str(exc)) from None
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        h.update((p.relative_to(path).as_posix() if path.is_dir() else "").encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def detect_format(path: Path) -> str:
    """png for a folder, cvat for .xml, labelstudio or coco for .json (by their structure)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} not found; pass the file (or folder of PNG masks) your "
                          "labelling tool exported")
    if path.is_dir():
        return "png"
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return "cvat"
    if suffix == ".json":
        try:
            head = path.read_text(errors="replace").lstrip()[:1]
        except OSError as exc:
            raise LabelFileError(f"cannot read {path} ({exc.strerror})") from None
        if head == "[":
            return "labelstudio"
        if head == "{":
            return "coco"
        raise LabelFileError(f"{path} is not a JSON export (it starts with {head!r}); pass "
                             "--format labelstudio or coco")
    raise ConfigError(f"cannot tell the format of {path} from its name; pass --format "
                      "labelstudio, cvat, coco or png")


def _class_counts(crop: np.ndarray, num_classes: int) -> list[int]:
    valid = crop[crop < num_classes]
    return np.bincount(valid.ravel().astype(np.int64), minlength=num_classes).tolist()


def apply_labels(project: Project, labels: list[ImageLabels], source: str, digest: str,
                 fmt: str, replace: bool = False, start_round: bool = False) -> dict:
    """Check ``labels`` against the requests and commit them as one import (module docs).

    ``start_round``: every region of each labelled image becomes a request of round 0 first
    (the fully labelled start set)."""
    ledger, ignore = project.ledger, project.classes.ignore_index
    num_classes = project.classes.num_classes
    seen: dict[str, str] = {}
    for item in labels:
        if item.name in seen:
            raise LabelFileError(f"{source}: image {item.name} is labelled twice ({seen[item.name]}"
                                 f" and {item.source}); give one entry per image")
        seen[item.name] = item.source
    requests: dict[str, list[dict]] = {}
    for r in ledger.requests():
        requests.setdefault(r["name"], []).append(r)
    new_requests: list[tuple] = []
    if start_round:
        per = project.grid.per_image
        index = {n: i for i, n in enumerate(project.names)}
        for item in labels:
            i = index[item.name]
            have = {r["region_id"] for r in requests.get(item.name, [])}
            ids = [i * per + k for k in range(per) if i * per + k not in have]
            for b in project.boxes(ids):
                row = {"region_id": b.region_id, "round": 0, "position": b.region_id, "name": b.image,
                       "top": b.top, "left": b.left, "height": b.height, "width": b.width}
                requests.setdefault(item.name, []).append(row)
                new_requests.append((b.region_id, 0, b.region_id, i, b.top, b.left, b.height,
                                     b.width))
    active = ledger.rows("SELECT id, region_id, height, width, dtype, data FROM labels "
                         "WHERE active = 1")
    current = {r["region_id"]: r for r in active}
    report = {"images": len(labels), "regions": 0, "unchanged": 0, "replaced": 0, "empty": 0,
              "dropped_pixels": 0, "conflict_pixels": 0}
    writes: list[tuple[int, np.ndarray, int | None]] = []  # (region, crop, replaced label id)
    for item in labels:
        info = project.infos[item.name]
        canvas = np.asarray(item.labels)
        if canvas.shape != (info.height, info.width):
            raise LabelFileError(f"{item.source or source}: labels of {item.name} are "
                                 f"{canvas.shape[0]}x{canvas.shape[1]} but the image is "
                                 f"{info.height}x{info.width} (HxW); labels must have their "
                                 "image's native size")
        bad = (canvas != ignore) & ((canvas < 0) | (canvas >= num_classes))
        if bad.any():
            raise LabelFileError(f"{item.source or source}: class ids "
                                 f"{sorted(set(np.unique(canvas[bad]).tolist()))[:5]} are not "
                                 f"0..{num_classes - 1} or the ignore value {ignore}")
        boxes = requests.get(item.name)
        if not boxes:
            raise LabelFileError(f"{item.source or source}: image {item.name} has no requested "
                                 "region; only regions requested by `ralis label next` can be "
                                 "labelled")
        inside = np.zeros(canvas.shape, dtype=bool)
        for b in boxes:
            win = (slice(b["top"], b["top"] + b["height"]), slice(b["left"], b["left"] + b["width"]))
            inside[win] = True
            crop = canvas[win]
            if not (crop != ignore).any():
                report["empty"] += int(b["region_id"] not in current)
                continue
            old = current.get(b["region_id"])
            if old is not None:
                if np.array_equal(unpack_label(old["height"], old["width"], old["dtype"],
                                               old["data"]), crop):
                    report["unchanged"] += 1
                    continue
                if not replace:
                    raise LabelFileError(
                        f"{item.source or source}: region {b['region_id']} of {item.name} is "
                        "already labelled, differently; pass --replace to replace its label "
                        "(the old one is kept in the ledger)")
                report["replaced"] += 1
            writes.append((b["region_id"], crop.copy(), None if old is None else old["id"]))
        report["dropped_pixels"] += int(((canvas != ignore) & ~inside).sum())
        report["conflict_pixels"] += int(item.conflicts)
    report["regions"] = len(writes)
    if not writes and not report["unchanged"]:
        raise LabelFileError(
            f"{source} labels none of the requested regions ({report['dropped_pixels']} labelled "
            f"pixels lie outside them): is it the export of another project, or was it exported "
            "before anyone labelled? Nothing was imported")
    with ledger.transaction() as db:
        if new_requests:
            if not ledger.scalar("SELECT 1 FROM rounds WHERE round = 0"):
                db.execute("INSERT INTO rounds (round, strategy, format, model_version, regions, "
                           "created, note, exported) VALUES (0, 'start-labels', ?, NULL, ?, ?, "
                           "'fully labelled start images', ?)",
                           (fmt, len(new_requests), now(), now()))
            db.executemany("INSERT INTO requests (region_id, round, position, image, top, left, "
                           "height, width) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", new_requests)
        cur = db.execute(
            "INSERT INTO imports (source, sha256, format, time, regions, replaced, unchanged, "
            "empty, dropped_pixels, conflict_pixels) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (source, digest, fmt, now(), report["regions"], report["replaced"],
             report["unchanged"], report["empty"], report["dropped_pixels"],
             report["conflict_pixels"]))
        import_id = cur.lastrowid
        for region, crop, old_id in writes:
            if old_id is not None:
                db.execute("UPDATE labels SET active = 0, replaced_by = ? WHERE id = ?",
                           (import_id, old_id))
            dtype, data = pack_label(crop)
            db.execute("INSERT INTO labels (region_id, import_id, active, height, width, dtype, "
                       "data, pixels, counts) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)",
                       (region, import_id, crop.shape[0], crop.shape[1], dtype, data,
                        int((crop != ignore).sum()), json.dumps(_class_counts(crop, num_classes))))
        crash_point("import:before-commit")
    report["import"] = import_id
    return report


def import_file(project: Project, path: Path, fmt: str | None = None, replace: bool = False,
                say=print) -> dict:
    """Import one export (see the module docs); returns the report."""
    path = Path(path)
    if path.exists() and not (path.is_dir() or path.is_file()):
        raise LabelFileError(f"{path} is not a regular file (a FIFO or a device?); pass the file "
                             "(or folder of PNG masks) your labelling tool exported")
    fmt = fmt or detect_format(path)
    reader = get_format(fmt)
    if not path.exists():
        raise ConfigError(f"{path} not found; pass the file your labelling tool exported")
    digest = source_digest(path)
    done = project.ledger.rows("SELECT id, time FROM imports WHERE sha256 = ?", (digest,))
    if done:
        say(f"{path} was already imported (import {done[0]['id']} at {done[0]['time']}); "
            "nothing to do")
        return {"import": done[0]["id"], "already_imported": True}
    labels = reader.import_labels(path, project.import_context())
    report = apply_labels(project, labels, str(path), digest, fmt, replace)
    say(f"import {report['import']} ({fmt}): {report['regions']} regions labelled in "
        f"{report['images']} images, {report['unchanged']} unchanged, {report['replaced']} "
        f"replaced, {report['empty']} requested regions still without labels; "
        f"{report['dropped_pixels']} labelled pixels outside the requested regions dropped, "
        f"{report['conflict_pixels']} pixels with two classes left unlabelled")
    return report


def import_start_labels(project: Project, folder: Path, say=print) -> dict:
    """``--start-labels DIR``: full PNG masks of some project images label all their regions."""
    folder = Path(folder)
    digest = source_digest(folder) if folder.exists() else ""
    if project.ledger.rows("SELECT id FROM imports WHERE sha256 = ?", (digest,)):
        return {"already_imported": True}
    labels = get_format("png").import_labels(folder, project.import_context())
    report = apply_labels(project, labels, str(folder), digest, "png", start_round=True)
    say(f"start labels: {report['images']} fully labelled images ({report['regions']} regions)")
    return report
