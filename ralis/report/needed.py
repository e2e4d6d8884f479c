"""Labels needed: the regions each strategy needs to reach a test mIoU level, with bootstrap
intervals over seeds, the best baseline and the saving against it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ralis.report.numbers import Stat, best_baseline, mean_curve, regions_needed, savings
from ralis.report.series import BASELINES, SPECIAL
from ralis.report.stats import LEVEL, RESAMPLES, NeededInterval, needed_interval
from ralis.report.text import md_table


def labels_needed(
    stats: dict[tuple[str, int], Stat], names: Sequence[str], levels: Sequence[float]
) -> list[dict[str, Any]]:
    """Per level: regions each strategy needs (None = not reached), best baseline, savings.

    ``names`` are AL strategies: ``theta0`` and ``full`` are dropped if given.
    """
    names = [s for s in names if s not in SPECIAL]
    curves = {s: mean_curve(stats, s) for s in names}
    out = []
    for level in levels:
        needed = {s: regions_needed(curves[s], level) for s in names}
        first = {s: (needed[s] is not None and bool(curves[s]) and curves[s][0][1] >= level)
                 for s in names}
        out.append({"level": level, "needed": needed, "at_first": first,
                    "best_baseline": best_baseline(needed), "savings": savings(needed)})
    return out


def _needed_interval_cell(ni: NeededInterval | None) -> str:
    """``[low, high]`` of :func:`needed_interval`: "≤ b" at the first budget, "> b" beyond the
    last, the share of resamples that reached the level when not all did."""
    if ni is None:
        return "–"
    if ni.n == 1:
        return "one seed"
    if ni.reached == 0:
        return "not reached (0%)"

    def bound(v: float) -> str:
        if v == float("inf"):
            return f"> {ni.last_budget}"
        return f"≤ {v:.0f}" if v == ni.first_budget else f"{v:.0f}"

    text = f"[{bound(ni.low)}, {bound(ni.high)}]"
    if ni.reached < 1:
        text += f" ({int(100 * ni.reached)}% reached)"
    return text


def _needed_cell(row: dict[str, Any], name: str) -> str:
    v = row["needed"][name]
    if v is None:
        return "not reached"
    return f"≤ {v:.0f}" if row["at_first"][name] else f"{v:.0f}"


_INTERVAL_TEXT = (
    f" {LEVEL:.0%} interval: percentile bootstrap over seeds (the strategy's seeds resampled with "
    f"replacement {RESAMPLES} times, the mean curve and its crossing of the level recomputed "
    "each time); \"> b\": those resamples' mean curves do not reach the level within the largest "
    "budget b; \"(x% reached)\": the share of resamples whose mean curve reaches the level, "
    "shown when not all do; \"one seed\": a single seed gives no interval.")


def labels_section(rows, stats, names: Sequence[str], levels: Sequence[float],
                    kind: str | None = None) -> list[str]:
    """``kind``: the rows are one region kind's of a table holding several."""
    heading = "## Labels needed to reach an mIoU level" + (f", {kind} regions" if kind else "")
    table = labels_needed(stats, names, levels)
    intervals = {(s, level): needed_interval(rows, s, level) for s in names for level in levels}
    if len(names) < 2:
        only = names[0]
        return [
            heading,
            "",
            f"Regions {only} needs to reach a test mIoU level, by linear interpolation on its "
            "mean curve (\"≤ b\": already reached at its first budget b; \"not reached\": never "
            f"within its budgets).{_INTERVAL_TEXT} This table has only {only}, so there is no "
            "baseline to compare with and no saving to give.",
            "",
            md_table(["mIoU level", f"{only} (regions)", f"{only} {LEVEL:.0%} interval"],
                   [[f"{row['level']:.1f}", _needed_cell(row, only),
                     _needed_interval_cell(intervals[(only, row["level"])])] for row in table]),
            "",
        ]
    others = [s for s in names if s not in BASELINES] or list(names)
    header = (["mIoU level"]
              + [h for s in names for h in (f"{s} (regions)", f"{s} {LEVEL:.0%} interval")]
              + ["best baseline"] + [f"{s} saving" for s in others])
    body = []
    for row in table:
        cells = [f"{row['level']:.1f}"]
        for s in names:
            cells += [_needed_cell(row, s), _needed_interval_cell(intervals[(s, row["level"])])]
        best = row["best_baseline"]
        cells.append(f"{best[0]} ({best[1]:.0f})" if best else "none reached")
        for s in others:
            v = row["savings"][s]
            if v is None:
                cells.append("–")
                continue
            text = f"{v:+.1f}%"
            if row["at_first"][s] and not (best and best[0] == s):
                text = "≥ " + text  # it may need fewer regions than its first budget
            if best and row["at_first"][best[0]] and best[0] != s:
                text += "*"
            cells.append(text)
        body.append(cells)
    return [
        heading,
        "",
        "Regions each strategy needs to reach a test mIoU level, by linear interpolation on its "
        "mean curve (\"≤ b\": already reached at its first budget b; \"not reached\": never "
        f"within its budgets).{_INTERVAL_TEXT} Saving = % fewer regions than the best baseline "
        "(on the mean curves; random, entropy, "
        "bald: whichever needs fewest); positive = fewer labels; \"≥\": the strategy was already "
        "there at its first budget, so it may save more; \"*\": so was the best baseline, so the "
        "saving is uncertain.",
        "",
        md_table(header, body),
        "",
    ]
