"""The mIoU sections: test mIoU vs labelled regions (or pixels, with several region kinds) with its
figure and table, the gap closed between θ0 and full supervision, and the D_R mIoU section."""

from __future__ import annotations

from pathlib import Path

from ralis.report import figures
from ralis.report.numbers import aggregate, gaps_closed, kind_fractions, pixel_fractions, reference
from ralis.report.series import FULL, THETA0, budgets, strategies
from ralis.report.text import (
    REFERENCE_NAMES,
    budget_table,
    fmt_stat,
    kind_fractions_text,
    pct,
    reference_rows,
)


def _gap_text(stats) -> str | None:
    gaps = gaps_closed(stats)
    if not gaps:
        return None
    start, full = reference(stats, THETA0), reference(stats, FULL)
    if full.mean <= start.mean:
        return (f"Full supervision ({full.mean:.1f}%) is not above θ0 ({start.mean:.1f}%), so "
                "there is no gap to close.")
    parts = [f"{s} {'–' if g is None else f'{g:.0f}%'} ({b} regions)"
             for s, (b, g) in gaps.items()]
    return (f"Gap closed between θ0 ({start.mean:.1f}%) and full supervision ({full.mean:.1f}%) "
            "at each strategy's largest budget, (mIoU − θ0) / (full − θ0) on mean mIoU: "
            + ", ".join(parts) + ".")


def miou_section(rows, stats, out_dir: Path, mixed: bool = False) -> list[str]:
    """``rows``: series rows; ``mixed``: several region kinds (curves against pixels)."""
    names = strategies(rows)
    bs = budgets(rows)
    fractions = pixel_fractions(rows)
    lines = ["## Test mIoU vs labelled " + ("pixels" if mixed else "regions"), ""]
    if names:
        unit = "pixels" if mixed else "regions"
        start = ("; the first line is θ0, the start model every curve begins from (0 "
                 f"{unit}, the black star in the figure)" if reference(stats, THETA0) else "")
        if mixed:  # several region kinds: curves against pixels
            figures.miou_curve(rows, out_dir / "miou_curve.png", x="pixel_fraction")
            by_kind = kind_fractions(rows)
            figure = "![test mIoU vs % of pool pixels labelled](miou_curve.png)"
            caption = ("The figure puts each series at the mean % of pool pixels it labelled, so "
                       "region kinds compare at equal pixel cost (dashed: a region kind other "
                       "than rect). Mean ± std test mIoU (%) per series; columns are nominal "
                       "budgets in regions (the mean % of pool pixels each region kind labelled "
                       f"there){start}.")
            headers = [f"{b} ({kind_fractions_text(by_kind, b)})" for b in bs]
        else:
            figures.miou_curve(rows, out_dir / "miou_curve.png")
            figure = "![test mIoU vs labelled regions](miou_curve.png)"
            caption = ("Mean ± std test mIoU (%) per strategy; columns are budgets in regions (% "
                       f"of pool pixels){start}.")
            headers = [f"{b} ({pct(fractions.get(b))})" for b in bs]
        lines += [figure, "", caption, "", budget_table(stats, names, bs, headers), ""]
    else:
        lines += ["This table holds no active-learning run, so there is no curve; only the "
                  "reference numbers below.", ""]
        start = reference(stats, THETA0)
        if start is not None:
            lines += [f"Start model θ0 (`{THETA0}`, 0 regions): **{fmt_stat(start)}** mIoU.", ""]
    full = [(b, st) for (s, b), st in stats.items() if s == FULL]
    if full:
        b, st = full[0]
        lines += [f"Upper bound (`full`, all training labels, {b} regions): **{fmt_stat(st)}** mIoU.",
                  ""]
    gap = _gap_text(stats) if names else None
    if gap:
        lines += [gap, ""]
    return lines


def reward_set_section(rows, out_dir: Path, mixed: bool = False) -> list[str]:
    """D_R mIoU per budget: the set that early-stops the final training (and rewards the agent).

    It is the best epoch's score, so optimistic; shown because test and D_R can disagree on
    whether more labels helped. ``mixed``: several region kinds, the curve against pixels.
    """
    stats = aggregate(rows, "val_miou", scale=100.0)
    names = [s for s in strategies(rows) if any(n == s for n, _ in stats)]
    if not names:
        refs = reference_rows(stats)
        if not refs:
            return []
        return ["## D_R mIoU", "",
                "mIoU (%) on D_R, the reward set that early-stops training (the best epoch's "
                "score, hence optimistic): "
                + "; ".join(f"{REFERENCE_NAMES[n]}: {fmt_stat(st)}" for n, st in refs) + ".", ""]
    figures.miou_curve(rows, out_dir / "val_miou_curve.png", key="val_miou",
                       label="D_R mIoU (%)", x="pixel_fraction" if mixed else "regions")
    bs = budgets(rows)
    what = "% of pool pixels labelled" if mixed else "labelled regions"
    lines = [
        "## D_R mIoU vs labelled " + ("pixels" if mixed else "regions"),
        "",
        f"![D_R mIoU vs {what}](val_miou_curve.png)",
        "",
        "Mean ± std mIoU (%) on D_R, the reward set that early-stops the final training: the best "
        "epoch's score, hence optimistic, and not a test number.",
        "",
        budget_table(stats, names, bs, [str(b) for b in bs]),
        "",
    ]
    full = [(b, st) for (s, b), st in stats.items() if s == FULL]
    if full:
        lines += [f"Upper bound on D_R: {fmt_stat(full[0][1])}.", ""]
    return lines
