"""Regions: a fixed grid of non-overlapping rectangles per image, one integer id per region.

Region id ``r = image * R + row * cols + col`` with ``R = rows * cols`` regions per image.
Pixels right of ``cols * w`` or below ``rows * h`` belong to no region (as in the paper's grid).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ralis.errors import ConfigError


@dataclass(frozen=True)
class RegionGrid:
    """The region grid of one image size.

    Args:
        image_size: ``(H, W)`` of every image.
        region_size: ``(h, w)`` of one region (the paper: 90 tall x 80 wide on 360x480 CamVid).
    """

    image_size: tuple[int, int]
    region_size: tuple[int, int]

    def __post_init__(self) -> None:
        (H, W), (h, w) = self.image_size, self.region_size
        if h <= 0 or w <= 0:
            raise ConfigError(f"region size must be positive, got {h}x{w} (h x w)")
        if h > H or w > W:
            raise ConfigError(
                f"region size {h}x{w} (h x w) is larger than the image {H}x{W}; "
                "choose a smaller --region-size"
            )

    @property
    def rows(self) -> int:
        return self.image_size[0] // self.region_size[0]

    @property
    def cols(self) -> int:
        return self.image_size[1] // self.region_size[1]

    @property
    def per_image(self) -> int:
        """Regions per image, R."""
        return self.rows * self.cols

    @property
    def region_pixels(self) -> int:
        return self.region_size[0] * self.region_size[1]

    def split(self, region_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``region_ids [M]`` -> ``(image [M], row [M], col [M])``."""
        image, local = region_ids // self.per_image, region_ids % self.per_image
        return image, local // self.cols, local % self.cols

    def join(self, image: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`split`."""
        return image * self.per_image + row * self.cols + col

    def boxes(self, region_ids: torch.Tensor) -> torch.Tensor:
        """``[M]`` -> ``[M, 4]`` boxes ``(y0, x0, y1, x1)`` in pixels (end exclusive)."""
        _, row, col = self.split(region_ids)
        h, w = self.region_size
        return torch.stack([row * h, col * w, row * h + h, col * w + w], dim=1)

    def tiles(self, maps: torch.Tensor) -> torch.Tensor:
        """Cut per-pixel maps into regions.

        ``maps [N, ..., H, W]`` -> ``[N, R, ..., h, w]`` (a view where possible; no Python loops).
        """
        h, w = self.region_size
        rows, cols = self.rows, self.cols
        lead = maps.shape[1:-2]
        x = maps[..., : rows * h, : cols * w]
        x = x.reshape(maps.shape[0], *lead, rows, h, cols, w)
        k = len(lead)
        # [N, *lead, rows, h, cols, w] -> [N, rows, cols, *lead, h, w]
        perm = [0, k + 1, k + 3, *range(1, k + 1), k + 2, k + 4]
        x = x.permute(*perm)
        return x.reshape(maps.shape[0], rows * cols, *lead, h, w)

    def region_mean(self, maps: torch.Tensor) -> torch.Tensor:
        """Mean of a per-pixel map over every region: ``[N, H, W]`` -> ``[N, R]``."""
        h, w = self.region_size
        x = maps[..., : self.rows * h, : self.cols * w].float()
        x = x.reshape(maps.shape[0], self.rows, h, self.cols, w)
        return x.mean(dim=(2, 4)).reshape(maps.shape[0], self.per_image)

    def mask(self, region_ids: torch.Tensor, num_images: int) -> torch.Tensor:
        """Boolean pixel mask ``[num_images, H, W]``, True inside the given regions."""
        h, w = self.region_size
        flags = torch.zeros(num_images * self.per_image, dtype=torch.bool)
        flags[region_ids] = True
        grid = flags.view(num_images, self.rows, 1, self.cols, 1)
        grid = grid.expand(num_images, self.rows, h, self.cols, w)
        out = torch.zeros(num_images, *self.image_size, dtype=torch.bool)
        out[:, : self.rows * h, : self.cols * w] = grid.reshape(
            num_images, self.rows * h, self.cols * w
        )
        return out


def scaled_region_size(
    paper_region: tuple[int, int], paper_image: tuple[int, int], image_size: tuple[int, int]
) -> tuple[int, int]:
    """Scale the paper's region size to a working resolution, keeping the regions per image."""
    return (
        max(1, paper_region[0] * image_size[0] // paper_image[0]),
        max(1, paper_region[1] * image_size[1] // paper_image[1]),
    )
