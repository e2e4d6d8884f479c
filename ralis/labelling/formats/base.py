"""One interface for every annotation format: requests out, labels back in.

A format module (one per tool: ``png``, ``labelstudio``, ``cvat``, ``coco``) registers a class in
:data:`FORMATS` with three methods:

* ``export_requests(ctx: ExportContext) -> list[Path]``: write the round's requests (files under
  ``ctx.out_dir``) in the tool's own format and return the paths written;
* ``import_labels(path: Path, ctx: ImportContext) -> list[ImageLabels]``: read a file (or folder)
  the tool exported, and return one full-size label canvas per image it labels;
* ``write_answer(path: Path, answers: list[ImageAnswer], ctx: ExportContext) -> Path``: the
  scripted annotator: write the file the tool would export after a person labelled
  ``answers`` (used by tests and benchmarks; an honest round trip goes through the same bytes
  ``import_labels`` reads).

Coordinates are always pixels at the image's **native** size (what the annotator sees); the
project maps them to its working resolution. A format never reads or writes outside the paths it
is given and never decides which pixels count: it returns canvases, and the project keeps only
the pixels inside requested regions (and counts the rest).

Overlaps: an image may carry several results (brush strokes, polygons, masks). Results of one
class are a union; a pixel that two *different* classes claim is a conflict and is not a label
(it stays the ignore value and is counted in :attr:`ImageLabels.conflicts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ralis.data.base import ClassInfo
from ralis.errors import DataError
from ralis.registry import Registry


class LabelFileError(DataError):
    """A label file cannot be used: malformed, truncated, unknown image or class, bad RLE, ...

    The message is one line that names the file (and the entry) and says how to fix it."""


@dataclass(frozen=True)
class ImageInfo:
    """One image of the project.

    ``name``: its path relative to the project's images folder, with ``/`` separators (the key
    every format writes and reads back); ``path``: the file; ``height``/``width``: native size."""

    name: str
    path: Path
    height: int
    width: int


@dataclass(frozen=True)
class RequestBox:
    """One requested region at native resolution: rows ``top .. top+height-1``, columns
    ``left .. left+width-1`` of image ``image`` (an :attr:`ImageInfo.name`)."""

    region_id: int
    image: str
    top: int
    left: int
    height: int
    width: int


@dataclass(frozen=True)
class ExportContext:
    """Everything an export needs.

    ``prediction(name)`` returns the current model's predicted class ids at native size
    (``[H, W]`` int) or None when the project has no model yet; exports that can show
    pre-annotations (Label Studio) draw it inside the requested boxes."""

    project: str  # the project's name (its folder name)
    round: int
    classes: ClassInfo
    images: dict[str, ImageInfo]  # the images that have requests this round
    requests: Sequence[RequestBox]
    out_dir: Path  # rounds/<n>/: write here only
    image_root_url: str | None = None  # Label Studio: URL prefix of the images folder
    prediction: object = None  # Callable[[str], np.ndarray | None] | None
    project_id: str | None = None  # the project's unique id: every export carries it

    def origin(self) -> dict[str, object]:
        """What an export says about where it comes from (read back by
        :meth:`ImportContext.check_origin`)."""
        return {"ralis_project": self.project, "ralis_project_id": self.project_id,
                "ralis_round": self.round}


@dataclass(frozen=True)
class ImportContext:
    """What an import may look up: the project's images by name and its classes."""

    classes: ClassInfo
    images: dict[str, ImageInfo]  # every image of the project, by name
    project: str | None = None  # the project's name and unique id, and its last round
    project_id: str | None = None
    last_round: int | None = None

    def check_origin(self, origin: dict, where: str) -> None:
        """Refuse a file whose ``ralis_project_id`` (else ``ralis_project``, the name) is
        another project's, or whose ``ralis_round`` this project never had; a file that says
        nothing (a tool that drops them) passes."""
        pid, name, round_ = (origin.get(k) for k in ("ralis_project_id", "ralis_project",
                                                    "ralis_round"))
        other = (pid is not None and self.project_id is not None and pid != self.project_id) or (
            pid is None and name is not None and self.project is not None and name != self.project)
        if other:
            shown = " ".join(str(v)[:80] for v in (name, pid and f"(id {pid})") if v)
            raise LabelFileError(f"{where}: exported by another labelling project ({shown}), not "
                                 f"{self.project}; import it into that project")
        if round_ is not None and self.last_round is not None and not (
                isinstance(round_, int) and 0 <= round_ <= self.last_round):
            raise LabelFileError(f"{where}: exported for round {str(round_)[:20]}, but this "
                                 f"project has rounds up to {self.last_round}; it belongs to "
                                 "another project (or another copy of this one)")

    @staticmethod
    def check_name(name: object, where: str) -> None:
        """Refuse an image name that would leave the images folder (absolute, ``..``, a drive):
        label files name images inside the project, and nothing outside it is ever read."""
        text = str(name).replace("\\", "/")
        parts = text.split("/")
        if (text.startswith("/") or ".." in parts or (len(text) > 1 and text[1] == ":")
                or "\0" in text):
            raise LabelFileError(f"{where}: image name {text[:120]!r} points outside the images "
                                 "folder; label files must name the project's images by their "
                                 "relative names")

    def image(self, name: str, where: str) -> ImageInfo:
        """The project image called ``name`` (one-line error naming ``where`` otherwise)."""
        self.check_name(name, where)
        if not isinstance(name, str) or name not in self.images:
            shown = repr(name)[:120]
            raise LabelFileError(f"{where}: image {shown} is not in this project; label files "
                                 "must name the images the project exported")
        return self.images[name]

    def class_id(self, name: object, where: str) -> int:
        """The id of class ``name`` (a class name); a one-line error lists the valid names."""
        names = self.classes.names
        if isinstance(name, str) and name in names:
            return names.index(name)
        raise LabelFileError(f"{where}: unknown class {str(name)[:80]!r}; valid classes: "
                             f"{', '.join(names)}")


