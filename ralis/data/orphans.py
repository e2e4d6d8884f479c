"""Masks without an image: files that a split's ``masks`` pattern would give for an image its
``images`` glob would list, but whose image is missing.

A split is found from its images, so a deleted (or never copied) image leaves its mask behind
and the split silently shrinks. :func:`masks_without_images` finds such masks: a file that
matches the split's mask pattern (its placeholders read back from the path), is neither a mask
of a listed image nor an image, and whose reconstructed image path (the ``replace`` rewrites
undone) fits the images glob. ``ralis data check`` reports them per split and a run prints them
as a warning; neither is an error (the masks may be left on purpose).
"""

from __future__ import annotations

import fnmatch
import glob
import os
import posixpath
import re
from pathlib import Path

from ralis.data.description import FolderSpec
from ralis.data.layout import mask_path_for, relative_path
from ralis.errors import DataError

__all__ = ["masks_without_images", "orphan_warning"]

_GROUPS = {"relpath": r"(?P<relpath>.+)", "dir": r"(?P<dir>.+)", "stem": r"(?P<stem>[^/]+)",
           "parent": r"(?P<parent>[^/]+)"}
_GLOBS = {"relpath": "**/*", "dir": "**", "stem": "*", "parent": "*"}
_FIELD = re.compile(r"\{\{|\}\}|\{(\w+)\}")


def _pattern(masks: str, split: str) -> tuple[str, re.Pattern]:
    """The mask pattern as a glob (placeholders as wildcards) and as a regex that reads them."""
    pieces_glob, pieces_re, at = [], [], 0
    seen: set[str] = set()
    for m in _FIELD.finditer(masks):
        text = masks[at:m.start()]
        pieces_glob.append(glob.escape(text))
        pieces_re.append(re.escape(text))
        token, name = m.group(0), m.group(1)
        if token in ("{{", "}}"):
            pieces_glob.append(token[0])
            pieces_re.append(re.escape(token[0]))
        elif name == "split":
            pieces_glob.append(glob.escape(split))
            pieces_re.append(re.escape(split))
        else:
            pieces_glob.append(_GLOBS[name])
            pieces_re.append(f"(?P={name})" if name in seen else _GROUPS[name])
            seen.add(name)
        at = m.end()
    pieces_glob.append(glob.escape(masks[at:]))
    pieces_re.append(re.escape(masks[at:]))
    return "".join(pieces_glob), re.compile("".join(pieces_re))


def _could_be_an_image(found: dict[str, str], images: str, rewrites) -> bool:
    """Whether the placeholders read from a mask's path fit an image of the ``images`` glob."""
    stem_glob = posixpath.splitext(images)[0]
    if found.get("relpath"):
        guess = found["relpath"]
    elif found.get("dir") and found.get("stem"):
        guess = found["stem"] if found["dir"] == "." else f"{found['dir']}/{found['stem']}"
    elif found.get("stem"):  # the image's folder is not in the mask's name
        return fnmatch.fnmatchcase(found["stem"], posixpath.basename(stem_glob))
    else:
        return False
    for old, new in reversed(rewrites):
        guess = guess.replace(new, old)
    return fnmatch.fnmatchcase(guess, stem_glob.replace("**/", "*").replace("**", "*"))


def masks_without_images(spec: FolderSpec, split: str) -> list[Path]:
    """The masks of split ``split`` (one with its own files) whose image is missing, sorted."""
    rule = spec.splits[split]
    if rule.carved or rule.images is None or rule.masks is None:
        return []
    as_glob, as_re = _pattern(rule.masks, split)
    own = {name for name, r in spec.splits.items() if not r.carved and r.images and r.masks}
    taken: set[str] = set()
    for name in own:  # every image and every mask of the splits with their own files
        for image in glob.glob(os.path.join(glob.escape(str(spec.base)),
                                            spec.splits[name].images), recursive=True):
            taken.add(os.path.normpath(image))
            try:
                taken.add(os.path.normpath(mask_path_for(spec, name, Path(image))))
            except DataError:  # that split's own problem, reported when it is read
                continue
    orphans = []
    for path in glob.glob(os.path.join(glob.escape(str(spec.base)), as_glob), recursive=True):
        if os.path.normpath(path) in taken or not os.path.isfile(path):
            continue
        match = as_re.fullmatch(relative_path(spec, Path(path)))
        if match and _could_be_an_image(match.groupdict(), rule.images, rule.replace):
            orphans.append(Path(path))
    return sorted(orphans)


def orphan_warning(spec: FolderSpec, split: str, where: str) -> str | None:
    """One line about the masks without an image of ``split`` (None when there are none)."""
    orphans = masks_without_images(spec, split)
    if not orphans:
        return None
    shown = ", ".join(relative_path(spec, p) for p in orphans[:3])
    more = f" and {len(orphans) - 3} more" if len(orphans) > 3 else ""
    return (f"{where}: {len(orphans)} mask(s) without an image ({shown}{more}): their images are "
            f"missing, so splits.{split} is smaller than its masks; restore the images, or "
            "delete the masks if they were left on purpose")
