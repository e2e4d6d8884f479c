"""The simulated oracle: reveals the ground truth of the regions it is asked to label."""

from __future__ import annotations

import torch

from ralis.data.regions import RegionGrid
from ralis.errors import ConfigError


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
        t = tiles[img, row * self.grid.cols + col].reshape(region_ids.numel(), self.grid.region_pixels)
        t = torch.where((t >= 0) & (t < num_classes), t, torch.full_like(t, num_classes))
        offsets = torch.arange(region_ids.numel()).unsqueeze(1) * (num_classes + 1)
        counts = torch.bincount((t + offsets).reshape(-1), minlength=offsets.numel() * (num_classes + 1))
        counts = counts.view(-1, num_classes + 1).double()
        dist = (counts / counts.sum(1, keepdim=True).clamp_min(1)).clamp_min(1e-7)
        return dist / dist.sum(1, keepdim=True)
