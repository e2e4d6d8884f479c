"""Which files make up a split of a described dataset: globbing, mask paths, carving.

A split with its own files lists ``images`` (a glob relative to the description's folder) and
finds each image's mask by filling the ``masks`` pattern. The placeholders are taken from the
image's path relative to the description's folder, *after* the split's ``replace`` rewrites
(plain text replacements, in order) were applied to that path:

* ``{relpath}``: the (rewritten) relative path without the file suffix, e.g. ``seq01/0001_label``;
* ``{dir}``: its folder, e.g. ``seq01`` (``.`` at the top level);
* ``{stem}``: its file name without suffix, ``{parent}``: the name of its folder;
* ``{split}``: the split's name.

Two different images may not use the same mask file (e.g. ``masks: "masks/{stem}.png"`` over
folders with repeated file names), neither within a split nor across splits.

A carved split (``from: train``) takes images out of its source split, either those matching an
``images`` glob or about a ``fraction`` of them, each image by a hash of ``seed``, the split's
name and its own path (so no other file changes where it goes); the carved images are removed
from the source, so the two never overlap, and keep the source's masks. The order the
description lists the carves in does not matter: glob carves are applied first (an image matched
by two of them is an error), then fraction carves in the order of their split names, each over
the images still left (see :func:`carved_images`).
"""

from __future__ import annotations

import glob
import hashlib
import os
import posixpath
from pathlib import Path

from ralis.data.description import FolderSpec
from ralis.errors import DataError


def _glob(spec: FolderSpec, pattern: str) -> list[Path]:
    full = os.path.join(glob.escape(str(spec.base)), pattern)
    return sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())


def own_images(spec: FolderSpec, split: str) -> list[Path]:
    """The images a split with its own files lists (sorted); none -> DataError."""
    pattern = spec.splits[split].images
    assert pattern is not None
    images = _glob(spec, pattern)
    if not images:
        full = os.path.join(str(spec.base), pattern)
        raise DataError(f"{spec.path}: splits.{split}.images matched no files (glob {full})")
    return images


def relative_path(spec: FolderSpec, path: Path) -> str:
    """``path`` relative to the description's folder, with ``/`` separators."""
    return Path(os.path.relpath(path, spec.base)).as_posix()


def mask_path_for(spec: FolderSpec, split: str, image: Path) -> Path:
    """Fill split ``split``'s mask pattern (after its ``replace`` rewrites) for one image."""
    rule = spec.splits[split]
    assert rule.masks is not None
    rel = relative_path(spec, image)
    suffix = posixpath.splitext(rel)[1]
    rewritten = rel[: len(rel) - len(suffix)]
    for old, new in rule.replace:
        rewritten = rewritten.replace(old, new)
    if rule.replace and rewritten == rel[: len(rel) - len(suffix)]:
        raise DataError(
            f"splits.{split}.replace {dict(rule.replace)} changes nothing in {rel}; every image's "
            "path must contain a text to replace (note the '/' in \"/images/\")"
        )
    folder, stem = posixpath.split(rewritten)
    values = {
        "relpath": rewritten,
        "dir": folder or ".",
        "stem": stem,
        "parent": posixpath.basename(folder) if folder else spec.base.name,
        "split": split,
    }
    mask = spec.base / rule.masks.format_map(values)
    if os.path.normpath(mask) == os.path.normpath(image):
        raise DataError(
            f"splits.{split}.masks {rule.masks!r} gives {rel} as its own mask; the pattern must "
            "lead to the mask file (use replace or another folder)"
        )
    return mask


def _glob_carves(
    spec: FolderSpec, source: str, original: list[Path], names: list[str]
) -> dict[str, list[Path]]:
    """The images each glob carve takes from ``source``; an image matched by two is an error."""
    taken: dict[Path, str] = {}
    result: dict[str, list[Path]] = {}
    for name in names:
        pattern = spec.splits[name].images
        assert pattern is not None
        matches = set(_glob(spec, pattern))
        chosen = [p for p in original if p in matches]
        if not chosen:
            raise DataError(
                f"{spec.path}: splits.{name}.images {pattern!r} matches none of the "
                f"{len(original)} images of split {source} (globs are relative to {spec.base})"
            )
        for image in chosen:
            if image in taken:
                raise DataError(
                    f"{spec.path}: image {relative_path(spec, image)} matches the images globs "
                    f"of both splits.{taken[image]} and splits.{name} (carved from {source}); "
                    "make the globs disjoint"
                )
            taken[image] = name
        result[name] = chosen
    return result


