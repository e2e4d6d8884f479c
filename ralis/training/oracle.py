"""The simulated oracle: reveals the ground truth of the regions it is asked to label."""

from __future__ import annotations

import torch

from ralis.errors import ConfigError
from ralis.files.arrays import index_rows, stack_rows
from ralis.metrics import class_distribution
from ralis.regions import Regions
from ralis.regions.histograms import distribution_from_counts, void_as_last_bin

OUTSIDE = -1
"""Tile value of a box pixel that lies outside its region (superpixels): never written."""


class SparseMasks:
    """``[P, H, W]`` long masks that hold labels only in some regions, the ignore index elsewhere.

    Only the labelled regions' pixels are kept (one tile per region: its bounding box as int32,
    :data:`OUTSIDE` where the box holds pixels of other regions), so memory grows with the
    labels, not with the pool. Indexes like the tensor it stands for (an image index, a
    slice or an index list, optionally followed by pixel indices); an image is composed when it
    is read.
    """

    def __init__(self, num_images: int, image_size: tuple[int, int], ignore_index: int) -> None:
        self.shape = torch.Size((num_images, *image_size))
        self.dtype = torch.long
        self.ignore_index = ignore_index
        self.tiles: dict[int, tuple[int, int, torch.Tensor]] = {}  # region -> (y0, x0, tile)
        self.partial: set[int] = set()  # regions whose tile holds OUTSIDE pixels
        self.by_image: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def add(self, region: int, image: int, y0: int, x0: int, tile: torch.Tensor) -> None:
        tile = tile.to(torch.int32).clone()
        self.tiles[region] = (y0, x0, tile)
        if bool((tile == OUTSIDE).any()):
            self.partial.add(region)
        self.by_image.setdefault(image, []).append(region)

    def image(self, k: int) -> torch.Tensor:
        out = torch.full(tuple(self.shape[1:]), self.ignore_index, dtype=torch.long)
        for region in self.by_image.get(k, ()):
            y0, x0, tile = self.tiles[region]
            view = out[y0:y0 + tile.shape[0], x0:x0 + tile.shape[1]]
            if region in self.partial:
                inside = tile != OUTSIDE
                view[inside] = tile[inside].long()
            else:
                view.copy_(tile)
        return out

    def __getitem__(self, key: object) -> torch.Tensor:
        return index_rows(key, len(self), self.image,
                          lambda idx: stack_rows(self.image, idx, self.shape[1:], self.dtype))

    def region_tiles(self, region_ids: torch.Tensor) -> list[torch.Tensor]:
        """The tiles of labelled regions (their boxes, :data:`OUTSIDE` off the region):
        ``[M] -> M x [h_i, w_i]`` int32."""
        return [self.tiles[int(r)][2] for r in region_ids]

    def labelled_pixels(self) -> torch.Tensor:
        """Every labelled region's pixels, flattened (ignore pixels inside regions included)."""
        if not self.tiles:
            return torch.zeros(0, dtype=torch.long)
        flat = torch.cat([t.reshape(-1) for _, _, t in self.tiles.values()]).long()
        return flat[flat != OUTSIDE] if self.partial else flat


def tile_distributions(masks: SparseMasks, region_ids: torch.Tensor, num_classes: int,
                       ignore_index: int) -> torch.Tensor:
    """Class fractions (void in the last bin, empty bins 1e-7, renormalised) of labelled
    regions' pixels: ``[M] -> [M, C + 1]`` float32 (one bincount over all their pixels)."""
    M = region_ids.numel()
    if M == 0:
        return torch.zeros(0, num_classes + 1)
    tiles = masks.region_tiles(region_ids)
    flat = torch.cat([t.reshape(-1) for t in tiles]).long()
    owner = torch.repeat_interleave(torch.arange(M), torch.tensor([t.numel() for t in tiles]))
    keep = flat != OUTSIDE
    flat, owner = flat[keep], owner[keep]
    ids = void_as_last_bin(flat, num_classes, ignore_index)
    counts = torch.bincount(owner * (num_classes + 1) + ids, minlength=M * (num_classes + 1))
    return distribution_from_counts(counts.view(M, num_classes + 1))


