"""The look every figure of the report shares: one fixed colour and marker per strategy, one line
style per region kind, the style sheet, and :func:`save` (PNG, no timestamp: a figure drawn twice
is the same file).

A series of another region kind (``entropy · slic``, see :func:`ralis.report.series.series_rows`)
has its strategy's colour and a dashed line (:func:`line_style`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from ralis.report.series import FULL, SPECIAL, THETA0, order_strategies, split_series  # noqa: E402

KNOWN_COLORS = {
    "random": "#7f7f7f", "entropy": "#1f77b4", "bald": "#2ca02c", "ralis": "#d62728",
}
EXTRA_COLORS = ["#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
MARKERS = {"random": "s", "entropy": "^", "bald": "D", "ralis": "o"}
KIND_LINES = {None: "-", "slic": "--"}
"""Line style per region kind of a series (None: a plain name); other kinds are dotted."""


def strategy_colors(names: Sequence[str]) -> dict[str, str]:
    """Fixed colours for the paper's strategies; others get the next palette colour, sorted.

    A series ``"<strategy> · <kind>"`` gets its strategy's colour.
    """
    bases = {split_series(n)[0] for n in names}
    by_base = {b: KNOWN_COLORS[b] for b in bases if b in KNOWN_COLORS}
    others = [b for b in order_strategies(bases) if b not in by_base and b not in SPECIAL]
    for i, name in enumerate(others):
        by_base[name] = EXTRA_COLORS[i % len(EXTRA_COLORS)]
    out = {n: by_base[split_series(n)[0]] for n in names if n not in SPECIAL}
    out[FULL] = "black"
    out[THETA0] = "black"
    return out


def line_style(name: str) -> str:
    """Solid for a plain strategy name, dashed for a slic series, dotted for another kind."""
    return KIND_LINES.get(split_series(name)[1], ":")


def marker(name: str) -> str:
    return MARKERS.get(split_series(name)[0], "o")


def style() -> dict[str, Any]:
    return {"font.size": 10, "axes.grid": True, "grid.alpha": 0.3, "savefig.dpi": 120}


def save(fig: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path
