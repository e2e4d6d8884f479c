"""The Markdown report: paper-style tables and figures from a results CSV or a single run.

``write_report(results, out_dir)`` writes ``out_dir/report.md`` plus its PNG figures (linked
relatively); ``results`` is a results.csv, a run directory, its results.json, or a grid folder
(see :func:`ralis.report.table.load_results`). All numbers come from
:mod:`ralis.report.table`'s helpers; the verdict paragraph states the seed count and never
claims significance. Differences between strategies are paired by seed, with percentile bootstrap
intervals and win / tie / loss verdicts read off the intervals (:mod:`ralis.report.stats`); the
labels-needed table carries bootstrap intervals over seeds. Sections that compare strategies or
seeds say so in a sentence when the input has only one; ``theta0`` (the start model) and ``full``
(the upper bound) are references, shown in italics and never ranked.

Region kinds: a table holding more than one (``rect`` rectangles, ``slic`` superpixels) is
reported by series, strategy and kind (:func:`ralis.report.table.series_rows`: ``entropy · slic``;
rect keeps the plain name, so a table of one kind reads as before). Its mIoU curves are drawn
against the % of pool pixels labelled, where kinds compare at equal pixel cost; the paired
differences, the labels needed and the verdict are given within each kind; and a section pairs
each strategy's slic runs with its rect runs by seed (slic minus rect). θ0 and the upper bound
are shared by every kind. With ``runs`` (or a grid folder) holding ``agent-*/run.sqlite``, the
agents' training game gets its own section (:mod:`ralis.report.agents`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ralis.errors import RalisError
from ralis.report import figures
from ralis.report.agents import agent_labels, find_agent_dirs, read_episodes, summarize
from ralis.report.heldout import heldout_section
from ralis.report.stats import (
    LEVEL,
    ONE_SEED,
    RESAMPLES,
    NeededInterval,
    Paired,
    compare,
    needed_interval,
    range_is_interval,
)
from ralis.report.table import (
    BASELINES,
    FULL,
    RECT,
    SPECIAL,
    THETA0,
    Results,
    Stat,
    aggregate,
    best_baseline,
    bold_best,
    budgets,
    class_names,
    common_budget,
    default_levels,
    find_run_dirs,
    gap_closed,
    gaps_closed,
    kind_fractions,
    kind_rows,
    load_results,
    mean_curve,
    pixel_fractions,
    pooled_std,
    reference,
    region_kind,
    region_kinds,
    regions_needed,
    savings,
    series_name,
    series_rows,
    split_series,
    strategies,
)

REFERENCE_LABELS = {THETA0: "θ0 (start)", FULL: FULL}
"""Row labels (italic in tables) of the special, unranked rows."""
REFERENCE_NAMES = {THETA0: "the start model θ0", FULL: "the upper bound"}
KIND_TEXT = {RECT: "rectangles of the region grid",
             "slic": "SLIC superpixels; a nominal region is an average superpixel"}
"""What each region kind is, in the report's header."""


def _fmt(stat: Stat | None, decimals: int = 1) -> str:
    if stat is None:
        return "–"
    if stat.std is None:
        return f"{stat.mean:.{decimals}f} (n=1)"
    return f"{stat.mean:.{decimals}f} ± {stat.std:.{decimals}f}"


def _pct(fraction: float | None) -> str:
    if fraction is None:
        return "?"
    return f"{100 * fraction:.2g}%" if fraction < 0.01 else f"{100 * fraction:.1f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _seeds_by_strategy(rows: Sequence[dict[str, Any]]) -> dict[str, list[int]]:
    out: dict[str, set[int]] = {}
    for r in rows:
        out.setdefault(r["strategy"], set()).add(r["seed"])
    return {k: sorted(v, key=lambda s: (s is None, s)) for k, v in out.items()}


def _values(rows: Sequence[dict[str, Any]], key: str) -> list[str]:
    return sorted({str(r[key]) for r in rows if r.get(key) not in (None, "")})