def dominant_tile(tile: torch.Tensor, inside: torch.Tensor | None, num_classes: int,
                  ignore_index: int) -> torch.Tensor:
    """One-click labelling (Cai et al. 2021): every pixel of the region gets the region's
    majority label (void included: a mostly-void region stays void). ``[h, w]`` -> ``[h, w]``."""
    inside = torch.ones_like(tile, dtype=torch.bool) if inside is None else inside
    ids = void_as_last_bin(tile[inside].long(), num_classes, ignore_index)
    top = int(torch.bincount(ids, minlength=num_classes + 1).argmax())
    label = ignore_index if top == num_classes else top
    return torch.where(inside, torch.full_like(tile, label), tile)


class Oracle:
    """Holds the pool's ground truth and the partial masks revealed so far.

    ``partial_masks [P, H, W]`` equals the ground truth inside labelled regions and the ignore
    index everywhere else, which is exactly what the segmentation network is trained on. The
    ground truth may be a lazy tensor (:mod:`ralis.files.arrays`): only the labelled regions'
    images are read.
    """

    def __init__(self, masks, regions: Regions, ignore_index: int, budget: float,
                 labelling: str = "full", num_classes: int | None = None) -> None:
        if labelling == "dominant" and num_classes is None:
            raise ValueError("dominant labelling needs num_classes")
        self._masks = masks
        self.regions = regions
        self.ignore_index = ignore_index
        self.budget = budget  # in budget units (regions.nominal_pixels pixels each)
        self.labelling = labelling
        self.num_classes = num_classes
        self.used = 0.0
        self.partial_masks = SparseMasks(len(masks), tuple(masks.shape[-2:]), ignore_index)

    def label(self, region_ids: torch.Tensor) -> None:
        """Reveal the regions' ground truth (with ``labelling="dominant"``, their majority
        class). Refused beyond the budget; superpixels differ in size, so their last step may
        cross it (by less than one step's regions)."""
        n = region_ids.numel()
        new = float(self.regions.pixels(region_ids).sum()) / self.regions.nominal_pixels
        exact = self.regions.kind == "rect"
        if n and (self.used + new > self.budget + 1e-9 if exact else self.used >= self.budget):
            raise ConfigError(
                f"labelling {n} more regions would exceed the budget of {self.budget:g} "
                f"({self.used:g} used)"
            )
        boxes = self.regions.boxes(region_ids)
        inside = self.regions.crop_masks(region_ids)
        images = region_ids // self.regions.per_image
        for k in torch.unique(images).tolist():  # one read of each image's ground truth
            truth = self._masks[k]
            for j in (images == k).nonzero().squeeze(1).tolist():
                y0, x0, y1, x1 = boxes[j].tolist()
                tile = truth[y0:y1, x0:x1].clone()
                m = None if inside is None else inside[j]
                if self.labelling == "dominant":
                    tile = dominant_tile(tile, m, self.num_classes, self.ignore_index)
                if m is not None:
                    tile[~m] = OUTSIDE
                self.partial_masks.add(int(region_ids[j]), k, y0, x0, tile)
        self.used += new

    def region_distributions(self, region_ids: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Ground-truth class fractions of already-labelled regions: ``[M] -> [M, C + 1]``.

        The last bin counts ignore (void) pixels; empty bins get 1e-7 (as the authors do) so
        every KL divergence against them is finite. Only labelled regions may be asked for.
        """
        return tile_distributions(self.partial_masks, region_ids, num_classes, self.ignore_index)

    def labelled_distribution(self, num_classes: int) -> torch.Tensor:
        """Class fractions of every labelled pixel so far, ``[C]``."""
        return class_distribution(self.partial_masks.labelled_pixels(), num_classes,
                                  self.ignore_index)
