"""Strategies and series of the results table: the special rows, report order, region kinds.

Two strategy names are special: ``theta0`` (the start model every AL curve begins from) and
``full`` (the upper bound). Neither is an AL strategy: :func:`strategies`, :func:`budgets` and
everything built on them leave both out.

Region kinds: every AL row has a ``region_kind`` (``rect``: the paper's rectangle grid,
``slic``: SLIC superpixels); tables and runs written before the column existed are rect
(:func:`region_kind`). When a table holds more than one kind, :func:`series_rows` renames the AL
rows of the other kinds to series ``"<strategy> · <kind>"`` (rect rows keep the plain strategy
name), so every helper keys by series without knowing about kinds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

BASELINES: tuple[str, ...] = ("random", "entropy", "bald")
"""The strategies RALIS is compared against in the paper."""
FULL = "full"
"""Strategy name of the upper-bound (full supervision) rows."""
THETA0 = "theta0"
"""Strategy name of the start-model row (θ0, 0 regions): the common start of every AL curve."""
SPECIAL = frozenset({FULL, THETA0})
"""Strategy names that are not AL strategies."""
RECT = "rect"
"""The default region kind (the paper's rectangles): rows without ``region_kind`` are rect."""
SERIES_SEP = " · "
"""Between strategy and region kind in a series name (``entropy · slic``)."""


def split_series(name: str) -> tuple[str, str | None]:
    """``"entropy · slic"`` -> ``("entropy", "slic")``; a plain name -> ``(name, None)``."""
    if SERIES_SEP in name:
        base, kind = name.rsplit(SERIES_SEP, 1)
        return base, kind
    return name, None


def order_strategies(names: Iterable[str]) -> list[str]:
    """``theta0`` first, baselines in paper order, then the rest alphabetically, ``full`` last.

    Series of several region kinds (:func:`series_rows`): the plain names (rect) first, then
    each other kind's series (``entropy · slic``, ...) in the same order, kind by kind.
    """
    known = (*BASELINES, "ralis")

    def key(name: str) -> tuple:
        if name in SPECIAL:
            return (0 if name == THETA0 else 2,)
        base, kind = split_series(name)
        rank = known.index(base) if base in known else len(known)
        return (1, kind is not None, kind or "", rank, base)

    return sorted(set(names), key=key)


def strategies(rows: Iterable[dict[str, Any]], include_full: bool = False) -> list[str]:
    """The AL strategies of ``rows`` in report order (never ``theta0``; ``full`` only if asked)."""
    names = [s for s in order_strategies({r["strategy"] for r in rows}) if s != THETA0]
    return names if include_full else [s for s in names if s != FULL]


def budgets(rows: Iterable[dict[str, Any]], strategy: str | None = None) -> list[int]:
    """Sorted region budgets of the AL rows (of one strategy if given)."""
    return sorted({
        r["regions"] for r in rows
        if r["strategy"] not in SPECIAL and (strategy is None or r["strategy"] == strategy)
    })


def common_budget(rows: Sequence[dict[str, Any]]) -> int | None:
    """The largest budget every AL strategy reached (the largest of any, if none is shared)."""
    per = [set(budgets(rows, s)) for s in strategies(rows)]
    if not per:
        return None
    shared = set.intersection(*per)
    return max(shared) if shared else max(set.union(*per))


def region_kind(row: dict[str, Any]) -> str:
    """The row's region kind; rect when the table has no ``region_kind`` (older tables)."""
    return row.get("region_kind") or RECT


def region_kinds(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Region kinds of the AL rows (``theta0`` and ``full`` are shared): rect first, then
    the others alphabetically."""
    kinds = {region_kind(r) for r in rows if r["strategy"] not in SPECIAL}
    return sorted(kinds, key=lambda k: (k != RECT, k))


def series_name(strategy: str, kind: str) -> str:
    """``strategy`` for rect (and the special rows), ``"<strategy> · <kind>"`` otherwise."""
    return strategy if kind == RECT or strategy in SPECIAL else f"{strategy}{SERIES_SEP}{kind}"


def series_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows keyed by series: with more than one region kind among the AL rows, each AL
    row of a kind other than rect is a copy whose ``strategy`` is :func:`series_name`; with
    one kind (the usual table) the rows as they are. ``theta0`` and ``full`` stay shared."""
    if len(region_kinds(rows)) <= 1:
        return list(rows)
    return [r if r["strategy"] in SPECIAL or region_kind(r) == RECT
            else {**r, "strategy": series_name(r["strategy"], region_kind(r))} for r in rows]


def kind_rows(rows: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The AL rows of one region kind plus the shared ``theta0`` and ``full`` rows."""
    return [r for r in rows if r["strategy"] in SPECIAL or region_kind(r) == kind]
