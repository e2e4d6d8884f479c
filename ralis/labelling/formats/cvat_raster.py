"""CVAT's mask RLE and the rasterisation of CVAT shapes (polygons, boxes, ellipses) at native
pixels: a pixel belongs to a shape when its centre is inside (:mod:`.cvat` says why)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["encode_rle", "decode_rle", "fill_polygon", "box_corners", "fill_ellipse"]


def encode_rle(mask: np.ndarray) -> list[int]:
    """CVAT's mask RLE of boolean ``mask [h, w]`` (the mask's own box): run lengths, row-major,
    alternating background/foreground and starting with background (a leading 0 when the first
    pixel is foreground). ``[[1, 1], [0, 1]] -> [0, 2, 1, 1]``."""
    flat = np.asarray(mask, dtype=bool).ravel()
    if flat.size == 0:
        return []
    cuts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], cuts, [flat.size])))
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return runs.astype(np.int64).tolist()


def decode_rle(counts: Sequence[int] | np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`encode_rle`: ``counts`` (sum ``height * width``) -> bool ``[h, w]``."""
    counts = np.asarray(counts, dtype=np.int64)
    values = (np.arange(counts.size) % 2).astype(bool)  # background first
    return np.repeat(values, counts).reshape(height, width)


def fill_polygon(xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixels whose centres lie inside polygon ``xy [N, 2]`` (x, y in continuous image
    coordinates; even-odd rule) -> bool ``[height, width]``.

    Scanline at each pixel-row centre, vectorised over edges and rows: a crossing at ``x`` counts
    for the pixels with ``c + 0.5 > x``, i.e. from column ``floor(x + 0.5)`` on; the parity of
    the crossings to a pixel's left says whether it is inside. Half-open rules on both axes make
    polygons that share an edge split its pixels instead of both claiming them."""
    out = np.zeros((height, width), dtype=bool)
    xy = np.asarray(xy, dtype=np.float64)
    if len(xy) < 3:
        return out
    x0, y0 = xy[:, 0], xy[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    r_lo = max(math.ceil(y0.min() - 0.5), 0)
    r_hi = min(math.floor(y0.max() - 0.5), height - 1)
    step = max(1, 4_000_000 // len(xy))  # rows per chunk: keeps [rows, edges] arrays small
    for start in range(r_lo, r_hi + 1, step):
        rows = np.arange(start, min(start + step, r_hi + 1))
        py = rows[:, None] + 0.5
        cross = (y0 <= py) != (y1 <= py)  # [rows, edges]; horizontal edges never cross
        dy = np.where(y1 != y0, y1 - y0, 1.0)
        x = x0 + (py - y0) * (x1 - x0) / dy
        r_idx, e_idx = np.nonzero(cross)
        cols = np.clip(np.floor(x[r_idx, e_idx] + 0.5), 0, width).astype(np.int64)
        hits = np.bincount(r_idx * (width + 1) + cols, minlength=len(rows) * (width + 1))
        parity = np.cumsum(hits.reshape(len(rows), width + 1), axis=1)[:, :width] % 2
        out[rows] = parity.astype(bool)
    return out


def box_corners(xtl: float, ytl: float, xbr: float, ybr: float, rotation: float = 0.0
                ) -> np.ndarray:
    """The 4 corners ``[4, 2]`` of a CVAT box, rotated by ``rotation`` degrees (clockwise on
    screen, y down) about its centre."""
    cx, cy = (xtl + xbr) / 2, (ytl + ybr) / 2
    dx = np.array([xtl, xbr, xbr, xtl]) - cx
    dy = np.array([ytl, ytl, ybr, ybr]) - cy
    t = math.radians(rotation)
    return np.stack([cx + dx * math.cos(t) - dy * math.sin(t),
                     cy + dx * math.sin(t) + dy * math.cos(t)], axis=1)


def fill_ellipse(cx: float, cy: float, rx: float, ry: float, rotation: float, height: int,
                 width: int) -> np.ndarray:
    """Pixels whose centres lie inside a CVAT ellipse -> bool ``[height, width]``."""
    t = math.radians(rotation)
    dy = np.arange(height)[:, None] + 0.5 - cy
    dx = np.arange(width)[None, :] + 0.5 - cx
    u = dx * math.cos(t) + dy * math.sin(t)
    v = -dx * math.sin(t) + dy * math.cos(t)
    return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0
