"""The words and the Markdown of the report: numbers as text (mean ± std, %, signed), tables,
the labels of the reference rows (θ0, the upper bound) and of the region kinds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ralis.report.numbers import Stat, reference
from ralis.report.series import FULL, RECT, THETA0

REFERENCE_LABELS = {THETA0: "θ0 (start)", FULL: FULL}
"""Row labels (italic in tables) of the special, unranked rows."""
REFERENCE_NAMES = {THETA0: "the start model θ0", FULL: "the upper bound"}
KIND_TEXT = {RECT: "rectangles of the region grid",
             "slic": "SLIC superpixels; a nominal region is an average superpixel"}
"""What each region kind is, in the report's header."""


def fmt_stat(stat: Stat | None, decimals: int = 1) -> str:
    if stat is None:
        return "–"
    if stat.std is None:
        return f"{stat.mean:.{decimals}f} (n=1)"
    return f"{stat.mean:.{decimals}f} ± {stat.std:.{decimals}f}"


def pct(fraction: float | None) -> str:
    if fraction is None:
        return "?"
    return f"{100 * fraction:.2g}%" if fraction < 0.01 else f"{100 * fraction:.1f}%"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A Markdown table, cells unpadded (``DataFrame.to_markdown`` pads every cell to its
    column's width, which would rewrite every table of the published reports).
    ``align``: one of l, r, c per column (default: the first left, the others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def signed(value: float) -> str:
    return f"{value:+.2f}"


def seeds_by_strategy(rows: Sequence[dict[str, Any]]) -> dict[str, list[int]]:
    out: dict[str, set[int]] = {}
    for r in rows:
        out.setdefault(r["strategy"], set()).add(r["seed"])
    return {k: sorted(v, key=lambda s: (s is None, s)) for k, v in out.items()}


def kind_fractions_text(by_kind: dict[str, dict[int, float]], budget: int) -> str:
    """``rect 1.0%, slic 1.2%``: the mean % of pool pixels each kind labelled at ``budget``."""
    return ", ".join(f"{k} {pct(f.get(budget))}" for k, f in by_kind.items())


def reference_rows(stats: dict[tuple[str, int], Stat]) -> list[tuple[str, Stat]]:
    """``[(name, stat)]`` of the special rows present, θ0 first."""
    out = []
    for name in (THETA0, FULL):
        stat = reference(stats, name)
        if stat is not None:
            out.append((name, stat))
    return out


def budget_table(stats: dict[tuple[str, int], Stat], names: Sequence[str], bs: Sequence[int],
                  header: Sequence[str]) -> str:
    """Strategies x budgets of mean ± std; a θ0 line (its own "0 (θ0)" column) when present."""
    start = reference(stats, THETA0)
    if start is None:
        return md_table(["strategy", *header], [[s] + [fmt_stat(stats.get((s, b))) for b in bs]
                                              for s in names])
    body = [[f"_{REFERENCE_LABELS[THETA0]}_", f"_{fmt_stat(start)}_"] + ["–"] * len(bs)]
    body += [[s, "–"] + [fmt_stat(stats.get((s, b))) for b in bs] for s in names]
    return md_table(["strategy", "0 (θ0)", *header], body)