def _runs(rows: Sequence[dict[str, Any]]) -> int:
    return len({(r.get("run_dir") or (r["strategy"], r["seed"]), region_kind(r)) for r in rows})


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _dataset_text(rows: Sequence[dict[str, Any]]) -> str:
    """Display names of the datasets; the registry name in backticks where it differs."""
    shown = set()
    for r in rows:
        dataset = r.get("dataset") or None
        name = r.get("dataset_name") or dataset
        if name is None:
            continue
        shown.add(name if dataset in (None, name) else f"{name} (`{dataset}`)")
    return ", ".join(sorted(shown))


def _reference_rows(stats: dict[tuple[str, int], Stat]) -> list[tuple[str, Stat]]:
    """``[(name, stat)]`` of the special rows present, θ0 first."""
    out = []
    for name in (THETA0, FULL):
        stat = reference(stats, name)
        if stat is not None:
            out.append((name, stat))
    return out


def _budget_table(stats: dict[tuple[str, int], Stat], names: Sequence[str], bs: Sequence[int],
                  header: Sequence[str]) -> str:
    """Strategies x budgets of mean ± std; a θ0 line (its own "0 (θ0)" column) when present."""
    start = reference(stats, THETA0)
    if start is None:
        return _table(["strategy", *header], [[s] + [_fmt(stats.get((s, b))) for b in bs]
                                              for s in names])
    body = [[f"_{REFERENCE_LABELS[THETA0]}_", f"_{_fmt(start)}_"] + ["–"] * len(bs)]
    body += [[s, "–"] + [_fmt(stats.get((s, b))) for b in bs] for s in names]
    return _table(["strategy", "0 (θ0)", *header], body)


# ------------------------------------------------------------------------------- sections
def _kind_fractions_text(by_kind: dict[str, dict[int, float]], budget: int) -> str:
    """``rect 1.0%, slic 1.2%``: the mean % of pool pixels each kind labelled at ``budget``."""
    return ", ".join(f"{k} {_pct(f.get(budget))}" for k, f in by_kind.items())


def _header(rows, results: Results, given: Path, out_dir: Path, budget_arg: int | None,
            kinds: Sequence[str] = (RECT,), runs: Sequence[Path] = ()) -> list[str]:
    """``rows``: series rows (:func:`series_rows`); ``kinds``: the region kinds of the table."""
    seeds = _seeds_by_strategy(rows)
    names = strategies(rows)
    fractions = pixel_fractions(rows)
    budget_text = ", ".join(f"{b} ({_pct(fractions.get(b))} px)" for b in budgets(rows))
    budget_title = "labelled regions, % of pool pixels"
    if len(kinds) > 1:
        by_kind = kind_fractions(rows)
        budget_text = ", ".join(f"{b} ({_kind_fractions_text(by_kind, b)} px)"
                                for b in budgets(rows))
        budget_title = "nominal regions, % of pool pixels per region kind"
    strat_text = ", ".join(f"{s} ({_plural(len(seeds[s]), 'seed')})" for s in names) or "none"
    refs = []
    if THETA0 in seeds:
        refs.append(f"start model θ0 (`{THETA0}`): {_plural(len(seeds[THETA0]), 'run')}")
    if FULL in seeds:
        refs.append(f"upper bound (`{FULL}`): {len(seeds[FULL])} run(s)")
    # θ0 is pretrained once with the grid's own seed: not one of the AL seeds
    all_seeds = sorted({r["seed"] for r in rows if r["seed"] is not None
                        and r["strategy"] != THETA0})
    command = f"ralis report {given} --out {out_dir}"
    if budget_arg is not None:
        command += f" --budget {budget_arg}"
    command += "".join(f" --runs {folder}" for folder in runs)
    what = {"run": "a single run", "grid": "a grid folder", "table": "a results table"}
    lines = [
        "# Region-based active learning: results report",
        "",
        f"- **Dataset:** {_dataset_text(rows) or '?'}",
        f"- **Preset:** {', '.join(_values(rows, 'preset')) or '?'}",
        f"- **Strategies:** {strat_text}" + "".join(f"; {r}" for r in refs),
        f"- **Seeds:** {', '.join(map(str, all_seeds)) or '?'}",
        f"- **Budgets ({budget_title}):** {budget_text or 'none'}",
        f"- **Git revisions:** {', '.join(_values(rows, 'git_revision')) or 'unknown'}",
        f"- **Runs:** {_runs(rows)} ({_plural(len(rows), 'row')} of `{results.source.name}`, "
        f"{what[results.kind]})",
        f"- **Regenerate:** `{command}`",
        "",
        "mIoU and IoU are on the test split, in %; ± is the sample standard deviation over "
        "seeds (ddof = 1).",
        "",
    ]
    if list(kinds) != [RECT]:
        described = "; ".join(f"{k} ({KIND_TEXT.get(k, 'regions')})" for k in kinds)
        label = "Region kinds" if len(kinds) > 1 else "Region kind"
        at = lines.index(next(line for line in lines if line.startswith("- **Budgets")))
        lines.insert(at, f"- **{label}:** {described}")
        if len(kinds) > 1:
            lines += [
                "Series are strategy and region kind: "
                + ("a plain strategy name is its rect runs, `strategy · kind` its runs of "
                   "another kind." if RECT in kinds else "`strategy · kind`.")
                + " Budgets are "
                "nominal region counts, the same numbers in every kind, but a region of one "
                "kind does not cost the pixels of one of another, so the curves are drawn "
                "against the % of pool pixels labelled. θ0 and the upper bound are shared by "
                "every kind.",
                "",
            ]
    return lines


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


