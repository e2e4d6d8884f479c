"""The numbers of the report: means and spreads over seeds, curves, labels needed, savings and the
share of the θ0 -> full-supervision gap closed. Pure functions of rows (:mod:`ralis.report.table`)
or of numbers, tested on known answers without any figure or file.

Rows are grouped with pandas (``groupby().agg``): :func:`aggregate` gives the mean, the sample
standard deviation (ddof = 1) and the count of a column per ``(strategy, regions)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ralis.report.series import (
    BASELINES,
    FULL,
    SPECIAL,
    THETA0,
    kind_rows,
    order_strategies,
    region_kinds,
)


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (None below two values) and count."""

    mean: float
    std: float | None
    n: int


def _column(values: Iterable[Any]) -> pd.Series:
    """Numbers as a nullable float column: None and NaN are missing."""
    return pd.Series(pd.array([None if v is None else float(v) for v in values],
                              dtype="Float64"))


def _stat(mean: Any, std: Any, n: Any) -> Stat:
    return Stat(float(mean), None if pd.isna(std) else float(std), int(n))


def mean_std(values: Iterable[float | None]) -> Stat | None:
    """Mean and sample std (ddof=1) of the non-None, non-NaN values; None if there are none."""
    column = _column(values).dropna()
    if column.empty:
        return None
    return _stat(column.mean(), column.std(ddof=1), len(column))


def aggregate(
    rows: Iterable[dict[str, Any]], key: str = "miou", scale: float = 1.0
) -> dict[tuple[str, int], Stat]:
    """``{(strategy, regions): Stat}`` of ``row[key] * scale`` over seeds (and runs), in the
    order the groups first appear; groups with no value are left out."""
    rows = list(rows)
    if not rows:
        return {}
    frame = pd.DataFrame({
        "strategy": pd.Series([r["strategy"] for r in rows], dtype=object),
        "regions": pd.Series([r["regions"] for r in rows], dtype=object),
        "value": _column(None if r.get(key) is None else r[key] * scale for r in rows),
    })
    table = frame.groupby(["strategy", "regions"], sort=False, dropna=False)["value"].agg(
        ["mean", "std", "count"])
    return {k: _stat(mean, std, n) for k, (mean, std, n) in zip(
        table.index, table.itertuples(index=False), strict=True) if n > 0}


def pixel_fractions(rows: Iterable[dict[str, Any]]) -> dict[int, float]:
    """``{regions: mean pixel_fraction}`` over the AL rows."""
    al = [r for r in rows if r["strategy"] not in SPECIAL and r.get("pixel_fraction") is not None]
    if not al:
        return {}
    frame = pd.DataFrame({"regions": pd.Series([r["regions"] for r in al], dtype=object),
                          "fraction": [float(r["pixel_fraction"]) for r in al]})
    means = frame.groupby("regions", sort=False, dropna=False)["fraction"].mean()
    return dict(zip(means.index, map(float, means), strict=True))


def kind_fractions(rows: Sequence[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """``{kind: {regions: mean pixel_fraction}}``: what a nominal budget costs in each kind."""
    return {k: pixel_fractions(kind_rows(rows, k)) for k in region_kinds(rows)}


def mean_curve(stats: dict[tuple[str, int], Stat], strategy: str) -> list[tuple[int, float]]:
    """``[(regions, mean)]`` of one strategy, sorted by regions."""
    return sorted((b, s.mean) for (name, b), s in stats.items() if name == strategy)


def regions_needed(curve: Sequence[tuple[float, float]], level: float) -> float | None:
    """Regions at which a mean curve first reaches ``level``, interpolating linearly.

    ``curve`` is ``[(regions, value)]`` sorted by regions. A curve already at or above the
    level at its first budget returns that budget (the true need may be lower: the report
    writes it as "<= budget"); a curve that never reaches it returns None.
    """
    if not curve:
        return None
    x0, y0 = curve[0]
    if y0 >= level:
        return float(x0)
    for x1, y1 in curve[1:]:
        if y1 >= level:
            return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))
        x0, y0 = x1, y1
    return None


