"""Which project image a Label Studio task labels, and whether the task is this project's.

A task ralis exported carries ``data.ralis_image`` (the image's name in the project) and where it
comes from: ``ralis_project`` (the project's name), ``ralis_project_id`` (its unique id) and
``ralis_round``; a task from another project is refused
(:meth:`~ralis.labelling.formats.base.ImportContext.check_origin`). Without ``ralis_image`` the
image URL decides: a local files URL's ``d`` path that ends with a project image's name, else the
basename of the URL (Label Studio's upload prefix ``<8 hex>-`` removed) when exactly one project
image has it. The URL is held to the rule of ``ralis_image``: a ``..`` step, an absolute ``d``
path, a ``file:`` URL or an absolute path outside Label Studio's own ``/data/`` routes points
outside the images folder and is refused.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

from ralis.labelling.formats.base import ImportContext, LabelFileError

__all__ = ["resolve_image", "check_url"]

_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")
ORIGIN_KEYS = ("ralis_project", "ralis_project_id", "ralis_round")


def _outside(url: str, where: str) -> LabelFileError:
    return LabelFileError(f"{where}: image URL {url[:120]!r} points outside the images folder; "
                          "label files must name the project's images by their relative names "
                          "(import the tasks ralis exported, labelstudio_tasks.json)")


def check_url(url: str, where: str) -> tuple[str | None, str]:
    """``(local files d path or None, URL path)`` of a task's image URL, both unquoted; a URL
    that leaves the images folder is a one-line error (module docs)."""
    parts = urlsplit(url)
    d_values = parse_qs(parts.query).get("d")
    d = d_values[0] if d_values else None  # parse_qs unquotes
    path = unquote(parts.path)
    for text in (d, path):
        if text is not None and (".." in text.replace("\\", "/").split("/") or "\0" in text):
            raise _outside(url, where)
    if d is not None:
        ImportContext.check_name(d, where)  # relative to the document root, no drive
    if parts.scheme.lower() == "file" or (
            not parts.scheme and not parts.netloc and path.startswith("/")
            and not path.startswith("/data/")):
        raise _outside(url, where)
    return d, path


def resolve_image(data: dict, ctx: ImportContext, where: str) -> str:
    """The project image a task labels (module docs)."""
    ctx.check_origin({k: data.get(k) for k in ORIGIN_KEYS}, where)
    if "ralis_image" in data:
        return ctx.image(data["ralis_image"], where).name
    url = data.get("image")
    if not isinstance(url, str):
        raise LabelFileError(f"{where}: the task's data has neither ralis_image nor an image URL; "
                             "import the tasks ralis exported (labelstudio_tasks.json)")
    d, path = check_url(url, where)
    if d:  # local files: the name, maybe under folders of the document root
        steps = PurePosixPath(d).parts
        for k in range(len(steps)):
            if "/".join(steps[k:]) in ctx.images:
                return "/".join(steps[k:])
    base = PurePosixPath(d or path).name
    for candidate in (base, _UPLOAD_PREFIX.sub("", base)):
        hits = [n for n in ctx.images if PurePosixPath(n).name == candidate]
        if len(hits) == 1:
            return hits[0]
    raise LabelFileError(f"{where}: no single project image matches {url[:120]!r} (and the task "
                         "has no data.ralis_image); import the tasks ralis exported "
                         "(labelstudio_tasks.json)")