def _miou_section(rows, stats, out_dir: Path, mixed: bool = False) -> list[str]:
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
            headers = [f"{b} ({_kind_fractions_text(by_kind, b)})" for b in bs]
        else:
            figures.miou_curve(rows, out_dir / "miou_curve.png")
            figure = "![test mIoU vs labelled regions](miou_curve.png)"
            caption = ("Mean ± std test mIoU (%) per strategy; columns are budgets in regions (% "
                       f"of pool pixels){start}.")
            headers = [f"{b} ({_pct(fractions.get(b))})" for b in bs]
        lines += [figure, "", caption, "", _budget_table(stats, names, bs, headers), ""]
    else:
        lines += ["This table holds no active-learning run, so there is no curve; only the "
                  "reference numbers below.", ""]
        start = reference(stats, THETA0)
        if start is not None:
            lines += [f"Start model θ0 (`{THETA0}`, 0 regions): **{_fmt(start)}** mIoU.", ""]
    full = [(b, st) for (s, b), st in stats.items() if s == FULL]
    if full:
        b, st = full[0]
        lines += [f"Upper bound (`full`, all training labels, {b} regions): **{_fmt(st)}** mIoU.",
                  ""]
    gap = _gap_text(stats) if names else None
    if gap:
        lines += [gap, ""]
    return lines


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


def _signed(value: float) -> str:
    return f"{value:+.2f}"


