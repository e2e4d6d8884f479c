"""Your own data: image/mask folders described by a small YAML or JSON file.

Point ``--data-root`` (the ``root`` argument) at the description file, or at a folder holding
``ralis-dataset.yaml``, ``ralis-dataset.yml`` or ``ralis-dataset.json``. Paths in the description
are relative to the folder the description is in. Check a description with
``ralis data check --dataset folder --data-root PATH`` before a run. Example::

    name: my-streets
    classes:                      # ids must be exactly 0..C-1
      - {name: road, id: 0, color: [128, 64, 128]}
      - {name: car,  id: 1, color: [0, 0, 142]}
      - {name: sky,  id: 2, color: [70, 130, 180]}
    ignore_index: 255             # default 255; above every class id, at most 65535
    mask_format: rgb              # ids (default), palette or rgb
    void_colors: [[0, 0, 0]]      # rgb only: colours that are void on purpose
    splits:
      train: {images: "train/*/*_image.jpg", replace: {"_image": "_label"}, masks: "{relpath}.png"}
      val:   {from: train, fraction: 0.2, seed: 0}       # carved out of train
      test:  {images: "test/*/*_image.jpg", replace: {"_image": "_label"}, masks: "{relpath}.png"}
    resolution: [240, 320]        # optional working size H, W (see the field below)
    resize: stretch               # stretch (default), crop or tile

Fields:

``name``
    A display name for messages and reports (default: the description's folder name).
``classes``
    List of ``{name, id, color}``; ``name`` a text, each used once; ``id`` must cover ``0..C-1``
    exactly once; ``color`` is ``[R, G, B]`` (0..255), required for ``mask_format: rgb``, checked
    against the masks' palettes for ``palette``, and otherwise used only for drawing.
``ignore_index``
    Mask value that is ignored in training and metrics (default 255); above every class id and at
    most 65535 (the largest 16-bit value).
``mask_format``
    ``ids`` (default): single-channel 8- or 16-bit PNGs whose values are class ids or the ignore
    index (a palette PNG is refused: say ``palette`` or ``rgb``). ``palette``: palette PNGs whose
    palette *indices* are the class ids; if every class has a ``color``, each class id occurring in
    a mask must be drawn in its class's colour in that file's palette (else the indices follow
    another order: use ``rgb``). ``rgb``: colour masks (or palette PNGs, by their colours)
    translated with the ``classes[].color`` table. Masks must be lossless: JPEG masks are refused.
``strict_colors``
    With ``rgb``: ``true`` (default) makes a colour that is neither a class colour nor a void
    colour an error naming the colours, their pixel counts and the first files, over the whole
    split; ``false`` turns such colours into the ignore index (``ralis data check`` lists them).
``void_colors``
    With ``rgb``: list of ``[R, G, B]`` colours that mean "void" (the ignore index) on purpose.
``splits``
    Mapping of split name to either own files, ``{images, masks, replace}``, or a carved split,
    ``{from, fraction, seed}`` / ``{from, images}``. ``images`` is a glob relative to the
    description's folder (``*``, ``?``, ``[...]``, ``**`` for any depth). ``masks`` is a path
    pattern with placeholders taken from the image's path relative to the description's folder,
    after the optional ``replace`` mapping (text -> text, applied in order) rewrote it:
    ``{relpath}`` (that path without suffix), ``{dir}`` (its folder, ``.`` at the top), ``{stem}``
    (the file name without suffix), ``{parent}`` (the folder's name) and ``{split}``, each written
    exactly so (no ``{stem.x}``, ``{stem[0]}``, ``{stem:...}``; ``{{``/``}}`` are literal braces).
    Every image needs its own mask: two images that give one mask path (within a split or across
    splits) are an error. ``from: train`` with ``images: GLOB`` moves train's images that match into
    this split; with ``fraction: 0.2`` (and ``seed``, default 0) it moves about 20% (at least 1)
    of the images still left, each chosen by a hash of the seed, the split's name and its own
    path, so an image that appears or disappears moves no other image. Glob carves are applied
    before fraction carves, and fraction carves in the order of their split names, so the order
    of the splits in the file does not matter (:func:`ralis.data.layout.carved_images`). Carved
    images leave the source split and keep its masks. A mask whose image is missing is reported
    (:mod:`ralis.data.orphans`).
``resolution``
    Optional ``[H, W]`` (sides up to 16384) every sample is brought to when the reader gets no
    ``resolution`` argument. The command line (:func:`ralis.cli.options.resolve_options`) copies it into
    ``data.resolution`` unless ``--resolution`` or ``--set data.resolution=...`` is given, so
    there it wins over a preset's resolution and loses to those options. From Python,
    :func:`ralis.data.protocol.load_protocol` passes ``data.resolution`` to the reader: the
    description's resolution then applies only where ``data.resolution`` is None.
``resize``
    How samples of another size reach the resolution (see :mod:`ralis.data.resize`): ``stretch``
    (default; resize both sides), ``crop`` (scale the short side, cut the centre) or ``tile``
    (cut each image into resolution-sized tiles, each a sample named ``<name>@r<row>c<col>``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ralis.data.base import ClassInfo, SegmentationDataset, check_same_size, image_size
from ralis.data.camvid import read_rgb
from ralis.data.description import FolderSpec, find_description, parse_description
from ralis.data.layout import sample_names, split_pairs
from ralis.data.masks import UnknownColors, UnknownColorsError, decode_mask
from ralis.data.palettes import PaletteColors
from ralis.data.resize import cut_tile, tile_grid
from ralis.errors import ConfigError, DataError
from ralis.progress import progress_bar

__all__ = ["FolderDataset", "FolderSpec", "find_description", "parse_description"]


class FolderDataset(SegmentationDataset):
    """A dataset described by a ``ralis-dataset.yaml``/``.json`` file (see the module docs).

    Args:
        split: a split name from the description's ``splits``.
        root: the description file or its folder.
        resolution: ``(H, W)`` working size; None -> the description's ``resolution`` (if any).
        cache: keep decoded samples in memory.
        strict_colors: override the description's ``strict_colors`` (``ralis data check`` reads
            with ``False`` and reports :attr:`unknown_colors` instead of failing).
        palettes: the palette colours seen so far (``mask_format: palette``), shared by the
            splits of one dataset: an index drawn in another colour than before is an error.
    """

    def __init__(
        self,
        split: str = "train",
        root: str | Path | None = None,
        resolution: tuple[int, int] | None = None,
        cache: bool = True,
        strict_colors: bool | None = None,
        palettes: PaletteColors | None = None,
    ) -> None:
        self.spec = parse_description(find_description(root))
        self.palettes = palettes if palettes is not None else PaletteColors()
        if split not in self.spec.splits:
            raise ConfigError(
                f"unknown split {split!r} in {self.spec.path}; valid splits: "
                f"{', '.join(self.spec.splits)}"
            )
        self.split = split
        self.dataset_name = self.spec.name
        self.strict = self.spec.strict_colors if strict_colors is None else strict_colors
        self.mask_spec = replace(self.spec.masks, strict_colors=self.strict)
        self.unknown_colors = UnknownColors()
        self.pairs = split_pairs(self.spec, split)
        size = resolution or self.spec.resolution
        if self.spec.resize != "stretch" and size is None:
            raise ConfigError(
                f"{self.spec.path}: resize: {self.spec.resize} needs a working size; set "
                "resolution: [H, W] in the description or pass --resolution HxW"
            )
        names = sample_names([p[0] for p in self.pairs], self.spec.base)
        # one entry per sample: (pair index, tile row, tile col); row = col = -1 for whole images
        self.samples = [(i, -1, -1) for i in range(len(self.pairs))]
        if self.spec.resize == "tile":
            assert size is not None
            self.samples, names = self._tiles(tuple(size), names)
        self._last: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None
        super().__init__(self.spec.classes, names, size, cache,
                         "stretch" if self.spec.resize == "tile" else self.spec.resize)

    def _tiles(
        self, size: tuple[int, int], names: list[str]
    ) -> tuple[list[tuple[int, int, int]], list[str]]:
        samples, tile_names = [], []
        for i, (image, _) in enumerate(self.pairs):
            h, w = image_size(image)
            rows, cols = tile_grid(h, w, size)
            if rows == 0 or cols == 0:
                raise DataError(
                    f"image {image} is {h}x{w} (HxW), smaller than one {size[0]}x{size[1]} tile; use "
                    "resize: crop or stretch, or a smaller resolution"
                )
            for r in range(rows):
                for c in range(cols):
                    samples.append((i, r, c))
                    tile_names.append(f"{names[i]}@r{r}c{c}")
        return samples, tile_names

    @staticmethod
    def class_info(root: str | Path | None = None, **options: object) -> ClassInfo:
        return parse_description(find_description(root)).classes

    def _decode(self, pair: int) -> np.ndarray:
        mask_path = self.pairs[pair][1]
        if not self.strict:
            return decode_mask(mask_path, self.mask_spec, self.unknown_colors, self.palettes)
        try:
            return decode_mask(mask_path, self.mask_spec, palettes=self.palettes)
        except UnknownColorsError:
            raise DataError(self._scan_colors()) from None

    def _scan_colors(self) -> str:
        """Tally unknown colours over the whole split, for one actionable error."""
        tally = UnknownColors()
        masks = [m for _, m in self.pairs]
        for path in progress_bar(masks, desc=f"unknown colours in {self.split}", leave=False):
            decode_mask(path, self.mask_spec, tally)
        return tally.message(f"{self.spec.path} split {self.split}", len(masks), self.spec.base)

    def _load_pair(self, pair: int) -> tuple[np.ndarray, np.ndarray]:
        if self._last is not None and self._last[0] == pair:
            return self._last[1]
        image, mask = read_rgb(self.pairs[pair][0]), self._decode(pair)
        self._last = (pair, (image, mask))
        return image, mask

    def load_raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        pair, row, col = self.samples[index]
        image, mask = self._load_pair(pair)
        if row < 0:
            return image, mask
        check_same_size(self.describe(index), image, mask)
        assert self.resolution is not None
        size = (int(self.resolution[0]), int(self.resolution[1]))
        return cut_tile(image, row, col, size), cut_tile(mask, row, col, size)

    def describe(self, index: int) -> str:
        image = self.pairs[self.samples[index][0]][0]
        return f"{self.spec.name} {self.split} sample {self.names[index]} ({image})"

    def sample_key(self, index: int) -> str:
        pair, row, col = self.samples[index]
        key = str(self.pairs[pair][0].resolve())
        return key if row < 0 else f"{key}@r{row}c{col}"

    def source_files(self, index: int) -> tuple[Path, ...]:
        return tuple(self.pairs[self.samples[index][0]])
