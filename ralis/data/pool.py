"""The region pool: which regions are labelled, at which step, and candidate sampling.

Budgets are counted in *units* of ``regions.nominal_pixels`` labelled pixels: one unit is one
rectangle, or the pixels of an average superpixel, so both region kinds spend labels alike.
"""

from __future__ import annotations

import math

import torch

from ralis.errors import ConfigError
from ralis.regions import Regions

UNIT_TOLERANCE = 1e-9
"""Budget units are pixel ratios: two amounts closer than this are the same."""


class RegionPool:
    """Labelling record over the regions of ``num_images`` images.

    ``labelled_at[r]`` is the AL step at which region ``r`` was labelled, or -1; ``order`` keeps
    the acquisition sequence (region ids in the order they were labelled). Ids that are not
    regions (superpixel padding, ``regions.valid``) are never candidates.
    """

    def __init__(self, regions: Regions, num_images: int) -> None:
        self.regions = regions
        self.num_images = num_images
        self.valid = regions.valid(num_images)
        self.labelled_at = torch.full((num_images * regions.per_image,), -1, dtype=torch.long)
        self.order: list[int] = []
        self.labelled_pixels = 0
        self._all_valid = bool(self.valid.all())

    @property
    def num_regions(self) -> int:
        return self.labelled_at.numel() if self._all_valid else int(self.valid.sum())

    @property
    def total_units(self) -> float:
        """The whole pool in budget units."""
        px = self.regions.pixels(self.valid.nonzero().squeeze(1)).sum()
        return float(px) / self.regions.nominal_pixels

    def units(self) -> float:
        """Labels spent so far in budget units (rectangles: exactly the labelled regions)."""
        return self.labelled_pixels / self.regions.nominal_pixels

    def spent(self, budget: float) -> bool:
        """Whether the labels so far reach ``budget`` units (up to float rounding)."""
        return self.units() >= budget - UNIT_TOLERANCE

    def regions_for(self, units: float) -> int:
        """Regions to label for about ``units`` more budget units (at least 1): exact for
        rectangles, by the unlabelled regions' mean size for superpixels."""
        if self._all_valid and self.regions.kind == "rect":
            return max(1, math.ceil(units - UNIT_TOLERANCE))
        free = self._unlabelled().nonzero().squeeze(1)
        if free.numel() == 0:
            return 1
        mean = float(self.regions.pixels(free).double().mean()) / self.regions.nominal_pixels
        return max(1, math.ceil(units / mean - UNIT_TOLERANCE))

    def _unlabelled(self) -> torch.Tensor:
        free = self.labelled_at < 0
        return free if self._all_valid else free & self.valid

    @property
    def num_labelled(self) -> int:
        return len(self.order)

    @property
    def num_unlabelled(self) -> int:
        return self.num_regions - self.num_labelled

    def labelled_ids(self) -> torch.Tensor:
        """Labelled region ids in acquisition order, ``[L]``."""
        return torch.tensor(self.order, dtype=torch.long)

    def unlabelled_ids(self) -> torch.Tensor:
        return self._unlabelled().nonzero().squeeze(1)

    def ids_labelled_at(self, step: int) -> torch.Tensor:
        return (self.labelled_at == step).nonzero().squeeze(1)

    def labelled_images(self) -> torch.Tensor:
        """Images with at least one labelled region, ``[I]`` sorted."""
        per_image = (self.labelled_at >= 0).view(self.num_images, -1).any(1)
        return per_image.nonzero().squeeze(1)

    def label(self, region_ids: torch.Tensor, step: int) -> None:
        ids = region_ids.reshape(-1).long()
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.labelled_at.numel()):
            raise ValueError("region id out of range")
        if len(set(ids.tolist())) != ids.numel():
            raise ValueError("a region was selected twice in one step")
        if (self.labelled_at[ids] >= 0).any():
            raise ValueError("a selected region is already labelled")
        if not self._all_valid and not self.valid[ids].all():
            raise ValueError("a selected id is not a region")
        self.labelled_at[ids] = step
        self.order.extend(ids.tolist())
        self.labelled_pixels += int(self.regions.pixels(ids).sum())

    def label_mask(self) -> torch.Tensor:
        """Bool pixel mask of labelled regions, ``[num_images, H, W]``."""
        return self.regions.mask(self.labelled_ids(), self.num_images)

    def sample_candidates(
        self, num_pools: int, pool_size: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Draw ``num_pools`` disjoint pools of ``pool_size`` unlabelled regions: ``[K, N]``.

        As the authors do, images are drawn at random until they hold enough unlabelled regions,
        and candidates are drawn among those images' regions, so a step runs the network on few
        images. When fewer than ``K * N`` regions are left, N shrinks (and then K).
        """
        unlabelled = self._unlabelled()
        left = int(unlabelled.sum())
        if left == 0:
            raise ConfigError("the pool has no unlabelled region left")
        num_pools = min(num_pools, left)
        pool_size = max(1, min(pool_size, left // num_pools))
        wanted = num_pools * pool_size
        per_image_left = unlabelled.view(self.num_images, -1).sum(1)
        order = torch.randperm(self.num_images, generator=generator)
        cum = per_image_left[order].cumsum(0)
        take = int((cum < wanted).sum()) + 1
        images = order[:take]
        region_flags = unlabelled.view(self.num_images, -1)[images]
        local = region_flags.nonzero()
        ids = images[local[:, 0]] * self.regions.per_image + local[:, 1]
        pick = torch.randperm(ids.numel(), generator=generator)[:wanted]
        return ids[pick].view(num_pools, pool_size)

    def state_dict(self) -> dict:
        return {"labelled_at": self.labelled_at.clone(), "order": list(self.order)}

    def load_state_dict(self, state: dict) -> None:
        self.labelled_at = state["labelled_at"].clone()
        self.order = list(state["order"])
        self.labelled_pixels = int(self.regions.pixels(self.labelled_ids()).sum())
