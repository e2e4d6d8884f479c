"""The region pool: which regions are labelled, at which step, and candidate sampling."""

from __future__ import annotations

import torch

from ralis.data.regions import RegionGrid
from ralis.errors import ConfigError


class RegionPool:
    """Labelling record over the regions of ``num_images`` images on ``grid``.

    ``labelled_at[r]`` is the AL step at which region ``r`` was labelled, or -1; ``order`` keeps
    the acquisition sequence (region ids in the order they were labelled).
    """

    def __init__(self, grid: RegionGrid, num_images: int) -> None:
        self.grid = grid
        self.num_images = num_images
        self.labelled_at = torch.full((num_images * grid.per_image,), -1, dtype=torch.long)
        self.order: list[int] = []

    @property
    def num_regions(self) -> int:
        return self.labelled_at.numel()

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
        return (self.labelled_at < 0).nonzero().squeeze(1)

    def ids_labelled_at(self, step: int) -> torch.Tensor:
        return (self.labelled_at == step).nonzero().squeeze(1)

    def labelled_images(self) -> torch.Tensor:
        """Images with at least one labelled region, ``[I]`` sorted."""
        per_image = (self.labelled_at >= 0).view(self.num_images, -1).any(1)
        return per_image.nonzero().squeeze(1)

    def label(self, region_ids: torch.Tensor, step: int) -> None:
        ids = region_ids.reshape(-1).long()
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_regions):
            raise ValueError("region id out of range")
        if len(set(ids.tolist())) != ids.numel():
            raise ValueError("a region was selected twice in one step")
        if (self.labelled_at[ids] >= 0).any():
            raise ValueError("a selected region is already labelled")
        self.labelled_at[ids] = step
        self.order.extend(ids.tolist())

    def label_mask(self) -> torch.Tensor:
        """Bool pixel mask of labelled regions, ``[num_images, H, W]``."""
        return self.grid.mask(self.labelled_ids(), self.num_images)

    def sample_candidates(
        self, num_pools: int, pool_size: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Draw ``num_pools`` disjoint pools of ``pool_size`` unlabelled regions: ``[K, N]``.

        As the authors do, images are drawn at random until they hold enough unlabelled regions,
        and candidates are drawn among those images' regions, so a step runs the network on few
        images. When fewer than ``K * N`` regions are left, N shrinks (and then K).
        """
        unlabelled = self.labelled_at < 0
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
        ids = images[local[:, 0]] * self.grid.per_image + local[:, 1]
        pick = torch.randperm(ids.numel(), generator=generator)[:wanted]
        return ids[pick].view(num_pools, pool_size)

    def state_dict(self) -> dict:
        return {"labelled_at": self.labelled_at.clone(), "order": list(self.order)}

    def load_state_dict(self, state: dict) -> None:
        self.labelled_at = state["labelled_at"].clone()
        self.order = list(state["order"])