@dataclass
class ImageLabels:
    """The labels one file gives one image: ``labels [H, W]`` int32 at native size, class ids
    where labelled and ``ignore_index`` elsewhere; ``conflicts``: pixels two classes claimed."""

    name: str
    labels: np.ndarray
    conflicts: int = 0
    source: str = ""  # where in the file (for messages)


@dataclass
class ImageAnswer:
    """The scripted annotator's answer for one image: the ground truth at native size
    (``labels [H, W]`` int, ignore where the person leaves pixels unlabelled)."""

    name: str
    labels: np.ndarray
    boxes: list[RequestBox] = field(default_factory=list)  # this image's requests


class Canvas:
    """Accumulates one image's results: union per class, conflicts between classes.

    >>> c = Canvas(2, 2, ignore_index=255); c.add(np.array([[1, 1], [0, 0]], bool), 3)
    >>> c.add(np.array([[0, 1], [0, 1]], bool), 4); c.finish().labels.tolist()
    [[3, 255], [255, 4]]
    """

    def __init__(self, height: int, width: int, ignore_index: int, name: str = "",
                 source: str = "") -> None:
        self.ignore_index = ignore_index
        self.labels = np.full((height, width), ignore_index, dtype=np.int32)
        self.conflict = np.zeros((height, width), dtype=bool)
        self.name, self.source = name, source

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape  # type: ignore[return-value]

    def add(self, mask: np.ndarray, class_id: int) -> None:
        """Paint boolean ``mask [H, W]`` with ``class_id``."""
        if mask.shape != self.labels.shape:
            raise LabelFileError(
                f"{self.source or self.name}: a mask of {mask.shape[0]}x{mask.shape[1]} (HxW) "
                f"for an image of {self.labels.shape[0]}x{self.labels.shape[1]}; masks must have "
                "their image's size")
        other = mask & (self.labels != self.ignore_index) & (self.labels != class_id)
        self.conflict |= other
        self.labels[mask] = class_id

    def finish(self) -> ImageLabels:
        labels = self.labels.copy()
        labels[self.conflict] = self.ignore_index
        return ImageLabels(self.name, labels, int(self.conflict.sum()), self.source)


def class_colors(classes: ClassInfo) -> list[str]:
    """``#rrggbb`` per class for the tools: the classes file's colours, else matplotlib's tab20
    (its 10 strong colours first, then their light pairs)."""
    colors = classes.colors
    if colors is None:
        from matplotlib import colormaps

        table = colormaps["tab20"].colors
        table = table[0::2] + table[1::2]
        colors = tuple(tuple(round(255 * v) for v in table[i % len(table)])
                       for i in range(classes.num_classes))
    return ["#{:02x}{:02x}{:02x}".format(*(int(v) for v in c)) for c in colors]


class Format(Protocol):
    """An annotation format (see the module docs)."""

    name: str
    description: str  # one line for --help

    def export_requests(self, ctx: ExportContext) -> list[Path]: ...

    def import_labels(self, path: Path, ctx: ImportContext) -> list[ImageLabels]: ...

    def write_answer(self, path: Path, answers: list[ImageAnswer], ctx: ExportContext) -> Path: ...


FORMATS: Registry = Registry("label format")


def get_format(name: str) -> Format:
    return FORMATS.get(name)()
