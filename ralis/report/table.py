"""The results table: one row per (run, budget), written and read back as CSV with pandas.

A row is a dict: the :data:`COLUMNS` (strategy, seed, budget in regions, pixel fraction, region
kind, test and D_R mIoU, ...; see :mod:`ralis.report.runs` for where each comes from and its
unit), then ``iou_<class>`` and ``share_<class>`` per class. :func:`write_csv` stores rows (a
missing value is an empty cell) and :func:`read_csv` reads them back with each column's dtype:
text for :data:`STR_COLUMNS`, integers for :data:`INT_COLUMNS`, floats for the rest, and None for
an empty cell, so a table read back equals the rows written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ralis.errors import RalisError

COLUMNS: list[str] = [
    "strategy", "seed", "regions", "pixel_fraction", "region_kind", "miou", "val_miou",
    "miou_last", "regressed", "class_entropy", "wall_time", "preset", "dataset", "dataset_name",
    "git_revision", "config", "run_dir",
]
"""Base column order; ``iou_<class>`` then ``share_<class>`` columns follow, one per class."""

INT_COLUMNS = frozenset({"seed", "regions", "regressed"})
STR_COLUMNS = frozenset({
    "strategy", "region_kind", "preset", "dataset", "dataset_name", "git_revision", "config",
    "run_dir",
})
REQUIRED = frozenset({"strategy", "seed", "regions", "miou"})
"""Columns without which a CSV is not a results table."""


def class_names(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Class names in first-seen order, from the ``iou_*`` and ``share_*`` keys."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            for prefix in ("iou_", "share_"):
                if key.startswith(prefix):
                    seen.setdefault(key[len(prefix):], None)
    return list(seen)


def columns_for(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The CSV header: :data:`COLUMNS`, then ``iou_<class>``, then ``share_<class>``."""
    names = class_names(rows)
    base = set(COLUMNS)
    extra = [k for row in rows for k in row if k not in base and not k.startswith(("iou_", "share_"))]
    return (COLUMNS + list(dict.fromkeys(extra)) + [f"iou_{c}" for c in names]
            + [f"share_{c}" for c in names])


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write ``rows`` (missing values and None as empty cells); returns ``path``.

    Values are written as Python writes them (``str``: shortest round-trip floats), one line per
    row ending in CRLF, the CSV dialect of spreadsheets."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame.from_records(
        [{k: ("" if v is None else v) for k, v in row.items()} for row in rows],
        columns=columns_for(rows)).astype(object).fillna("")
    frame.to_csv(path, index=False, lineterminator="\r\n")
    return path


def _typed(column: str, values: pd.Series) -> list[Any]:
    """One column's cells (text, None when empty) -> Python values of the column's type."""
    if column in STR_COLUMNS:
        return [None if pd.isna(v) else str(v) for v in values]
    if column in INT_COLUMNS:
        numbers = pd.to_numeric(values)  # "20" and "20.0" alike
        return [None if pd.isna(v) else int(v) for v in numbers]
    numbers = pd.to_numeric(values, errors="coerce")  # a cell that is not a number stays text
    return [None if pd.isna(t) else (float(n) if not pd.isna(n) or t.strip().lower() == "nan"
                                      else t) for t, n in zip(values, numbers, strict=True)]


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Read a CSV written by :func:`write_csv`: ints for seed/regions, floats, empty -> None."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        raise RalisError(f"results table {path} does not exist") from None
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise RalisError(f"{path}: malformed table ({str(exc).splitlines()[0]})") from None
    missing = REQUIRED - set(frame.columns)
    if missing:
        raise RalisError(f"{path} is not a ralis results table (no column "
                         f"{', '.join(sorted(missing))}); pass the results.csv of "
                         "`ralis benchmark`")
    try:
        columns = {c: _typed(c, frame[c]) for c in frame.columns}
    except (ValueError, TypeError) as exc:
        raise RalisError(f"{path}: malformed value ({exc})") from None
    return [dict(zip(columns, cells, strict=True)) for cells in zip(*columns.values(),
                                                                     strict=True)]
