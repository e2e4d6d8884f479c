"""The simulated oracle: reveals the ground truth of the regions it is asked to label."""

from __future__ import annotations

import torch

from ralis.data.regions import RegionGrid
from ralis.errors import ConfigError
from ralis.rl.features import region_class_distribution


class Oracle:
    """Holds the pool's ground truth and the partial masks revealed so far.

    ``partial_masks [P, H, W]`` equals the ground truth inside labelled regions and the ignore
    index everywhere else, which is exactly what the segmentation network is trained on.
    """

    def __init__(self, masks: torch.Tensor, grid: RegionGrid, ignore_index: int, budget: int) -> None:
        self._masks = masks
        self.grid = grid
        self.ignore_index = ignore_index
        self.budget = budget
        self.used = 0
        self.partial_masks = torch.full_like(masks, ignore_index)

    def label(self, region_ids: torch.Tensor) -> None:
        n = region_ids.numel()
        if self.used + n > self.budget:
            raise ConfigError(
                f"labelling {n} more regions would exceed the budget of {self.budget} "
                f"({self.used} used)"
            )
        inside = self.grid.mask(region_ids, self._masks.shape[0])
        self.partial_masks = torch.where(inside, self._masks, self.partial_masks)
        self.used += n

    def region_distributions(self, region_ids: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Ground-truth class fractions of already-labelled regions: ``[M] -> [M, C + 1]``.

        The last bin counts ignore (void) pixels; empty bins get 1e-7 (as the authors do) so
        every KL divergence against them is finite. Only labelled regions may be asked for.
        """
        tiles = self.grid.tiles(self.partial_masks)  # [P, R, h, w]
        img, row, col = self.grid.split(region_ids)
        regions = tiles[img, row * self.grid.cols + col]  # [M, h, w]: one image per region
        one_region = RegionGrid(self.grid.region_size, self.grid.region_size)
        return region_class_distribution(regions, one_region, num_classes, self.ignore_index)[:, 0]
