"""The verdict: at the chosen budget, the subject strategy (RALIS when present) against the others,
θ0 and full supervision, the labels it saves and its paired verdicts; one paragraph per region
kind with several kinds. It states the seed count and never claims significance."""

from __future__ import annotations

from collections.abc import Sequence

from ralis.report.needed import labels_needed
from ralis.report.numbers import (
    aggregate,
    gap_closed,
    kind_fractions,
    pixel_fractions,
    pooled_std,
    reference,
)
from ralis.report.paired import kind_comparisons, paired_comparisons
from ralis.report.series import (
    BASELINES,
    FULL,
    RECT,
    SPECIAL,
    THETA0,
    kind_rows,
    region_kinds,
    split_series,
    strategies,
)
from ralis.report.stats import LEVEL
from ralis.report.text import kind_fractions_text, pct, plural, seeds_by_strategy, signed


def verdict_section(rows, stats, budget: int, levels: Sequence[float]) -> list[str]:
    text = _verdict_text(rows, stats, budget, levels)
    return ["## Verdict", "", text, ""] if text else []


def mixed_verdict_section(rows, budget: int, levels: Sequence[float]) -> list[str]:
    """The verdict of a table of several region kinds: one paragraph per kind (its own
    strategies compared), then the kinds compared, paired by seed at ``budget``."""
    lines = []
    for kind in region_kinds(rows):
        mine = kind_rows(rows, kind)
        text = _verdict_text(mine, aggregate(mine, "miou", 100.0), budget, levels)
        if text:
            lines += [f"**{kind} regions.** {text}", ""]
    ref, found = kind_comparisons(rows)
    here = [(a, b, p) for (a, b), ps in found.items() for p in ps if p.budget == budget]
    if here:
        by_kind = kind_fractions(rows)
        parts = []
        for a, b, p in here:
            kind = split_series(a)[1] or RECT
            px = kind_fractions_text({kind: by_kind[kind], ref: by_kind[ref]}, budget)
            parts.append(f"{a} − {b}: {signed(p.mean)} points, {p.verdict} ({px} px)")
        lines += [f"**Region kinds.** At {budget} nominal regions, paired by seed: "
                  + "; ".join(parts) + f" (see Region kinds; {LEVEL:.0%} bootstrap intervals, "
                  "verdicts from the intervals, not a significance test).", ""]
    return ["## Verdict", "", *lines] if lines else []


def _verdict_text(rows, stats, budget: int, levels: Sequence[float]) -> str | None:
    names = strategies(rows)
    at = {s: stats[(s, budget)] for s in names if (s, budget) in stats}
    if not at:
        return None
    subject = "ralis" if "ralis" in at else max(at, key=lambda s: at[s].mean)
    me = at[subject]
    seeds = seeds_by_strategy([r for r in rows if r["regions"] == budget
                                and r["strategy"] not in SPECIAL])
    parts = []
    for other in names:
        if other == subject or other not in at:
            continue
        diff = me.mean - at[other].mean
        side = "above" if diff >= 0 else "below"
        pooled = pooled_std(me, at[other])
        ratio = (f"difference / pooled std = {diff / pooled:+.1f}" if pooled and pooled > 0
                 else "pooled std unavailable (one seed)" if pooled is None
                 else "pooled std = 0")
        parts.append(f"{abs(diff):.1f} points {side} {other} ({ratio})")
    text = (f"At {budget} regions, {subject} reaches {me.mean:.1f}% test mIoU"
            + (": " + "; ".join(parts) if parts else "") + ".")
    start = reference(stats, THETA0)
    full = reference(stats, FULL)
    if start is not None:
        text += (f" It started from θ0 at {start.mean:.1f}% "
                 f"({me.mean - start.mean:+.1f} points)")
        gap = gap_closed(me.mean, start.mean, full.mean) if full is not None else None
        text += (f" and closes {gap:.0f}% of the gap to full supervision." if gap is not None
                 else ".")
    fraction = pixel_fractions(rows).get(budget)
    if full is not None and full.mean > 0:
        text += (f" That is {100 * me.mean / full.mean:.0f}% of the full-supervision "
                 f"mIoU ({full.mean:.1f}%) with {pct(fraction)} of the pool's pixels labelled.")
    if subject not in BASELINES:
        for row in reversed(labels_needed(stats, names, levels)):
            best, mine = row["best_baseline"], row["needed"].get(subject)
            if best and mine is not None:
                saving = row["savings"][subject]
                text += (f" To reach {row['level']:.1f}% mIoU, {subject} needs about {mine:.0f} "
                         f"regions vs {best[1]:.0f} for {best[0]}, the best baseline "
                         f"({abs(saving):.1f}% {'fewer' if saving >= 0 else 'more'} labels).")
                break
    paired = paired_comparisons(rows, names)
    if subject == "ralis" and paired:
        here = [(b, p) for (_, b), found in paired.items() for p in found if p.budget == budget]
        if here:
            text += (f" Paired by seed at this budget, the {LEVEL:.0%} bootstrap intervals of ralis minus "
                     "each baseline give: " + ", ".join(f"{b} {p.verdict}" for b, p in here)
                     + " (see Paired differences).")
    counts = sorted({len(seeds.get(s, [])) for s in at})
    n_text = "/".join(map(str, counts))
    if len(at) == 1:
        text += (f" Only {subject} is in this table ({plural(counts[0], 'seed')}), so nothing "
                 "is compared between strategies; the numbers describe "
                 + ("this run." if counts[0] == 1 else "these runs, not a significance test."))
    else:
        text += (f" These are means over {n_text} seed(s) per strategy; with so few seeds the "
                 "differences describe these runs and are not a significance test.")
    return text