def carve_draw(seed: int, split: str, rel: str) -> float:
    """A number in [0, 1) for image ``rel`` (its path relative to the description's folder,
    without suffix) in the fraction carve ``split`` drawn with ``seed``: the first 8 bytes of a
    SHA-256 of the three. It depends on nothing else, so no other file changes it."""
    digest = hashlib.sha256(f"{seed}\0{split}\0{rel}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def carved_images(spec: FolderSpec, source: str) -> dict[str, list[Path]]:
    """Images of ``source`` and of every split carved from it, after carving (sorted each).

    Glob carves come first, whatever the order of the description: each takes the source's
    images its glob matches (no image may match two). The fraction carves then follow in the
    order of their split names, each over the images still left: an image goes to carve ``k``
    when its :func:`carve_draw` is below ``fraction_k / (1 - the fractions before it)``, so
    each carve holds about its fraction of the images the globs left, and whether an image is
    carved depends on that image alone: a file that appears or disappears changes no other
    image's split. A carve that would be empty takes the image with the smallest draw, and the
    source keeps at least the image with the largest.
    """
    original = own_images(spec, source)
    carves = [name for name, rule in spec.splits.items() if rule.source == source]
    by_glob = [n for n in carves if spec.splits[n].fraction is None]
    by_fraction = sorted(n for n in carves if spec.splits[n].fraction is not None)
    result = _glob_carves(spec, source, original, by_glob)
    taken = {p for name in by_glob for p in result[name]}
    remaining = [p for p in original if p not in taken]
    if not remaining:
        raise DataError(
            f"{spec.path}: carving splits.{', splits.'.join(by_glob)} out of {source} leaves "
            f"{source} empty; carve fewer images"
        )
    left = 1.0  # the share of the images the fraction carves before this one leave
    for name in by_fraction:
        rule = spec.splits[name]
        assert rule.fraction is not None
        if rule.fraction >= left or len(remaining) < 2:
            raise DataError(
                f"{spec.path}: carving splits.{name} out of {source} leaves {source} empty; carve "
                "a smaller fraction or fewer images"
            )
        draws = {p: carve_draw(rule.seed, name, posixpath.splitext(relative_path(spec, p))[0])
                 for p in remaining}
        chosen = {p for p in remaining if draws[p] < rule.fraction / left}
        left -= rule.fraction
        if not chosen:
            chosen = {min(remaining, key=draws.__getitem__)}
        if len(chosen) == len(remaining):
            chosen.discard(max(remaining, key=draws.__getitem__))
        result[name] = [p for p in remaining if p in chosen]
        remaining = [p for p in remaining if p not in chosen]
    result[source] = remaining
    return result


def split_images(spec: FolderSpec, split: str) -> tuple[list[Path], str]:
    """``(images, split whose mask rule applies)`` of one split, after carving."""
    rule = spec.splits[split]
    source = rule.source or split
    if rule.source is None and not any(r.source == split for r in spec.splits.values()):
        return own_images(spec, split), split
    return carved_images(spec, source)[split], source


def check_shared_masks(spec: FolderSpec, split: str) -> None:
    """Two different images may not use one mask file, within a split or across the splits with
    their own files (in the description's order; another split whose images or masks cannot be
    listed is skipped here, loading it reports why, ``split``'s own problems are raised)."""
    users: dict[str, tuple[Path, str]] = {}
    for name in [name for name, r in spec.splits.items() if not r.carved]:
        pattern = spec.splits[name].images
        assert pattern is not None
        try:
            masks = [(image, mask_path_for(spec, name, image)) for image in _glob(spec, pattern)]
        except DataError:
            if name == split:
                raise
            continue
        for image, mask in masks:
            key = os.path.normpath(mask)
            first = users.setdefault(key, (image, name))
            if os.path.normpath(first[0]) == os.path.normpath(image):
                continue
            a, b = relative_path(spec, first[0]), relative_path(spec, image)
            which = (f"splits.{name}: images {a} and {b}" if first[1] == name
                     else f"images {a} (splits.{first[1]}) and {b} (splits.{name})")
            raise DataError(
                f"{spec.path}: {which} both use mask {relative_path(spec, mask)}; use {{relpath}} "
                "or {dir} in the masks pattern so that each image has its own mask"
            )


def split_pairs(spec: FolderSpec, split: str) -> list[tuple[Path, Path]]:
    """``(image, mask)`` paths of one split, sorted; every image must have its own mask."""
    images, rule = split_images(spec, split)
    check_shared_masks(spec, rule)
    pairs = []
    for image in images:
        mask = mask_path_for(spec, rule, image)
        if not mask.is_file():
            raise DataError(f"image {image} has no mask: expected {mask} (splits.{rule}.masks)")
        pairs.append((image, mask))
    return pairs


def sample_names(images: list[Path], base: Path) -> list[str]:
    """File stems, or relative paths without suffix when stems repeat (e.g. across folders)."""
    stems = [p.stem for p in images]
    if len(set(stems)) == len(stems):
        return stems
    return [Path(os.path.relpath(p, base)).with_suffix("").as_posix() for p in images]
