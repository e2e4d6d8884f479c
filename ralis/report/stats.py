"""Differences we can trust: paired per-seed differences, bootstrap intervals and verdicts.

Two strategies run with the same seed share θ0 and the splits, so their difference at a budget
is paired by seed: :func:`paired_differences` gives one number per seed both ran.
:func:`bootstrap_interval` is the percentile bootstrap interval of the mean of such numbers
(``scipy.stats.bootstrap``) and :func:`verdict` reads a win, a loss or a tie off that interval
(never off the mean). :func:`needed_interval` bootstraps the regions a strategy needs to reach an
mIoU level (:func:`ralis.report.numbers.regions_needed`) by resampling its seeds; its statistic
is +inf where a resample never reaches the level, which scipy's percentile interval would turn
into NaN, so it draws the same resamples itself and keeps +inf in its quantiles.

All pure functions of rows or numbers, deterministic for a given ``seed``. With the 2-3 seeds
of a CPU grid the percentile bootstrap is a description of these seeds, not a significance
test: for n <= 3 the 95% interval is the range of the values (see :func:`bootstrap_interval`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ralis.report.numbers import regions_needed
from ralis.report.series import SPECIAL

LEVEL = 0.95
"""Default confidence level of the intervals."""
RESAMPLES = 10_000
"""Default number of bootstrap resamples."""

Interval = tuple[float, float]


# --------------------------------------------------------------------------- pairing
def seed_values(
    rows: Iterable[dict[str, Any]], strategy: str, budget: int, key: str = "miou",
    scale: float = 100.0,
) -> dict[int, float]:
    """``{seed: row[key] * scale}`` of one strategy at one budget, sorted by seed.

    Rows whose value is None or NaN are skipped; several rows of one seed (the same run listed
    twice) are averaged.
    """
    mine = [r for r in rows if r["strategy"] == strategy and r["regions"] == budget
            and r.get(key) is not None and not math.isnan(float(r[key]))]
    if not mine:
        return {}
    frame = pd.DataFrame({"seed": [_seed_key(r["seed"]) for r in mine],
                          "value": [float(r[key]) * scale for r in mine]})
    means = frame.groupby("seed", sort=False)["value"].mean()
    return {_seed_of(s): float(means[s]) for s in sorted(means.index, key=_seed_order)}


_NO_SEED = "<none>"  # a row without a seed, as a group key (pandas drops None keys)


def _seed_key(seed: Any) -> Any:
    return _NO_SEED if seed is None else seed


def _seed_of(key: Any) -> Any:
    return None if key == _NO_SEED else key


def _seed_order(seed: Any) -> tuple[bool, Any]:
    seed = _seed_of(seed)
    return seed is None, seed


def paired_differences(
    rows: Iterable[dict[str, Any]], a: str, b: str, budget: int, key: str = "miou",
    scale: float = 100.0,
) -> dict[int, float]:
    """``{seed: a - b}``: strategy ``a`` minus ``b`` at ``budget``, per seed both have.

    Paired by seed (the same seed gives both runs the same θ0 and the same splits); a seed only
    one of them ran at that budget is dropped. Test mIoU points by default (``miou`` x 100).
    Sorted by seed.
    """
    rows = list(rows)
    va = seed_values(rows, a, budget, key, scale)
    vb = seed_values(rows, b, budget, key, scale)
    return {s: va[s] - vb[s] for s in va if s in vb}


# ------------------------------------------------------------------------- bootstrap
def _check(level: float, resamples: int) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, not {resamples}")


def bootstrap_interval(
    values: Sequence[float], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0,
) -> Interval | None:
    """Percentile bootstrap interval ``(low, high)`` of the mean of ``values``.

    ``scipy.stats.bootstrap`` (``method="percentile"``) with ``numpy.random.default_rng(seed)``:
    one ``[resamples, n]`` matrix of indices (``rng.integers(0, n, (resamples, n))``), the row
    means as the bootstrap distribution, and their ``(1 - level) / 2`` and ``(1 + level) / 2``
    quantiles (linear interpolation). Deterministic for a seed.

    n = 1: a single value cannot be resampled into a spread, so the interval is the point
    itself ``(v, v)``; that is not a confidence interval, and callers should say so. n = 0:
    None. For small n the interval is the range of the values: a resample that repeats the
    smallest value n times has probability n^-n (1/4 for n = 2, 1/27 for n = 3), above the
    2.5% tail of a 95% interval, so ``(min, max)`` is returned (with overwhelming probability
    at 10000 resamples).
    """
    _check(level, resamples)
    vals = np.asarray([float(v) for v in values], dtype=float)
    if vals.size == 0:
        return None
    if not np.all(np.isfinite(vals)):
        raise ValueError("bootstrap_interval needs finite values")
    if vals.size == 1:
        return float(vals[0]), float(vals[0])
    from scipy.stats import bootstrap  # a second to import: only these intervals need it

    result = bootstrap((vals,), np.mean, n_resamples=resamples, confidence_level=level,
                       method="percentile", rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return float(low), float(high)


def range_is_interval(n: int, level: float = LEVEL) -> bool:
    """Whether the percentile bootstrap interval of n >= 2 values is their range (min, max).

    True when a resample repeating one value, probability n^-n, is above the tail
    ``(1 - level) / 2``: n = 2 and 3 at 95%. Then a "win" needs every value above 0.
    """
    return n >= 2 and float(n) ** -n > (1.0 - level) / 2.0


def verdict(interval: Interval | None) -> str:
    """"win" if the interval is above 0, "loss" if below 0, else "tie" ("no data" for None).

    Read off the interval, never the mean: an interval that touches or contains 0 is a tie.
    """
    if interval is None:
        return "no data"
    low, high = interval
    if low > 0:
        return "win"
    if high < 0:
        return "loss"
    return "tie"


ONE_SEED = "tie (one seed)"
"""The verdict of a comparison over one seed: no interval can be computed from one seed."""


@dataclass(frozen=True)
class Paired:
    """``a`` minus ``b`` at one budget: per-seed differences, their mean, interval, verdict.

    ``interval`` is None with fewer than two seeds (no spread to resample), and ``verdict``
    is then :data:`ONE_SEED` (one seed) or "no data" (no shared seed).
    """

    a: str
    b: str
    budget: int
    differences: dict[int, float]
    mean: float | None
    interval: Interval | None
    verdict: str

    @property
    def n(self) -> int:
        return len(self.differences)


def compare(
    rows: Iterable[dict[str, Any]], a: str, b: str, budget: int, level: float = LEVEL,
    resamples: int = RESAMPLES, seed: int = 0,
) -> Paired:
    """:func:`paired_differences` of ``a`` minus ``b`` at ``budget`` with interval and verdict."""
    diffs = paired_differences(rows, a, b, budget)
    values = list(diffs.values())
    if len(values) < 2:
        return Paired(a, b, budget, diffs, values[0] if values else None, None,
                      ONE_SEED if values else verdict(None))
    interval = bootstrap_interval(values, level, resamples, seed)
    return Paired(a, b, budget, diffs, sum(values) / len(values), interval, verdict(interval))


# --------------------------------------------------------------------- labels needed
def seed_curves(
    rows: Iterable[dict[str, Any]], strategy: str, key: str = "miou", scale: float = 100.0,
) -> tuple[list[int], list[int], np.ndarray]:
    """``(seeds, budgets, values)`` of one AL strategy: ``values[i, j]`` is seed i at budget j.

    ``row[key] * scale`` (several rows of one seed and budget averaged); NaN where a seed has
    no value at a budget. ``theta0`` and ``full`` give empty lists.
    """
    rows = [r for r in rows if r["strategy"] == strategy and r["strategy"] not in SPECIAL]
    bs = sorted({r["regions"] for r in rows})
    seeds = sorted({r["seed"] for r in rows}, key=_seed_order)
    values = np.full((len(seeds), len(bs)), np.nan)
    for j, b in enumerate(bs):
        at = seed_values(rows, strategy, b, key, scale)
        for i, s in enumerate(seeds):
            if s in at:
                values[i, j] = at[s]
    return seeds, bs, values


def crossings(x: Sequence[float], curves: np.ndarray, level: float) -> np.ndarray:
    """:func:`regions_needed` of many curves at once: ``x`` [B] increasing, ``curves`` [R, B].

    NaN entries of a curve are missing budgets (skipped, as if that point were not on the
    curve); the result [R] is NaN where a curve never reaches ``level``.
    """
    x = np.asarray(x, dtype=float)
    y = np.atleast_2d(np.asarray(curves, dtype=float))
    valid = ~np.isnan(y)
    with np.errstate(invalid="ignore"):
        reached = valid & (y >= level)
    rows = np.arange(y.shape[0])
    first = reached.argmax(axis=1)  # first budget at or above the level (0 if none)
    # last valid budget before each column: -1 when there is none
    idx = np.where(valid, np.arange(y.shape[1]), -1)
    last_valid = np.maximum.accumulate(idx, axis=1)
    before = np.concatenate([np.full((y.shape[0], 1), -1), last_valid[:, :-1]], axis=1)
    prev = before[rows, first]
    x1, y1 = x[first], y[rows, first]
    x0, y0 = x[np.maximum(prev, 0)], y[rows, np.maximum(prev, 0)]
    with np.errstate(invalid="ignore", divide="ignore"):
        interpolated = x0 + (level - y0) * (x1 - x0) / (y1 - y0)
    out = np.where(prev < 0, x1, interpolated)
    return np.where(reached.any(axis=1), out, np.nan)


def _quantile(sorted_values: np.ndarray, q: float) -> float:
    """numpy's linear quantile of ascending values that may end in +inf (inf stays inf)."""
    h = (sorted_values.size - 1) * q
    i = math.floor(h)
    frac = h - i
    low = float(sorted_values[i])
    high = float(sorted_values[min(i + 1, sorted_values.size - 1)])
    if frac == 0 or low == high:
        return low
    if math.isinf(high):
        return math.inf
    return low + (high - low) * frac


