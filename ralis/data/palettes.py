"""Palette masks whose indices mean different things in different files.

With ``mask_format: palette`` a mask's palette *indices* are the class ids. When the classes have
colours, each file is checked against them (:func:`ralis.data.masks.check_palette_colors`).
Without colours one file cannot be checked, but many can: a tool that writes each file's palette
in its own order (the order colours first appear, say) draws one index in different colours in
different files, and reading the indices as ids then mixes classes silently (wrong shares, a
model trained on swapped labels). :class:`PaletteColors` remembers the colour each class id is
drawn in over every palette mask read with it, and refuses a file that draws one differently,
pointing to ``mask_format: rgb`` with colours, which reads such masks by what they show.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ralis.data.base import ClassInfo
from ralis.errors import DataError

__all__ = ["PaletteColors"]


class PaletteColors:
    """The colour of each class id (palette index) in the palette masks read so far, and the
    first file that drew it; share one across the splits of a dataset."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[tuple[int, int, int], str]] = {}

    def check(self, path: object, im: Image.Image, ids: np.ndarray, classes: ClassInfo) -> None:
        """Record the colours ``im`` draws its class ids ``ids [H, W]`` in, or raise a
        :class:`DataError` when one differs from an earlier file's."""
        c = classes.num_classes
        present = np.flatnonzero(np.bincount(ids.ravel(), minlength=c)[:c] > 0)
        palette = np.array(im.getpalette() or [], dtype=np.int64).reshape(-1, 3)
        for i in present[present < len(palette)].tolist():  # at most one per class
            color = tuple(int(v) for v in palette[i])
            first = self.seen.setdefault(i, (color, str(path)))  # type: ignore[arg-type]
            if first[0] != color:
                raise DataError(
                    f"mask {path}: palette index {i} is drawn as {color}, but as {first[0]} in "
                    f"{first[1]}: the palette indices mean different classes in different "
                    "files, so they are not class ids; use mask_format: rgb with a color for "
                    "every class (classes[].color) to read the masks by their colours")
