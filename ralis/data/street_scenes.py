"""Procedural street scenes: one image and its label map from a random generator, at any size.

A scene has sky on top, a row of buildings (random heights and colours, window grids), a road in
perspective with lane markings, sidewalks at the sides, trees and hedges, and small rare objects:
poles with signs, shop signs, people and bicycles. Colour ranges overlap on purpose (grey road,
grey sidewalk, grey poles and grey buildings; green signs and green trees; clothes of any colour),
and textures, shadows, lighting changes and pixel noise are added, so classes cannot be told apart
by colour alone. Pixel frequencies span more than two orders of magnitude, as in CamVid. A few
pixels are void (ignore index 255): a thin band across some images and a dark "car bonnet" strip at
the bottom of others.
"""

from __future__ import annotations

import numpy as np

from ralis.data.scene_canvas import (
    BICYCLE,
    BUILDING,
    IGNORE,
    PERSON,
    POLE,
    ROAD,
    SIDEWALK,
    SIGN,
    SKY,
    VEGETATION,
    Canvas,
    grey,
    segment_distance,
    uniform3,
)


# --- scene parts ------------------------------------------------------------------------------
class Ground:
    """Road geometry: below ``horizon``, depth ``d = (y - horizon) / (H - horizon)`` in (0, 1];
    the road spans ``|x - centre(d)| < half_width(d)``; everything else below is sidewalk."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, horizon: float) -> None:
        self.h, self.w, self.horizon = h, w, horizon
        self.vanish = w * rng.uniform(0.35, 0.65)
        self.drift = w * rng.uniform(-0.15, 0.15)
        self.spread = w * rng.uniform(0.3, 0.6)

    def depth(self, y: np.ndarray | float) -> np.ndarray | float:
        return (y - self.horizon) / (self.h - self.horizon)

    def centre(self, d: np.ndarray | float) -> np.ndarray | float:
        return self.vanish + d * self.drift

    def half_width(self, d: np.ndarray | float) -> np.ndarray | float:
        return d * self.spread + 0.5

    def sidewalk_spot(self, rng: np.random.Generator) -> tuple[float, float, float] | None:
        """A random ground point ``(y, x, depth)`` on a sidewalk, or None if none was found."""
        for _ in range(4):
            d = rng.uniform(0.08, 0.95)
            y = self.horizon + d * (self.h - self.horizon)
            side = 1.0 if rng.random() < 0.5 else -1.0
            x = self.centre(d) + side * (self.half_width(d) + rng.uniform(0.02, 0.3) * self.w)
            if 1 <= x < self.w - 1:
                return float(y), float(x), float(d)
        return None


def _sky(c: Canvas, horizon: float) -> None:
    rng = c.rng
    blue, overcast = np.array([95, 140, 205], np.float32), np.array([178, 180, 184], np.float32)
    color = blue + (overcast - blue) * rng.uniform() + rng.uniform(-12, 12, 3).astype(np.float32)
    win = c.window(0, horizon + 1, 0, c.w)
    if win is None:
        return
    sl, ys, _ = win
    c.paint(sl, None, SKY, color, amp=rng.uniform(3, 9))
    c.light[sl] *= 1.0 + ys / max(horizon, 1.0) * np.float32(rng.uniform(0.03, 0.15))


def _building_color(rng: np.random.Generator) -> np.ndarray:
    kind = rng.integers(4)
    if kind == 0:
        return grey(rng, 70, 175)
    if kind == 1:
        return uniform3(rng, (120, 60, 45), (180, 105, 85))
    if kind == 2:
        return uniform3(rng, (155, 135, 100), (215, 190, 155))
    return uniform3(rng, (75, 105, 95), (135, 155, 155))


def _windows(c: Canvas, sl: tuple, ys: np.ndarray, xs: np.ndarray, top: float, x0: float) -> None:
    rng = c.rng
    py, px = rng.uniform(0.05, 0.1) * c.h, rng.uniform(0.04, 0.09) * c.w
    fy, fx = rng.uniform(0.35, 0.7), rng.uniform(0.35, 0.7)
    grid = (((ys - top) % py) > py * (1 - fy)) & (((xs - x0) % px) > px * (1 - fx))
    grid &= ys > top + 0.02 * c.h
    if rng.random() < 0.5:
        color = uniform3(rng, (30, 40, 55), (80, 90, 115))
    else:
        color = grey(rng, 120, 200, tint=0.1)
    c.paint(sl, grid, BUILDING, color, amp=rng.uniform(4, 12))


def _buildings(c: Canvas, horizon: float) -> None:
    rng = c.rng
    n = int(rng.integers(3, 8))
    edges = np.concatenate([[0.0], np.sort(rng.uniform(0, c.w, n - 1)), [float(c.w)]])
    for x0, x1 in zip(edges[:-1], edges[1:], strict=True):
        top = horizon - c.h * rng.uniform(0.12, 0.42)
        win = c.window(top, horizon + 1, x0, x1)
        if win is None:
            continue
        sl, ys, xs = win
        c.paint(sl, None, BUILDING, _building_color(rng), amp=rng.uniform(5, 14))
        if rng.random() < 0.75:
            _windows(c, sl, ys, xs, top, x0)
        if rng.random() < 0.08:  # a shop sign on the facade
            sw, sh = rng.uniform(0.03, 0.09) * c.w, rng.uniform(0.015, 0.04) * c.h
            sy, sx = rng.uniform(top, horizon - sh), rng.uniform(x0, max(x0, x1 - sw))
            sign = c.window(sy, sy + sh, sx, sx + sw)
            if sign is not None:
                c.paint(sign[0], None, SIGN, _sign_color(rng), amp=6)


def _ground(c: Canvas, horizon: float) -> Ground:
    rng = c.rng
    g = Ground(rng, c.h, c.w, horizon)
    win = c.window(horizon, c.h, 0, c.w)
    if win is None:
        return g
    sl, ys, xs = win
    d = g.depth(ys)
    offset = np.abs(xs - g.centre(d))
    road = offset < g.half_width(d)
    c.paint(sl, ~road, SIDEWALK, grey(rng, 95, 165), amp=rng.uniform(6, 14))
    tile = rng.uniform(0.04, 0.08) * c.w
    joints = ~road & (((xs + ys * 0.3) % tile) < 1.0)
    c.paint(sl, joints, SIDEWALK, grey(rng, 70, 120), amp=4)
    curb = ~road & (offset < g.half_width(d) + np.maximum(0.8, d * 0.02 * c.w))
    c.paint(sl, curb, SIDEWALK, grey(rng, 150, 210), amp=5)
    c.paint(sl, road, ROAD, grey(rng, 70, 140), amp=rng.uniform(8, 16))
    dashes = ((rng.uniform(2, 5) / (d + 0.08) + rng.uniform()) % 1.0) < 0.5
    marking = road & dashes & (np.abs(xs - g.centre(d)) < np.maximum(0.6, d * 0.012 * c.w))
    c.paint(sl, marking, ROAD, grey(rng, 185, 235, tint=0.03), amp=4)
    if rng.random() < 0.5:  # a cast shadow over road and sidewalk
        edge = rng.uniform(0, c.w) + (ys - horizon) * rng.uniform(-1.5, 1.5)
        shadow = (xs < edge) if rng.random() < 0.5 else (xs > edge)
        c.light[sl] *= np.where(shadow, np.float32(rng.uniform(0.5, 0.75)), np.float32(1))
    return g


def _tree(c: Canvas, horizon: float) -> None:
    rng = c.rng
    cx, cy = rng.uniform(0, c.w), horizon - rng.uniform(-0.05, 0.3) * c.h
    ry = rng.uniform(0.06, 0.16) * c.h
    rx = ry * rng.uniform(0.7, 1.4)
    trunk_w = max(1.0, rx * 0.15)
    trunk = c.window(
        cy, cy + ry + rng.uniform(0.05, 0.15) * c.h, cx - trunk_w / 2, cx + trunk_w / 2
    )
    if trunk is not None:
        color = uniform3(rng, (65, 50, 35), (125, 100, 80))
        c.paint(trunk[0], None, VEGETATION, color, amp=6)
    win = c.window(cy - 1.3 * ry, cy + 1.3 * ry, cx - 1.3 * rx, cx + 1.3 * rx)
    if win is None:
        return
    sl, ys, xs = win
    dy, dx = (ys - cy) / ry, (xs - cx) / rx
    wobble = 0.15 * np.sin(rng.integers(3, 8) * np.arctan2(dy, dx) + rng.uniform(0, 6.3))
    crown = np.hypot(dy, dx) < 1.0 + wobble + 0.08 * c.texture[sl]
    c.paint(
        sl, crown, VEGETATION, uniform3(rng, (40, 75, 25), (110, 150, 90)), amp=rng.uniform(14, 26)
    )


def _hedge(c: Canvas, horizon: float) -> None:
    rng = c.rng
    x0 = rng.uniform(-0.2, 0.8) * c.w
    win = c.window(
        horizon - rng.uniform(0.02, 0.07) * c.h,
        horizon + rng.uniform(0.0, 0.04) * c.h,
        x0,
        x0 + rng.uniform(0.1, 0.4) * c.w,
    )
    if win is not None:
        sl, ys, _ = win
        ragged = ys > sl[0].start + 1.5 * c.texture[sl] + 0.5
        c.paint(sl, ragged, VEGETATION, uniform3(rng, (35, 70, 25), (100, 140, 80)), amp=18)


def _sign_color(rng: np.random.Generator) -> np.ndarray:
    palettes = (
        ((165, 15, 15), (230, 60, 60)),  # red
        ((15, 55, 145), (60, 110, 210)),  # blue
        ((190, 160, 10), (240, 215, 70)),  # yellow
        ((185, 185, 185), (240, 240, 240)),  # white
        ((20, 110, 50), (70, 165, 105)),  # green
    )
    low, high = palettes[rng.integers(len(palettes))]
    return uniform3(rng, low, high)


def _pole(c: Canvas, g: Ground) -> None:
    rng = c.rng
    spot = g.sidewalk_spot(rng)
    if spot is None:
        return
    y, x, d = spot
    height, width = c.h * (0.2 + 0.5 * d), max(1.0, c.w * (0.004 + 0.012 * d))
    top = y - height
    win = c.window(top, y, x - width / 2, x + width / 2)
    if win is not None:
        c.paint(win[0], None, POLE, grey(rng, 80, 170), amp=5)
    if rng.random() < 0.4:
        size = max(2.5, width * rng.uniform(3, 5))
        sy, sx = top + size / 2, x + rng.uniform(-0.3, 0.3) * size
        sign = c.window(sy - size / 2, sy + size / 2, sx - size / 2, sx + size / 2)
        if sign is None:
            return
        sl, ys, xs = sign
        shape = None
        if rng.random() < 0.5:
            shape = np.hypot(ys - sy, xs - sx) <= size / 2
        c.paint(sl, shape, SIGN, _sign_color(rng), amp=4)


def _person(c: Canvas, y: float, x: float, height: float) -> None:
    """A pedestrian standing at ground point (y, x): legs, torso and head."""
    rng = c.rng
    win = c.window(y - height, y, x - 0.25 * height, x + 0.25 * height)
    if win is None:
        return
    sl, ys, xs = win
    rel_y, rel_x = (y - ys) / height, (xs - x) / height  # rel_y: 0 at the feet, 1 at the top
    legs = (rel_y < 0.48) & (np.abs(np.abs(rel_x) - 0.04 - 0.05 * rel_y) < 0.035 + 1 / height)
    torso = np.hypot((rel_y - 0.66) / 0.21, rel_x / 0.14) < 1.0
    head = np.hypot(rel_y - 0.9, rel_x) < 0.08 + 0.5 / height
    c.paint(sl, legs, PERSON, uniform3(rng, (20, 20, 30), (120, 120, 160)), amp=5)
    c.paint(sl, torso, PERSON, uniform3(rng, (20, 20, 20), (230, 230, 230)), amp=6)
    c.paint(sl, head, PERSON, uniform3(rng, (90, 55, 40), (235, 195, 165)), amp=4)


def _pedestrian(c: Canvas, g: Ground) -> None:
    spot = g.sidewalk_spot(c.rng)
    if spot is not None:
        y, x, d = spot
        _person(c, y, x, c.h * (0.08 + 0.3 * d))


def _bicycle(c: Canvas, g: Ground) -> None:
    """Two wheel rings and a frame of thin bars, sometimes with a rider on top."""
    rng = c.rng
    spot = g.sidewalk_spot(rng)
    if spot is None:
        return
    y, x, d = spot
    r = c.h * (0.02 + 0.05 * d)
    thick = max(0.6, 0.22 * r)
    back, front = (y - r, x - 1.3 * r), (y - r, x + 1.3 * r)
    seat, bar = (y - 2.3 * r, x - 0.5 * r), (y - 2.3 * r, x + 0.9 * r)
    crank = (y - r, x)
    win = c.window(y - 2.6 * r, y + 1, x - 2.4 * r - 1, x + 2.4 * r + 1)
    if win is None:
        return
    sl, ys, xs = win
    wheels = np.zeros(c.mask[sl].shape, bool)
    for cy, cx in (back, front):
        wheels |= np.abs(np.hypot(ys - cy, xs - cx) - r) < thick
    frame = np.zeros_like(wheels)
    for p, q in (
        (back, seat),
        (seat, crank),
        (crank, back),
        (seat, bar),
        (bar, crank),
        (bar, front),
    ):
        frame |= segment_distance(ys, xs, p, q) < 0.6 * thick + 0.25
    c.paint(sl, wheels, BICYCLE, grey(rng, 15, 70), amp=3)
    c.paint(sl, frame, BICYCLE, uniform3(rng, (20, 20, 20), (220, 220, 220)), amp=4)
    if rng.random() < 0.4:
        _person(c, y - 1.2 * r, x - 0.2 * r, 4.2 * r)


def _void(c: Canvas) -> None:
    """Unlabelled pixels: a thin band (e.g. a cable) and, sometimes, a car bonnet at the bottom."""
    rng = c.rng
    if rng.random() < 0.6:
        py, px, angle = rng.uniform(0, c.h), rng.uniform(0, c.w), rng.uniform(0, np.pi)
        ys = np.arange(c.h, dtype=np.float32)[:, None] + 0.5
        xs = np.arange(c.w, dtype=np.float32)[None, :] + 0.5
        band = np.abs((xs - px) * np.sin(angle) - (ys - py) * np.cos(angle)) < rng.uniform(0.5, 1.2)
        c.paint((slice(None), slice(None)), band, IGNORE, grey(rng, 20, 60), amp=4)
    if rng.random() < 0.2:
        win = c.window(c.h * (1 - rng.uniform(0.03, 0.07)), c.h, 0, c.w)
        if win is not None:
            c.paint(win[0], None, IGNORE, grey(rng, 15, 50), amp=3)


def generate_scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """One street scene: (image uint8 ``[h, w, 3]``, mask int64 ``[h, w]``, ids 0..8 or 255)."""
    c = Canvas(rng, h, w)
    horizon = h * rng.uniform(0.4, 0.55)
    _sky(c, horizon)
    _buildings(c, horizon)
    g = _ground(c, horizon)
    for _ in range(int(rng.integers(0, 4))):
        _hedge(c, horizon)
    for _ in range(int(rng.integers(0, 5))):
        _tree(c, horizon)
    for _ in range(int(rng.integers(0, 4))):
        _pole(c, g)
    for _ in range(int(rng.integers(0, 4))):
        _pedestrian(c, g)
    for _ in range(int(rng.random() < 0.22) + int(rng.random() < 0.04)):
        _bicycle(c, g)
    _void(c)
    return c.finish()
