"""The simulated oracle: reveals the ground truth of the regions it is asked to label."""

from __future__ import annotations

import torch

from ralis.data.cache import index_rows, stack_rows
from ralis.data.regions import RegionGrid
from ralis.errors import ConfigError
from ralis.metrics import class_distribution
from ralis.rl.features import region_class_distribution


class SparseMasks:
    """``[P, H, W]`` long masks that hold labels only in some regions, the ignore index elsewhere.

    Only the labelled regions' pixels are kept (one tile per region, as int32), so memory grows
    with the labels, not with the pool. Indexes like the tensor it stands for (an image index, a
    slice or an index list, optionally followed by pixel indices); an image is composed when it
    is read.
    """

    def __init__(self, num_images: int, image_size: tuple[int, int], ignore_index: int) -> None:
        self.shape = torch.Size((num_images, *image_size))
        self.dtype = torch.long
        self.ignore_index = ignore_index
        self.tiles: dict[int, tuple[int, int, torch.Tensor]] = {}  # region -> (y0, x0, tile)
        self.by_image: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def add(self, region: int, image: int, y0: int, x0: int, tile: torch.Tensor) -> None:
        self.tiles[region] = (y0, x0, tile.to(torch.int32).clone())
        self.by_image.setdefault(image, []).append(region)

    def image(self, k: int) -> torch.Tensor:
        out = torch.full(tuple(self.shape[1:]), self.ignore_index, dtype=torch.long)
        for region in self.by_image.get(k, ()):
            y0, x0, tile = self.tiles[region]
            out[y0:y0 + tile.shape[0], x0:x0 + tile.shape[1]] = tile
        return out

    def __getitem__(self, key: object) -> torch.Tensor:
        return index_rows(key, len(self), self.image,
                          lambda idx: stack_rows(self.image, idx, self.shape[1:], self.dtype))

    def region_tiles(self, region_ids: torch.Tensor) -> torch.Tensor:
        """The labels of labelled regions, ``[M] -> [M, h, w]`` long."""
        return torch.stack([self.tiles[int(r)][2] for r in region_ids]).long()

    def labelled_pixels(self) -> torch.Tensor:
        """Every labelled region's pixels, flattened (ignore pixels inside regions included)."""
        if not self.tiles:
            return torch.zeros(0, dtype=torch.long)
        return torch.cat([t.reshape(-1) for _, _, t in self.tiles.values()]).long()


def tile_distributions(masks: SparseMasks, region_ids: torch.Tensor,
                       region_size: tuple[int, int], num_classes: int, ignore_index: int
                       ) -> torch.Tensor:
    """Class fractions (void in the last bin, empty bins 1e-7) of labelled regions' tiles:
    ``[M] -> [M, C + 1]``."""
    if region_ids.numel() == 0:
        return torch.zeros(0, num_classes + 1)
    one_region = RegionGrid(tuple(region_size), tuple(region_size))
    return region_class_distribution(masks.region_tiles(region_ids), one_region, num_classes,
                                     ignore_index)[:, 0]


class Oracle:
    """Holds the pool's ground truth and the partial masks revealed so far.

    ``partial_masks [P, H, W]`` equals the ground truth inside labelled regions and the ignore
    index everywhere else, which is exactly what the segmentation network is trained on. The
    ground truth may be a lazy tensor (:mod:`ralis.data.cache`): only the labelled regions'
    images are read.
    """

    def __init__(self, masks, grid: RegionGrid, ignore_index: int, budget: int) -> None:
        self._masks = masks
        self.grid = grid
        self.ignore_index = ignore_index
        self.budget = budget
        self.used = 0
        self.partial_masks = SparseMasks(len(masks), tuple(masks.shape[-2:]), ignore_index)

    def label(self, region_ids: torch.Tensor) -> None:
        n = region_ids.numel()
        if self.used + n > self.budget:
            raise ConfigError(
                f"labelling {n} more regions would exceed the budget of {self.budget} "
                f"({self.used} used)"
            )
        boxes = self.grid.boxes(region_ids)
        images = region_ids // self.grid.per_image
        for k in torch.unique(images).tolist():  # one read of each image's ground truth
            truth = self._masks[k]
            for j in (images == k).nonzero().squeeze(1).tolist():
                y0, x0, y1, x1 = boxes[j].tolist()
                self.partial_masks.add(int(region_ids[j]), k, y0, x0, truth[y0:y1, x0:x1])
        self.used += n

    def region_distributions(self, region_ids: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Ground-truth class fractions of already-labelled regions: ``[M] -> [M, C + 1]``.

        The last bin counts ignore (void) pixels; empty bins get 1e-7 (as the authors do) so
        every KL divergence against them is finite. Only labelled regions may be asked for.
        """
        return tile_distributions(self.partial_masks, region_ids, self.grid.region_size,
                                  num_classes, self.ignore_index)

    def labelled_distribution(self, num_classes: int) -> torch.Tensor:
        """Class fractions of every labelled pixel so far, ``[C]``."""
        return class_distribution(self.partial_masks.labelled_pixels(), num_classes,
                                  self.ignore_index)
