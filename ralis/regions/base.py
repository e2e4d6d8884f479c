"""What a region is, to the rest of ralis: one interface over every region kind.

A region kind turns the images of a set into regions with integer ids
``id = image * per_image + local``. Pools, the oracle, crops, scores, the agent's features, the
report's drawings and the budgets only go through this interface, so rectangles
(:mod:`ralis.regions.rect`) and superpixels (:mod:`ralis.regions.superpixels`) are
interchangeable. Shapes: ``M`` region ids, ``n`` images, ``R = per_image``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

REGION_KINDS = ("rect", "slic")


class Regions(Protocol):
    kind: str  # "rect" or "slic"
    image_size: tuple[int, int]  # (H, W) at the working resolution
    per_image: int  # ids per image (superpixels: the most segments of any image)

    @property
    def nominal_pixels(self) -> float:
        """Pixels of one budget unit (a rectangle; an average superpixel)."""

    def describe(self) -> dict:
        """JSON description saved with runs, policies and labelling records."""

    def subset(self, indices: Sequence[int]) -> Regions:
        """The regions of some images of the set, renumbered ``0..len(indices)-1``."""

    def concat(self, other: Regions) -> Regions:
        """The regions of this set followed by another's."""

    def valid(self, num_images: int) -> torch.Tensor:
        """``[num_images * R]`` bool: ids that are regions (padding ids are not)."""

    def pixels(self, region_ids: torch.Tensor) -> torch.Tensor:
        """``[M]`` -> ``[M]`` pixels per region."""

    def labels(self, images: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """``[n]`` image indices -> ``[n, H, W]`` long local region id per pixel (-1: none)."""

    def boxes(self, region_ids: torch.Tensor) -> torch.Tensor:
        """``[M]`` -> ``[M, 4]`` bounding boxes ``(y0, x0, y1, x1)``, end exclusive."""

    def anchors(self, region_ids: torch.Tensor) -> torch.Tensor:
        """``[M]`` -> ``[M, 2]`` a pixel ``(y, x)`` of each region; training crops contain it."""

    def crop_masks(self, region_ids: torch.Tensor) -> list[torch.Tensor] | None:
        """Which pixels of each box belong to its region (``None``: all of them)."""

    def mask(self, region_ids: torch.Tensor, num_images: int) -> torch.Tensor:
        """``[num_images, H, W]`` bool, True inside the given regions."""

    def region_mean(self, maps: torch.Tensor, images: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """``[n, H, W]`` maps of ``images`` (default ``0..n-1``) -> ``[n, R]`` region means."""

    def bincount(self, ids: torch.Tensor, nbins: int, images: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """``[n, H, W]`` ints in ``[0, nbins)`` -> ``[n, R, nbins]`` counts per region."""

    def cell_pool(self, values: torch.Tensor, out: int, poolings: Sequence[str],
                  images: torch.Tensor | None = None) -> torch.Tensor:
        """``[n, H, W]`` -> ``[n, R, len(poolings) * out * out]`` pooled over cells."""


def image_of(regions: Regions, region_ids: torch.Tensor) -> torch.Tensor:
    """``[M]`` -> ``[M]`` the image of each region."""
    return region_ids // regions.per_image