def best_baseline(
    needed: dict[str, float | None], baselines: Sequence[str] = BASELINES
) -> tuple[str, float] | None:
    """The baseline needing the fewest regions (ties: paper order), or None if none reached."""
    reached = [(needed[b], i, b) for i, b in enumerate(baselines) if needed.get(b) is not None]
    if not reached:
        return None
    value, _, name = min(reached)
    return name, value


def savings(
    needed: dict[str, float | None], baselines: Sequence[str] = BASELINES
) -> dict[str, float | None]:
    """Per strategy: % fewer regions than the best baseline (positive = fewer labels).

    None where the strategy never reaches the level or no baseline does.
    """
    best = best_baseline(needed, baselines)
    out: dict[str, float | None] = {}
    for name, value in needed.items():
        if value is None or best is None or best[1] <= 0:
            out[name] = None
        else:
            out[name] = 100.0 * (best[1] - value) / best[1]
    return out


def default_levels(
    values: Iterable[float], count: int = 4, step: float = 0.5
) -> list[float]:
    """``count`` evenly spaced levels strictly between min and max, rounded to ``step``."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return []
    lo, hi = min(vals), max(vals)
    if hi <= lo:
        return [round(lo / step) * step]
    levels = [lo + (hi - lo) * (i + 1) / (count + 1) for i in range(count)]
    return sorted(dict.fromkeys(round(v / step) * step for v in levels))


def pooled_std(a: Stat, b: Stat) -> float | None:
    """sqrt((s_a^2 + s_b^2) / 2), or None when either std is unknown (one seed)."""
    if a.std is None or b.std is None:
        return None
    return math.sqrt((a.std ** 2 + b.std ** 2) / 2)


def bold_best(values: dict[str, float | None], decimals: int = 1) -> dict[str, str]:
    """Format numbers to ``decimals``, the largest (ties at that precision too) in **bold**."""
    shown = {k: (None if v is None else round(v, decimals)) for k, v in values.items()}
    present = [v for v in shown.values() if v is not None]
    top = max(present) if present else None
    out = {}
    for k, v in shown.items():
        if v is None:
            out[k] = "–"
        else:
            text = f"{v:.{decimals}f}"
            out[k] = f"**{text}**" if v == top and len(present) > 1 else text
    return out


def reference(stats: dict[tuple[str, int], Stat], name: str) -> Stat | None:
    """The stat of a special row (``theta0`` or ``full``): its first budget, or None."""
    found = sorted((b, st) for (s, b), st in stats.items() if s == name)
    return found[0][1] if found else None


def gap_closed(miou: float | None, theta0: float | None, full: float | None) -> float | None:
    """% of the gap between θ0 and full supervision that ``miou`` closes.

    ``100 * (miou - theta0) / (full - theta0)``: 0 = no better than θ0, 100 = as good as full
    supervision (negative below θ0, above 100 beyond full). None when a value is missing or full
    supervision is not above θ0 (there is no gap to close).
    """
    if miou is None or theta0 is None or full is None or full <= theta0:
        return None
    return 100.0 * (miou - theta0) / (full - theta0)


def gaps_closed(stats: dict[tuple[str, int], Stat]) -> dict[str, tuple[int, float | None]]:
    """Per AL strategy: ``(largest budget, % of the θ0 -> full gap closed there)`` on mean mIoU.

    Empty when ``stats`` has no ``theta0`` or no ``full`` entry.
    """
    start, full = reference(stats, THETA0), reference(stats, FULL)
    if start is None or full is None:
        return {}
    out = {}
    for name in order_strategies({s for s, _ in stats} - SPECIAL):
        last = max(b for s, b in stats if s == name)
        out[name] = (last, gap_closed(stats[(name, last)].mean, start.mean, full.mean))
    return out