def _paired_table(found: Sequence[Paired], pixels: dict[int, str] | None = None) -> str:
    """One line per budget; ``pixels``: a "% px" cell per budget, as a second column."""
    body = []
    for p in found:
        interval = ("– (one seed)" if p.interval is None
                    else f"[{_signed(p.interval[0])}, {_signed(p.interval[1])}]")
        seeds = ", ".join(f"{s}: {_signed(d)}" for s, d in p.differences.items())
        px = [pixels.get(p.budget, "?")] if pixels is not None else []
        body.append([str(p.budget), *px, str(p.n), _signed(p.mean), interval, p.verdict, seeds])
    header = ["budget", *(["% of pool pixels"] if pixels is not None else []), "n seeds",
              "mean difference (points)", f"{LEVEL:.0%} bootstrap interval", "verdict",
              "per seed (seed: difference)"]
    return _table(header, body, align="r" * (len(header) - 2) + "ll")


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
    text = (f"In all, {subject} {_plural(counts['win'], 'win')}, "
            f"{_plural(counts['tie'] + one, 'tie')} and {losses}"
            + f" in {_plural(len(all_found), 'comparison')} ({what})"
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


def _paired_section(rows, names: Sequence[str], kind: str | None = None) -> list[str]:
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


def _kinds_section(rows) -> list[str]:
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
        pixels = {p.budget: _kind_fractions_text({kind: by_kind[kind], ref: by_kind[ref]},
                                                 p.budget) for p in paired}
        lines += [_paired_table(paired, pixels), ""]
    subject = f"{title} against {ref} {'has' if len(others) == 1 else 'have'}"
    return lines + [_tally(all_found, subject, "budgets × strategies"), ""]


def _reward_set_section(rows, out_dir: Path, mixed: bool = False) -> list[str]:
    """D_R mIoU per budget: the set that early-stops the final training (and rewards the agent).

    It is the best epoch's score, so optimistic; shown because test and D_R can disagree on
    whether more labels helped. ``mixed``: several region kinds, the curve against pixels.
    """
    stats = aggregate(rows, "val_miou", scale=100.0)
    names = [s for s in strategies(rows) if any(n == s for n, _ in stats)]
    if not names:
        refs = _reference_rows(stats)
        if not refs:
            return []
        return ["## D_R mIoU", "",
                "mIoU (%) on D_R, the reward set that early-stops training (the best epoch's "
                "score, hence optimistic): "
                + "; ".join(f"{REFERENCE_NAMES[n]}: {_fmt(st)}" for n, st in refs) + ".", ""]
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
        _budget_table(stats, names, bs, [str(b) for b in bs]),
        "",
    ]
    full = [(b, st) for (s, b), st in stats.items() if s == FULL]
    if full:
        lines += [f"Upper bound on D_R: {_fmt(full[0][1])}.", ""]
    return lines


def _per_class_section(rows, budget: int | None) -> list[str]:
    """Per-class IoU of every strategy at ``budget``, plus θ0 and full as unranked lines.

    ``budget`` None (no AL run in the table): the reference lines only.
    """
    names = strategies(rows) if budget is not None else []
    at = [r for r in rows if r["regions"] == budget and r["strategy"] not in SPECIAL]
    refs = [(n, [r for r in rows if r["strategy"] == n]) for n in (THETA0, FULL)]
    refs = [(n, rs) for n, rs in refs if rs]
    classes = class_names(at + [r for _, rs in refs for r in rs])
    if not classes or not (names or refs):
        return []
    per = {c: aggregate(at, f"iou_{c}", 100.0) for c in classes}
    miou = aggregate(at, "miou", 100.0)
    cells: dict[str, dict[str, str]] = {}
    for c in classes:
        shown = bold_best({s: (per[c][(s, budget)].mean if (s, budget) in per[c] else None)
                           for s in names})
        for s in names:
            cells.setdefault(s, {})[c] = shown[s]
    shown_miou = bold_best({s: (miou[(s, budget)].mean if (s, budget) in miou else None)
                            for s in names})
    body = [[s] + [cells[s][c] for c in classes] + [shown_miou[s]] for s in names]

    def one(d):
        return f"_{next(iter(d.values())).mean:.1f}_" if d else "–"

    for name, ref_rows in refs:
        body.append([f"_{REFERENCE_LABELS[name]}_"]
                    + [one(aggregate(ref_rows, f"iou_{c}", 100.0)) for c in classes]
                    + [one(aggregate(ref_rows, "miou", 100.0))])
    ref_text = (" " + " and ".join(REFERENCE_NAMES[n] for n, _ in refs).capitalize()
                + " (italic) " + ("is" if len(refs) == 1 else "are")
                + " for reference and not ranked.") if refs else ""
    if budget is None:
        return ["## Per-class IoU", "",
                "Test IoU (%) per class (no active-learning run in this table to compare).", "",
                _table(["strategy"] + classes + ["mIoU"], body), ""]
    seeds = _seeds_by_strategy(at)
    n_text = ", ".join(f"{s}: {len(seeds.get(s, []))}" for s in names)
    ranked = ("; best strategy per column in **bold** (the paper's Table 1)." if len(names) > 1
              else "; one strategy, so nothing is ranked.")
    return [
        f"## Per-class IoU at {budget} regions",
        "",
        f"Test IoU (%) per class, mean over seeds ({n_text}){ranked}" + ref_text,
        "",
        _table(["strategy"] + classes + ["mIoU"], body),
        "",
    ]


