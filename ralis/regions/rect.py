"""Rectangle regions (the paper's): a fixed grid of non-overlapping boxes per image.

Region id ``r = image * R + row * cols + col`` with ``R = rows * cols`` regions per image.
Pixels right of ``cols * w`` or below ``rows * h`` belong to no region (as in the paper's grid).
The grid is the same for every image, so one :class:`RegionGrid` serves every image set; the
``images`` arguments of the region interface (:mod:`ralis.regions.base`) are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ralis.errors import ConfigError

# Pixels per chunk of images in the per-region histograms (bounds the int64 temporaries).
PIXEL_CHUNK = 1 << 24


@dataclass(frozen=True)
class RegionGrid:
    """The region grid of one image size.

    Args:
        image_size: ``(H, W)`` of every image.
        region_size: ``(h, w)`` of one region (the paper: 90 tall x 80 wide on 360x480 CamVid).
    """

    image_size: tuple[int, int]
    region_size: tuple[int, int]
    kind = "rect"

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

    @property
    def nominal_pixels(self) -> int:
        """Pixels of a budget unit: one region."""
        return self.region_pixels

    def describe(self) -> dict:
        return {"kind": "rect", "size": list(self.region_size), "image_size": list(self.image_size)}

    def subset(self, indices: Sequence[int]) -> RegionGrid:
        return self

    def concat(self, other: RegionGrid) -> RegionGrid:
        if other != self:
            raise ValueError("cannot join image sets with different region grids")
        return self

    def valid(self, num_images: int) -> torch.Tensor:
        """Which ids of ``num_images`` images are regions: ``[num_images * R]`` bool (all)."""
        return torch.ones(num_images * self.per_image, dtype=torch.bool)

    def pixels(self, region_ids: torch.Tensor) -> torch.Tensor:
        """Pixels of every region, ``[M]`` long."""
        return torch.full((region_ids.numel(),), self.region_pixels, dtype=torch.long)

    def anchors(self, region_ids: torch.Tensor) -> torch.Tensor:
        """``[M] -> [M, 2]`` ``(y, x)`` a pixel of each region: its centre (crops contain it)."""
        b = self.boxes(region_ids)
        return torch.stack([(b[:, 0] + b[:, 2]) // 2, (b[:, 1] + b[:, 3]) // 2], dim=1)

    def crop_masks(self, region_ids: torch.Tensor) -> list[torch.Tensor] | None:
        """Which pixels of each region's box belong to it: ``None``, every pixel."""
        return None

    def split(self, region_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``region_ids [M]`` -> ``(image [M], row [M], col [M])``."""
        image, local = region_ids // self.per_image, region_ids % self.per_image
        return image, local // self.cols, local % self.cols

    def join(self, image: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`split`."""
        return image * self.per_image + row * self.cols + col

    def labels(self, images: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """``[n]`` image indices -> ``[n, H, W]`` long: each pixel's local region id (the same
        map for every image), -1 right of or below the grid."""
        (H, W), (h, w) = self.image_size, self.region_size
        row = torch.arange(H) // h
        col = torch.arange(W) // w
        ids = row[:, None] * self.cols + col[None, :]
        ids = ids.masked_fill((row[:, None] >= self.rows) | (col[None, :] >= self.cols), -1)
        return ids.expand(len(images), H, W).clone()

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

    def region_mean(self, maps: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of a per-pixel map over every region: ``[N, H, W]`` -> ``[N, R]``."""
        h, w = self.region_size
        x = maps[..., : self.rows * h, : self.cols * w].float()
        x = x.reshape(maps.shape[0], self.rows, h, self.cols, w)
        return x.mean(dim=(2, 4)).reshape(maps.shape[0], self.per_image)

    def bincount(self, ids: torch.Tensor, nbins: int, images: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """Per-region counts of integer ids in ``[0, nbins)``: ``[N, H, W]`` -> ``[N, R, nbins]``
        int64 (chunks of images bound the temporaries; no loop over regions)."""
        n_img, R = ids.shape[0], self.per_image
        step = max(1, PIXEL_CHUNK // max(R * self.region_pixels, 1))
        out = []
        for start in range(0, n_img, step):  # loop over chunks of images only
            tiles = self.tiles(ids[start : start + step])  # [n, R, h, w]
            n = tiles.shape[0]
            offsets = torch.arange(n * R, device=ids.device).view(n, R, 1, 1) * nbins
            flat = (tiles.long() + offsets).reshape(-1)
            out.append(torch.bincount(flat, minlength=n * R * nbins).view(n, R, nbins))
        if not out:
            return torch.zeros(0, R, nbins, dtype=torch.long, device=ids.device)
        return torch.cat(out)

    def cell_pool(self, values: torch.Tensor, out: int, poolings: Sequence[str],
                  images: torch.Tensor | None = None) -> torch.Tensor:
        """Min / mean / max of a per-pixel map over an ``out x out`` grid of cells per region.

        The kernel is ``(h // out, w // out)`` with stride = kernel and no padding, so the last
        ``h % out`` rows and ``w % out`` columns of a region are dropped (as the reference does).
        ``[N, H, W]`` -> ``[N, R, len(poolings) * out * out]``, ``[min | mean | max]`` order.
        """
        h, w = self.region_size
        kh, kw = h // out, w // out
        if kh < 1 or kw < 1:
            raise ConfigError(f"regions of {h}x{w} (h x w) are smaller than the {out}x{out} "
                              "pooling")
        tiles = self.tiles(values)  # [N, R, h, w]
        n, R = tiles.shape[:2]
        blocks = tiles[..., : out * kh, : out * kw].reshape(n, R, out, kh, out, kw)  # a view
        reducers = {
            "min": lambda b: b.amin(dim=(3, 5)),
            "mean": lambda b: b.mean(dim=(3, 5)),
            "max": lambda b: b.amax(dim=(3, 5)),
        }
        return torch.cat([reducers[p](blocks).reshape(n, R, out * out) for p in poolings], dim=-1)

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