@dataclass(frozen=True)
class NeededInterval:
    """Bootstrap over seeds of the regions a strategy needs to reach an mIoU ``level``.

    ``point``: :func:`regions_needed` on the mean curve of all seeds (None = not reached).
    ``low`` / ``high``: the percentile interval over resamples, ``math.inf`` where that
    quantile falls among resamples whose mean curve never reaches the level (both inf: "not
    reached"). ``reached``: the share of resamples whose mean curve reaches the level.
    ``first_budget`` / ``last_budget``: the strategy's smallest and largest budgets (a need
    equal to the first may be lower; inf means beyond the last).
    With one seed every resample is that seed, so the interval is the point itself.
    """

    strategy: str
    level: float
    n: int
    point: float | None
    low: float
    high: float
    reached: float
    first_budget: int | None
    last_budget: int | None


def needed_interval(
    rows: Iterable[dict[str, Any]], strategy: str, level: float, confidence: float = LEVEL,
    resamples: int = RESAMPLES, seed: int = 0,
) -> NeededInterval | None:
    """Resample the strategy's seeds, recompute the mean curve and its crossing of ``level``.

    One ``[resamples, n]`` index matrix over seeds (``default_rng(seed)``, as in
    :func:`bootstrap_interval`); each resample's mean curve (budgets a resample has no value at
    are left out) goes through :func:`crossings`. None when the strategy has no seed.
    """
    _check(confidence, resamples)
    seeds, bs, values = seed_curves(rows, strategy)
    if not seeds:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0)
    point = regions_needed([(b, float(m)) for b, m in zip(bs, mean, strict=True)
                            if not math.isnan(m)], level)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(seeds), size=(resamples, len(seeds)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a budget no resampled seed has: NaN
        curves = np.nanmean(values[index], axis=1)
    need = crossings(bs, curves, level)
    reached = float(np.mean(~np.isnan(need)))
    ordered = np.sort(np.where(np.isnan(need), np.inf, need))
    tail = (1.0 - confidence) / 2.0
    return NeededInterval(strategy, level, len(seeds), point, _quantile(ordered, tail),
                          _quantile(ordered, 1.0 - tail), reached, bs[0] if bs else None,
                          bs[-1] if bs else None)
