"""Paired differences: each strategy minus a reference strategy (RALIS minus each baseline), and
each region kind minus rect, paired by seed at every budget, with bootstrap intervals and
verdicts read off the intervals (:mod:`ralis.report.stats`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ralis.report.numbers import kind_fractions
from ralis.report.series import (
    RECT,
    SPECIAL,
    budgets,
    kind_rows,
    region_kinds,
    series_name,
    series_rows,
    split_series,
    strategies,
)
from ralis.report.stats import LEVEL, ONE_SEED, RESAMPLES, Paired, compare, range_is_interval
from ralis.report.text import kind_fractions_text, md_table, plural, signed


def paired_plan(names: Sequence[str]) -> tuple[list[tuple[str, str]], str | None]:
    """The comparisons ``[(a, b)]`` (a minus b) of the paired-differences section, and the
    reference every strategy is compared with when RALIS is absent (None when it is present).

    RALIS minus each other strategy; without RALIS, each strategy minus random (or, without
    random too, minus the first strategy in report order). Empty below two strategies.
    """
    names = [s for s in names if s not in SPECIAL]
    if len(names) < 2:
        return [], None
    if "ralis" in names:
        return [("ralis", b) for b in names if b != "ralis"], None
    ref = "random" if "random" in names else names[0]
    return [(s, ref) for s in names if s != ref], ref


def paired_comparisons(rows: Sequence[dict[str, Any]], names: Sequence[str]
                       ) -> dict[tuple[str, str], list[Paired]]:
    """Per comparison of :func:`paired_plan`: one :class:`Paired` per budget both strategies
    ran with at least one shared seed, in budget order."""
    pairs, _ = paired_plan(names)
    out = {}
    for a, b in pairs:
        shared = sorted(set(budgets(rows, a)) & set(budgets(rows, b)))
        found = [compare(rows, a, b, budget) for budget in shared]
        out[(a, b)] = [p for p in found if p.n > 0]
    return out


def _paired_table(found: Sequence[Paired], pixels: dict[int, str] | None = None) -> str:
    """One line per budget; ``pixels``: a "% px" cell per budget, as a second column."""
    body = []
    for p in found:
        interval = ("– (one seed)" if p.interval is None
                    else f"[{signed(p.interval[0])}, {signed(p.interval[1])}]")
        seeds = ", ".join(f"{s}: {signed(d)}" for s, d in p.differences.items())
        px = [pixels.get(p.budget, "?")] if pixels is not None else []
        body.append([str(p.budget), *px, str(p.n), signed(p.mean), interval, p.verdict, seeds])
    header = ["budget", *(["% of pool pixels"] if pixels is not None else []), "n seeds",
              "mean difference (points)", f"{LEVEL:.0%} bootstrap interval", "verdict",
              "per seed (seed: difference)"]
    return md_table(header, body, align="r" * (len(header) - 2) + "ll")


_PAIRED_TEXT = (
    f" The interval is the {LEVEL:.0%} percentile bootstrap interval of the mean difference "
    f"over seeds ({RESAMPLES} resamples, seed 0). Verdict from the interval alone: win = "
    "entirely above 0, loss = entirely below 0, tie = it contains 0. n seeds counts the "
    "seeds both strategies ran at that budget; a seed only one of them ran is left out.")
_ONE_SEED_TEXT = ("Where only one seed is shared, the mean difference is that seed's difference; "
                  f"no interval can be computed from one seed, and the verdict is \"{ONE_SEED}\".")


def _tally(all_found: Sequence[Paired], subject: str, what: str) -> str:
    """"In all, <subject> N wins, ... in M comparisons (<what>)", and what a win means with
    the few seeds at hand."""
    counts = {v: sum(p.verdict == v for p in all_found) for v in ("win", "tie", "loss")}
    one = sum(p.verdict == ONE_SEED for p in all_found)
    losses = f"{counts['loss']} loss" + ("" if counts["loss"] == 1 else "es")
    text = (f"In all, {subject} {plural(counts['win'], 'win')}, "
            f"{plural(counts['tie'] + one, 'tie')} and {losses}"
            + f" in {plural(len(all_found), 'comparison')} ({what})"
            + (f"; {one} of the ties from one seed only" if one else "") + ".")
    multi = [p for p in all_found if p.n >= 2]
    if multi and all(range_is_interval(p.n) for p in multi):
        ns = sorted({p.n for p in multi})
        chance = sum(2 * 0.5 ** p.n for p in multi)
        text += (f" With {'/'.join(map(str, ns))} seeds the {LEVEL:.0%} interval is the range of "
                 "the per-seed differences (a resample repeating one seed is likelier than the "
                 f"{(1 - LEVEL) / 2:.1%} tail), so a win or a loss only means that every seed "
                 "agrees in sign. If the strategies were equal (per-seed differences symmetric "
                 "around 0), that would happen by chance in "
                 + " and ".join(f"{2 * 0.5 ** n:.0%} of {n}-seed comparisons" for n in ns)
                 + f": about {chance:.1f} of these {len(multi)}. These intervals describe these "
                 "seeds; they are not a significance test.")
    return text


def paired_section(rows, names: Sequence[str], kind: str | None = None) -> list[str]:
    """Paired-by-seed differences of test mIoU with bootstrap intervals and verdicts.

    ``kind``: the rows are one region kind's of a table holding several (headings say which).
    """
    pairs, ref = paired_plan(names)
    found = {k: v for k, v in paired_comparisons(rows, names).items() if v}
    if not pairs:
        return []
    within = f", {kind} regions" if kind else ""
    tag = f" ({kind})" if kind else ""
    if ref is None:
        heading = f"## Paired differences{within} (RALIS minus each baseline)"
        intro = ("Test mIoU of ralis minus each other strategy, paired by seed (the same seed "
                 "gives both runs the same θ0 and the same splits), in mIoU points; positive = "
                 "ralis better.")
    else:
        heading = f"## Paired differences{within} (each strategy minus {ref})"
        intro = (f"There is no ralis run in this table, so each strategy is compared with {ref} "
                 f"instead: its test mIoU minus {ref}'s, paired by seed (the same seed gives both "
                 "runs the same θ0 and the same splits), in mIoU points; positive = better than "
                 f"{ref}.")
    if kind:
        intro = f"Within the {kind} runs only. " + intro
    lines = [heading, "", intro + _PAIRED_TEXT, ""]
    all_found = [p for v in found.values() for p in v]
    if not all_found:
        return lines + ["No seed was run by both strategies of any comparison, so there is no "
                        "paired difference.", ""]
    if any(p.n == 1 for p in all_found):
        lines += [_ONE_SEED_TEXT, ""]
    for a, b in pairs:
        if (a, b) not in found:
            lines += [f"### {a} − {b}{tag}", "", "No seed shared at any budget.", ""]
            continue
        lines += [f"### {a} − {b}{tag}", "", _paired_table(found[(a, b)]), ""]
    subject = "ralis has" if ref is None else f"the strategies against {ref} have"
    what = "budgets × " + ("baselines" if ref is None else "strategies")
    return lines + [_tally(all_found, subject, what), ""]


def kind_comparisons(rows: Sequence[dict[str, Any]]
                     ) -> tuple[str | None, dict[tuple[str, str], list[Paired]]]:
    """Each strategy of each other region kind minus the same strategy of the reference kind
    (rect, or the first kind without rect), paired by seed at every nominal budget both ran.

    Returns ``(reference kind, {(series a, series b): [Paired per budget]})``, keys in report
    order (``entropy · slic`` minus ``entropy``); the reference is None and the dict empty with
    fewer than two kinds. ``rows`` are the table's rows (with ``region_kind``), not series.
    """
    kinds = region_kinds(rows)
    if len(kinds) < 2:
        return None, {}
    ref = RECT if RECT in kinds else kinds[0]
    srows = series_rows(rows)
    ref_names = set(strategies(kind_rows(rows, ref)))
    out: dict[tuple[str, str], list[Paired]] = {}
    for kind in kinds:
        if kind == ref:
            continue
        for name in strategies(kind_rows(rows, kind)):
            if name not in ref_names:
                continue
            a, b = series_name(name, kind), series_name(name, ref)
            shared = sorted(set(budgets(srows, a)) & set(budgets(srows, b)))
            out[(a, b)] = [p for p in (compare(srows, a, b, budget) for budget in shared)
                           if p.n > 0]
    return ref, out


def kinds_section(rows) -> list[str]:
    """Region kinds compared: each strategy's other-kind runs minus its rect runs, by seed."""
    ref, found = kind_comparisons(rows)
    if ref is None:
        return []
    others = [k for k in region_kinds(rows) if k != ref]
    title = " / ".join(others)
    lines = [f"## Region kinds: {title} minus {ref} (paired by seed)", ""]
    if not found:
        return lines + [f"No strategy was run with both {ref} and {title} regions, so the region "
                        "kinds cannot be paired.", ""]
    by_kind = kind_fractions(rows)
    lines += [
        f"Test mIoU of each strategy with {title} regions minus the same strategy with {ref} "
        "regions, paired by seed (the same seed gives both runs the same θ0 and the same "
        "splits), at the same nominal budget, in mIoU points; positive = "
        f"{title} better. % of pool pixels: what each kind labelled at that budget (mean over "
        "seeds); the nominal budgets cost about, not exactly, the same pixels, so read the "
        "differences together with the pixel-axis figure above." + _PAIRED_TEXT, ""]
    all_found = [p for v in found.values() for p in v]
    if not all_found:
        return lines + ["No seed was run with both region kinds by any strategy, so there is "
                        "no paired difference.", ""]
    if any(p.n == 1 for p in all_found):
        lines += [_ONE_SEED_TEXT, ""]
    for (a, b), paired in found.items():
        kind = split_series(a)[1] or RECT
        lines += [f"### {a} − {b}", ""]
        if not paired:
            lines += ["No seed shared at any budget.", ""]
            continue
        pixels = {p.budget: kind_fractions_text({kind: by_kind[kind], ref: by_kind[ref]},
                                                 p.budget) for p in paired}
        lines += [_paired_table(paired, pixels), ""]
    subject = f"{title} against {ref} {'has' if len(others) == 1 else 'have'}"
    return lines + [_tally(all_found, subject, "budgets × strategies"), ""]
