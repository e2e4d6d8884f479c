"""Where a region of the working-resolution grid lies in an image's native pixels, and back.

The working image is a (bilinear) resize of the native one, and masks are resized by nearest
neighbour (:func:`ralis.data.resize.nearest_indices`): working pixel ``y`` shows native row
``rows[y]``. A person labels native pixels, so a region is requested as the native box that holds
every native pixel its working pixels show, and the labels come back by the same sampling. With
downscaling (the usual case) the boxes of neighbouring regions tile the image exactly; when a
side is upscaled, neighbouring boxes may share one native row or column (each region reads only
its own working pixels, so a shared row is never counted twice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ralis.data.resize import nearest_indices
from ralis.regions import RegionGrid


@dataclass(frozen=True)
class NativeMap:
    """The sampling between one image's native size and the working resolution.

    ``rows [H]`` / ``cols [W]``: the native row/column each working row/column shows."""

    native: tuple[int, int]
    working: tuple[int, int]
    rows: np.ndarray
    cols: np.ndarray

    @classmethod
    def of(cls, native: tuple[int, int], working: tuple[int, int]) -> NativeMap:
        return cls(tuple(native), tuple(working), nearest_indices(native[0], working[0]),
                   nearest_indices(native[1], working[1]))

    def _span(self, idx: np.ndarray, n_native: int, lo: int, hi: int) -> tuple[int, int]:
        """Native ``[start, end)`` covering working ``[lo, hi)`` (tiling when downscaled)."""
        start = 0 if lo == 0 else int(idx[lo])
        end = n_native if hi == len(idx) else int(max(idx[hi], idx[hi - 1] + 1))
        return start, end

    def box(self, y0: int, x0: int, y1: int, x1: int) -> tuple[int, int, int, int]:
        """Working box ``[y0, y1) x [x0, x1)`` -> native ``(top, left, height, width)``."""
        top, bottom = self._span(self.rows, self.native[0], y0, y1)
        left, right = self._span(self.cols, self.native[1], x0, x1)
        return top, left, bottom - top, right - left

    def sample(self, native: np.ndarray, y0: int, x0: int, y1: int, x1: int,
               top: int = 0, left: int = 0) -> np.ndarray:
        """Working pixels ``[y0, y1) x [x0, x1)`` read from ``native`` (a crop of the native
        image whose first pixel is native ``(top, left)``): ``[y1 - y0, x1 - x0]``."""
        r = self.rows[y0:y1] - top
        c = self.cols[x0:x1] - left
        return native[r[:, None], c[None, :]]

    def to_native(self, working: np.ndarray) -> np.ndarray:
        """A working-resolution map ``[H, W]`` shown at native size (nearest): ``[Hn, Wn]``."""
        r = nearest_indices(self.working[0], self.native[0])
        c = nearest_indices(self.working[1], self.native[1])
        return working[r[:, None], c[None, :]]


def region_boxes(grid: RegionGrid, local_ids: np.ndarray) -> np.ndarray:
    """Working boxes ``(y0, x0, y1, x1)`` of regions given by their index inside one image:
    ``[M] -> [M, 4]``."""
    h, w = grid.region_size
    row, col = local_ids // grid.cols, local_ids % grid.cols
    return np.stack([row * h, col * w, row * h + h, col * w + w], axis=1)