def _distribution_section(rows, budget: int, out_dir: Path) -> list[str]:
    at = [r for r in rows if r["regions"] == budget and r["strategy"] not in SPECIAL]
    classes = class_names(at)
    names = [s for s in strategies(at)
             if any(r.get(f"share_{c}") is not None for r in at if r["strategy"] == s
                    for c in classes)]
    if not names:
        return []
    figures.class_distribution(rows, budget, out_dir / "class_distribution.png")
    share = {c: aggregate(at, f"share_{c}", 100.0) for c in classes}
    ent = aggregate(at, "class_entropy")
    body = []
    for s in names:
        body.append([s] + [f"{share[c][(s, budget)].mean:.1f}" if (s, budget) in share[c] else "–"
                           for c in classes] + [_fmt(ent.get((s, budget)), 3)])
    return [
        f"## Class distribution of labelled pixels at {budget} regions",
        "",
        "![class distribution of labelled pixels](class_distribution.png)",
        "",
        "% of labelled pixels per class (mean over seeds) and the entropy (nats) of that "
        "distribution; a higher entropy means more balanced labels.",
        "",
        _table(["strategy"] + classes + ["entropy"], body),
        "",
    ]


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


def _labels_section(rows, stats, names: Sequence[str], levels: Sequence[float],
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
            _table(["mIoU level", f"{only} (regions)", f"{only} {LEVEL:.0%} interval"],
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
        _table(header, body),
        "",
    ]


def _verdict(rows, stats, budget: int, levels: Sequence[float]) -> list[str]:
    text = _verdict_text(rows, stats, budget, levels)
    return ["## Verdict", "", text, ""] if text else []


def _mixed_verdict(rows, budget: int, levels: Sequence[float]) -> list[str]:
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
            px = _kind_fractions_text({kind: by_kind[kind], ref: by_kind[ref]}, budget)
            parts.append(f"{a} − {b}: {_signed(p.mean)} points, {p.verdict} ({px} px)")
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
    seeds = _seeds_by_strategy([r for r in rows if r["regions"] == budget
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
                 f"mIoU ({full.mean:.1f}%) with {_pct(fraction)} of the pool's pixels labelled.")
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
        text += (f" Only {subject} is in this table ({_plural(counts[0], 'seed')}), so nothing "
                 "is compared between strategies; the numbers describe "
                 + ("this run." if counts[0] == 1 else "these runs, not a significance test."))
    else:
        text += (f" These are means over {n_text} seed(s) per strategy; with so few seeds the "
                 "differences describe these runs and are not a significance test.")
    return text


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it lies inside it (a report names no
    machine's absolute paths where it need not), else as it is."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return Path(path)


def _agent_section(agent_dirs: Sequence[Path], out_dir: Path, window: int = 10) -> list[str]:
    """The agents' training game (``agent-*/run.sqlite``): a figure, first vs last episodes."""
    if not agent_dirs:
        return []
    labels = agent_labels(agent_dirs)
    curves: dict[str, list[dict[str, Any]]] = {}
    unread: dict[str, str] = {}
    for d in agent_dirs:
        try:
            curves[labels[d]] = read_episodes(d)
        except RalisError as exc:
            unread[labels[d]] = str(exc).splitlines()[0]
    where = ", ".join(f"{labels[d]} = `{_shown(d)}`" for d in agent_dirs)
    lines = ["## Agent learning curve", ""]
    summaries = {name: summarize(eps, window) for name, eps in curves.items()}
    if any(sm.episodes for sm in summaries.values()):
        figures.agent_learning_curve(curves, out_dir / "agent_learning_curve.png", window)
        lines += [
            "![agent learning curve](agent_learning_curve.png)",
            "",
            "The RALIS agents' training game on D_T, per episode: the D_R mIoU (%) at the "
            "episode's end (left axis; light: every episode, bold: the moving average over "
            f"{window} episodes), the entropy (nats) of the labelled pixels' class distribution "
            "(right axis, dashed) and the exploration rate ε (faint, dotted, 0 to 1). Agents: "
            f"{where}.",
            "",
        ]
    else:
        lines += [f"No agent has finished an episode yet ({where}).", ""]
    body, verdicts, losses = [], [], []
    for name, sm in summaries.items():
        if not sm.episodes:
            body.append([name, "0", "–", "–", "–", "–", "–"])
            continue
        spread = "–" if sm.spread is None else f"{sm.spread:.2f}"
        start = "–" if sm.start is None else f"{sm.start:.2f}"
        body.append([name, str(sm.episodes), f"{sm.first:.2f}", f"{sm.last:.2f}",
                     _signed(sm.difference), spread, start])
        if sm.loss_max is not None:
            losses.append([name, f"{sm.loss_first:.3g}", f"{sm.loss_last:.3g}",
                           f"{sm.loss_max:.3g}"])
        if sm.learned is None:
            verdicts.append(f"{name} cannot tell (fewer than 2 episodes in a window)")
        else:
            sign = ">" if sm.learned else "≤"
            verdicts.append(f"{name} {'yes' if sm.learned else 'no'} "
                            f"({_signed(sm.difference)} {sign} {sm.spread:.2f} points)")
    if body:
        short = [sm for sm in summaries.values() if sm.episodes and sm.overlap]
        lines += [
            f"Mean final D_R mIoU (%) of the first and the last {window} episodes of each agent; "
            "spread = the pooled sample standard deviation of the episodes within those two "
            "windows, sqrt((s_first² + s_last²) / 2)"
            + (f"; with fewer than {2 * window} episodes the two windows overlap" if short
               else "") + "; start = the D_R mIoU of the game's start model, where every "
            "episode begins (an episode that ends below it lost D_R mIoU by labelling).",
            "",
            _table(["agent", "episodes", f"first {window}", f"last {window}", "last − first",
                    "spread", "start"], body),
            "",
        ]
    if verdicts:
        lines += [f"Last-{window} mean above the first-{window} mean by more than the spread of "
                  "the episodes: " + "; ".join(verdicts) + ".", ""]
    if losses:
        lines += [
            "The query network's regression: the DQN's Huber loss per episode (the mean over "
            f"its steps' minibatches), median over the first and the last {window} episodes, "
            "and the largest. Returns are mIoU points; a loss far above their scale means the "
            "Q-values have drifted away from the returns they should predict.",
            "",
            _table(["agent", f"median loss, first {window}", f"median loss, last {window}",
                    "largest loss"], losses),
            "",
        ]
    if unread:
        lines += ["Not read: " + "; ".join(f"{n} ({e})" for n, e in unread.items()) + ".", ""]
    return lines + heldout_section(agent_dirs, labels, out_dir)


def _regions_section(run_dirs: dict[str, Path], chosen: int | None, out_dir: Path,
                     load_images: figures.ImageLoader | None, auto: bool) -> list[str]:
    """The acquired-regions figure; found automatically (``auto``), a failure is a sentence."""
    heading = ["## Acquired regions on pool images", ""]
    try:
        figures.regions_on_images(run_dirs, out_dir / "regions_on_images.png", budget=chosen,
                                  load_images=load_images)
    except (RalisError, OSError) as exc:
        if not auto:
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return heading + [f"Not drawn: the pool images could not be loaded ({first}).", ""]
    upto = f"first {chosen} acquisitions" if chosen is not None else "all acquisitions"
    return heading + [
        "![acquired regions](regions_on_images.png)",
        "",
        f"Regions acquired by each strategy ({upto}; one run each: "
        + ", ".join(f"{s} = `{p}`" for s, p in sorted(run_dirs.items()))
        + ") on the pool images with the most acquisitions over all strategies.",
        "",
    ]


# ---------------------------------------------------------------------------------- entry
def write_report(
    results: Path,
    out_dir: Path,
    budget: int | None = None,
    levels: list[float] | None = None,
    run_dirs: dict[str, Path] | None = None,
    *,
    load_images: figures.ImageLoader | None = None,
    regions: bool = True,
    runs: Path | Sequence[Path] | None = None,
) -> Path:
    """Write ``out_dir/report.md`` (and its PNG figures beside it); returns the report's path.

    ``results``: a results.csv, a run directory (``ralis simulate`` or ``ralis upper-bound``),
    its results.json, or a grid folder holding results.csv.
    ``budget``: the budget of the per-class and class-distribution tables (default: the largest
    budget every strategy reached). ``levels``: mIoU levels (%) of the labels-needed table
    (default: 4 evenly spaced between the worst and best mean mIoU, rounded to 0.5).
    ``run_dirs``: strategy (or series, ``entropy · slic``) -> one run directory, to draw the
    acquired regions on pool images (``load_images``: the image loader of
    :func:`figures.regions_on_images`, default the runs' datasets). Without ``run_dirs`` and
    with ``regions`` (the default), a single simulate run is drawn, and so is each strategy's
    first-seed run of a grid folder; if their images cannot be loaded the report says so in a
    sentence instead.
    ``runs``: grid folder(s) whose ``agent-*/run.sqlite`` give the "Agent learning curve"
    section (default: the grid folder given as ``results``, else the folders holding the
    given ``run_dirs``); the section is left out when no agent run is found.
    """
    given, out_dir = Path(results), Path(out_dir)
    loaded = load_results(given)
    rows = loaded.rows
    if not rows:
        raise RalisError(f"{loaded.source} has no result rows")
    kinds = region_kinds(rows) or [RECT]
    mixed = len(kinds) > 1
    srows = series_rows(rows)  # the rows themselves with one region kind
    stats = aggregate(srows, "miou", 100.0)
    names = strategies(srows)
    all_budgets = budgets(srows)
    chosen = budget if budget is not None else common_budget(srows)
    if budget is not None and budget not in all_budgets:
        raise RalisError(f"budget {budget} is not in {loaded.source}; budgets: {all_budgets}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if levels is None:
        levels = default_levels(st.mean for (s, _), st in stats.items() if s not in SPECIAL)
    if runs is not None:
        agent_folders = [Path(runs)] if isinstance(runs, str | os.PathLike) else list(runs)
    else:
        agent_folders = [loaded.folder] if loaded.kind == "grid" else []
        agent_folders += [Path(d).parent for d in (run_dirs or {}).values()]
    auto = False
    if run_dirs is None and regions and loaded.folder is not None:
        if loaded.kind == "run":
            run_dirs = {s: loaded.folder for s in names
                        if (loaded.folder / "acquired_regions.csv").is_file()}
        else:
            run_dirs = find_run_dirs(rows, loaded.folder)
        auto = True
    lines = _header(srows, loaded, given, out_dir, budget, kinds,
                    agent_folders if runs is not None else ())
    lines += _miou_section(srows, stats, out_dir, mixed)
    if mixed:
        for kind in kinds:
            mine = kind_rows(rows, kind)
            lines += _paired_section(mine, strategies(mine), kind)
        lines += _kinds_section(rows)
    else:
        lines += _paired_section(rows, names)
    lines += _reward_set_section(srows, out_dir, mixed)
    lines += _per_class_section(srows, chosen)
    if chosen is not None:
        lines += _distribution_section(srows, chosen, out_dir)
    if names and levels:
        if mixed:
            for kind in kinds:
                mine = kind_rows(rows, kind)
                lines += _labels_section(mine, aggregate(mine, "miou", 100.0), strategies(mine),
                                         levels, kind)
        else:
            lines += _labels_section(rows, stats, names, levels)
    lines += _agent_section(find_agent_dirs(agent_folders), out_dir)
    if run_dirs:
        lines += _regions_section(run_dirs, chosen, out_dir, load_images, auto)
    if chosen is not None:
        lines += (_mixed_verdict(rows, chosen, levels or []) if mixed
                  else _verdict(rows, stats, chosen, levels or []))
    path = out_dir / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
