"""Drawing primitives of the synthetic street scenes (:mod:`ralis.data.street_scenes`): smooth
noise, and a canvas that paints objects with a colour, a texture and a class id together, then
renders the image once with lighting and pixel noise."""

from __future__ import annotations

import numpy as np

SKY, BUILDING, ROAD, SIDEWALK, VEGETATION, POLE, SIGN, PERSON, BICYCLE = range(9)  # class ids
IGNORE = 255


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Bilinearly interpolated Gaussian noise on a grid of ``cell`` pixels: float32 ``[h, w]``."""
    grid = rng.standard_normal((h // cell + 2, w // cell + 2), dtype=np.float32)
    fy, fx = np.arange(h, dtype=np.float32) / cell, np.arange(w, dtype=np.float32) / cell
    iy, ix = fy.astype(np.int64), fx.astype(np.int64)
    ty, tx = (fy - iy)[:, None], fx - ix
    rows = np.take(grid, ix, axis=1) * (1 - tx) + np.take(grid, ix + 1, axis=1) * tx  # [gh, w]
    return np.take(rows, iy, axis=0) * (1 - ty) + np.take(rows, iy + 1, axis=0) * ty


class Canvas:
    """A scene being drawn.

    Painting only records, per pixel, which painted object is on top (``obj``, int32 ``[H, W]``)
    and its label (``mask``, int64 ``[H, W]``); each object has a colour and a texture amplitude.
    :meth:`finish` renders the image once: ``colour[obj] + amp[obj] * texture``, then lighting
    (``light``, float32 ``[H, W]``: shadows, sky gradient) and pixel noise.
    """

    def __init__(self, rng: np.random.Generator, h: int, w: int) -> None:
        self.rng, self.h, self.w = rng, h, w
        self.obj = np.zeros((h, w), np.int32)
        self.mask = np.full((h, w), SKY, np.int64)
        self.colors: list[np.ndarray] = [np.zeros(3, np.float32)]
        self.amps: list[float] = [0.0]
        self.light = np.ones((h, w), np.float32)
        coarse = smooth_noise(rng, h, w, max(2, round(h / 12)))
        fine = smooth_noise(rng, h, w, max(1, round(h / 48)))
        self.texture = 0.7 * coarse + 0.7 * fine

    def window(
        self, y0: float, y1: float, x0: float, x1: float
    ) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
        """Clip a box to the image: (slices, ys ``[h', 1]``, xs ``[1, w']``) or None if empty."""
        iy0, iy1 = max(0, int(np.floor(y0))), min(self.h, int(np.ceil(y1)))
        ix0, ix1 = max(0, int(np.floor(x0))), min(self.w, int(np.ceil(x1)))
        if iy0 >= iy1 or ix0 >= ix1:
            return None
        ys = np.arange(iy0, iy1, dtype=np.float32)[:, None] + 0.5
        xs = np.arange(ix0, ix1, dtype=np.float32)[None, :] + 0.5
        return (slice(iy0, iy1), slice(ix0, ix1)), ys, xs

    def paint(
        self,
        sl: tuple[slice, slice],
        region: np.ndarray | None,
        cls: int,
        color: np.ndarray | tuple[float, float, float],
        amp: float = 8.0,
    ) -> None:
        """Put a new object with a textured colour and label ``cls`` on ``region`` (bool,
        broadcastable to the ``sl`` window; None: all of it)."""
        key = len(self.colors)
        self.colors.append(np.asarray(color, np.float32))
        self.amps.append(float(amp))
        if region is None:
            self.obj[sl] = key
            self.mask[sl] = cls
        else:
            np.copyto(self.obj[sl], key, where=region)
            np.copyto(self.mask[sl], cls, where=region)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """Render with lighting, colour cast and pixel noise -> (uint8 ``[H, W, 3]``, int64
        ``[H, W]``)."""
        rng = self.rng
        colors, amps = np.stack(self.colors), np.asarray(self.amps, np.float32)
        image = np.take(colors, self.obj, axis=0)
        image += (np.take(amps, self.obj) * self.texture)[..., None]
        gain = rng.uniform(0.75, 1.2) * rng.uniform(0.92, 1.08, 3).astype(np.float32)
        xs = np.arange(self.w, dtype=np.float32) / self.w - 0.5
        light = self.light * (1.0 + np.float32(rng.uniform(-0.25, 0.25)) * xs)
        image *= light[..., None] * gain
        sigma = np.float32(rng.uniform(4, 10) * 2 * np.sqrt(3))  # uniform noise of std 4..10
        image += (rng.random(image.shape, dtype=np.float32) - np.float32(0.5)) * sigma
        return np.clip(image, 0, 255).astype(np.uint8), self.mask


def uniform3(rng: np.random.Generator, low: tuple, high: tuple) -> np.ndarray:
    return rng.uniform(low, high).astype(np.float32)


def grey(rng: np.random.Generator, low: float, high: float, tint: float = 0.06) -> np.ndarray:
    return (rng.uniform(low, high) * rng.uniform(1 - tint, 1 + tint, 3)).astype(np.float32)


def segment_distance(
    ys: np.ndarray, xs: np.ndarray, p: tuple[float, float], q: tuple[float, float]
) -> np.ndarray:
    """Distance of every pixel centre to the segment p-q (points as (y, x)): ``[h', w']``."""
    dy, dx = q[0] - p[0], q[1] - p[1]
    t = ((ys - p[0]) * dy + (xs - p[1]) * dx) / max(dy * dy + dx * dx, 1e-6)
    t = np.clip(t, 0.0, 1.0)
    return np.hypot(ys - (p[0] + t * dy), xs - (p[1] + t * dx))
