"""The Markdown report: paper-style tables and figures from a results CSV.

``write_report(results.csv, out_dir)`` writes ``out_dir/report.md`` plus its PNG figures
(linked relatively). All numbers come from :mod:`ralis.report.table`'s helpers; the verdict
paragraph states the seed count and never claims significance.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ralis.errors import RalisError
from ralis.report import figures
from ralis.report.table import (
    BASELINES,
    FULL,
    Stat,
    aggregate,
    best_baseline,
    bold_best,
    budgets,
    class_names,
    common_budget,
    default_levels,
    mean_curve,
    pixel_fractions,
    pooled_std,
    read_csv,
    regions_needed,
    savings,
    strategies,
)


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
    return len({r.get("run_dir") or (r["strategy"], r["seed"]) for r in rows})


# ------------------------------------------------------------------------------- sections
def _header(rows, results_csv: Path, out_dir: Path, budget_arg: int | None) -> list[str]:
    seeds = _seeds_by_strategy(rows)
    names = strategies(rows)
    fractions = pixel_fractions(rows)
    budget_text = ", ".join(f"{b} ({_pct(fractions.get(b))} px)" for b in budgets(rows))
    strat_text = ", ".join(f"{s} ({len(seeds[s])} seeds)" for s in names) or "none"
    all_seeds = sorted({s for s in (r["seed"] for r in rows) if s is not None})
    command = f"ralis report {results_csv} --out {out_dir}"
    if budget_arg is not None:
        command += f" --budget {budget_arg}"
    lines = [
        "# Region-based active learning: results report",
        "",
        f"- **Dataset:** {', '.join(_values(rows, 'dataset')) or '?'}",
        f"- **Preset:** {', '.join(_values(rows, 'preset')) or '?'}",
        f"- **Strategies:** {strat_text}"
        + (f"; upper bound (`full`): {len(seeds[FULL])} run(s)" if FULL in seeds else ""),
        f"- **Seeds:** {', '.join(map(str, all_seeds)) or '?'}",
        f"- **Budgets (labelled regions, % of pool pixels):** {budget_text or 'none'}",
        f"- **Git revisions:** {', '.join(_values(rows, 'git_revision')) or 'unknown'}",
        f"- **Runs:** {_runs(rows)} ({len(rows)} rows of `{results_csv.name}`)",
        f"- **Regenerate:** `{command}`",
        "",
        "mIoU and IoU are on the test split, in %; ± is the sample standard deviation over "
        "seeds (ddof = 1).",
        "",
    ]
    return lines


def _miou_section(rows, stats, out_dir: Path) -> list[str]:
    figures.miou_curve(rows, out_dir / "miou_curve.png")
    names = strategies(rows)
    bs = budgets(rows)
    fractions = pixel_fractions(rows)
    header = ["strategy"] + [f"{b} ({_pct(fractions.get(b))})" for b in bs]
    body = [[s] + [_fmt(stats.get((s, b))) for b in bs] for s in names]
    lines = [
        "## Test mIoU vs labelled regions",
        "",
        "![test mIoU vs labelled regions](miou_curve.png)",
        "",
    ]
    if names:
        lines += [
            "Mean ± std test mIoU (%) per strategy; columns are budgets in regions (% of pool "
            "pixels).",
            "",
            _table(header, body),
            "",
        ]
    full = [(b, st) for (s, b), st in stats.items() if s == FULL]
    if full:
        b, st = full[0]
        lines += [f"Upper bound (`full`, all training labels, {b} regions): **{_fmt(st)}** mIoU.",
                  ""]
    return lines


def _reward_set_section(rows, out_dir: Path) -> list[str]:
    """D_R mIoU per budget: the set that early-stops the final training (and rewards the agent).

    It is the best epoch's score, so optimistic; shown because test and D_R can disagree on
    whether more labels helped.
    """
    stats = aggregate(rows, "val_miou", scale=100.0)
    names = [s for s in strategies(rows) if any(n == s for n, _ in stats)]
    if not names:
        return []
    figures.miou_curve(rows, out_dir / "val_miou_curve.png", key="val_miou",
                       label="D_R mIoU (%)")
    bs = budgets(rows)
    body = [[s] + [_fmt(stats.get((s, b))) for b in bs] for s in names]
    lines = [
        "## D_R mIoU vs labelled regions",
        "",
        "![D_R mIoU vs labelled regions](val_miou_curve.png)",
        "",
        "Mean ± std mIoU (%) on D_R, the reward set that early-stops the final training: the best "
        "epoch's score, hence optimistic, and not a test number.",
        "",
        _table(["strategy"] + [str(b) for b in bs], body),
        "",
    ]
    full = [(b, st) for (s, b), st in stats.items() if s == FULL]
    if full:
        lines += [f"Upper bound on D_R: {_fmt(full[0][1])}.", ""]
    return lines


def _per_class_section(rows, budget: int) -> list[str]:
    classes = class_names(rows)
    names = strategies(rows)
    per = {c: aggregate([r for r in rows if r["regions"] == budget and r["strategy"] != FULL],
                        f"iou_{c}", 100.0) for c in classes}
    miou = aggregate([r for r in rows if r["regions"] == budget], "miou", 100.0)
    cells: dict[str, dict[str, str]] = {}
    for c in classes:
        shown = bold_best({s: (per[c][(s, budget)].mean if (s, budget) in per[c] else None)
                           for s in names})
        for s in names:
            cells.setdefault(s, {})[c] = shown[s]
    shown_miou = bold_best({s: (miou[(s, budget)].mean if (s, budget) in miou else None)
                            for s in names})
    body = [[s] + [cells[s][c] for c in classes] + [shown_miou[s]] for s in names]
    full_rows = [r for r in rows if r["strategy"] == FULL]
    if full_rows:
        fstats = {c: aggregate(full_rows, f"iou_{c}", 100.0) for c in classes}
        fm = aggregate(full_rows, "miou", 100.0)

        def one(d):
            return f"_{next(iter(d.values())).mean:.1f}_" if d else "–"

        body.append([f"_{FULL}_"] + [one(fstats[c]) for c in classes] + [one(fm)])
    seeds = _seeds_by_strategy([r for r in rows if r["regions"] == budget])
    n_text = ", ".join(f"{s}: {len(seeds.get(s, []))}" for s in names)
    return [
        f"## Per-class IoU at {budget} regions",
        "",
        f"Test IoU (%) per class, mean over seeds ({n_text}); best strategy per column in "
        "**bold** (the paper's Table 1)."
        + (" The upper bound (italic) is for reference and is not ranked." if full_rows else ""),
        "",
        _table(["strategy"] + classes + ["mIoU"], body),
        "",
    ]


def _distribution_section(rows, budget: int, out_dir: Path) -> list[str]:
    at = [r for r in rows if r["regions"] == budget and r["strategy"] != FULL]
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
    """Per level: regions each strategy needs (None = not reached), best baseline, savings."""
    curves = {s: mean_curve(stats, s) for s in names}
    out = []
    for level in levels:
        needed = {s: regions_needed(curves[s], level) for s in names}
        first = {s: (needed[s] is not None and bool(curves[s]) and curves[s][0][1] >= level)
                 for s in names}
        out.append({"level": level, "needed": needed, "at_first": first,
                    "best_baseline": best_baseline(needed), "savings": savings(needed)})
    return out


def _labels_section(stats, names: Sequence[str], levels: Sequence[float]) -> list[str]:
    table = labels_needed(stats, names, levels)
    others = [s for s in names if s not in BASELINES] or list(names)
    header = (["mIoU level"] + [f"{s} (regions)" for s in names] + ["best baseline"]
              + [f"{s} saving" for s in others])
    body = []
    for row in table:
        cells = [f"{row['level']:.1f}"]
        for s in names:
            v = row["needed"][s]
            cells.append("not reached" if v is None
                         else (f"≤ {v:.0f}" if row["at_first"][s] else f"{v:.0f}"))
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
        "## Labels needed to reach an mIoU level",
        "",
        "Regions each strategy needs to reach a test mIoU level, by linear interpolation on its "
        "mean curve (\"≤ b\": already reached at its first budget b; \"not reached\": never "
        "within its budgets). Saving = % fewer regions than the best baseline (random, entropy, "
        "bald: whichever needs fewest); positive = fewer labels; \"≥\": the strategy was already "
        "there at its first budget, so it may save more; \"*\": so was the best baseline, so the "
        "saving is uncertain.",
        "",
        _table(header, body),
        "",
    ]


def _verdict(rows, stats, budget: int, levels: Sequence[float]) -> list[str]:
    names = strategies(rows)
    at = {s: stats[(s, budget)] for s in names if (s, budget) in stats}
    if not at:
        return []
    subject = "ralis" if "ralis" in at else max(at, key=lambda s: at[s].mean)
    me = at[subject]
    seeds = _seeds_by_strategy([r for r in rows if r["regions"] == budget])
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
    full = [st for (s, _), st in stats.items() if s == FULL]
    fraction = pixel_fractions(rows).get(budget)
    if full and full[0].mean > 0:
        text += (f" That is {100 * me.mean / full[0].mean:.0f}% of the full-supervision "
                 f"mIoU ({full[0].mean:.1f}%) with {_pct(fraction)} of the pool's pixels labelled.")
    if subject not in BASELINES:
        for row in reversed(labels_needed(stats, names, levels)):
            best, mine = row["best_baseline"], row["needed"].get(subject)
            if best and mine is not None:
                saving = row["savings"][subject]
                text += (f" To reach {row['level']:.1f}% mIoU, {subject} needs about {mine:.0f} "
                         f"regions vs {best[1]:.0f} for {best[0]}, the best baseline "
                         f"({abs(saving):.1f}% {'fewer' if saving >= 0 else 'more'} labels).")
                break
    counts = sorted({len(seeds.get(s, [])) for s in at})
    n_text = "/".join(map(str, counts))
    text += (f" These are means over {n_text} seed(s) per strategy; with so few seeds the "
             "differences describe these runs and are not a significance test.")
    return ["## Verdict", "", text, ""]


# ---------------------------------------------------------------------------------- entry
def write_report(
    results_csv: Path,
    out_dir: Path,
    budget: int | None = None,
    levels: list[float] | None = None,
    run_dirs: dict[str, Path] | None = None,
    *,
    load_images: figures.ImageLoader | None = None,
) -> Path:
    """Write ``out_dir/report.md`` (and its PNG figures beside it); returns the report's path.

    ``budget``: the budget of the per-class and class-distribution tables (default: the largest
    budget every strategy reached). ``levels``: mIoU levels (%) of the labels-needed table
    (default: 4 evenly spaced between the worst and best mean mIoU, rounded to 0.5).
    ``run_dirs``: strategy -> one run directory, to draw the acquired regions on pool images
    (``load_images``: the image loader of :func:`figures.regions_on_images`, default the runs'
    datasets).
    """
    results_csv, out_dir = Path(results_csv), Path(out_dir)
    rows = read_csv(results_csv)
    if not rows:
        raise RalisError(f"{results_csv} has no result rows")
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = aggregate(rows, "miou", 100.0)
    names = strategies(rows)
    all_budgets = budgets(rows)
    chosen = budget if budget is not None else common_budget(rows)
    if budget is not None and budget not in all_budgets:
        raise RalisError(f"budget {budget} is not in {results_csv}; budgets: {all_budgets}")
    if levels is None:
        levels = default_levels(st.mean for (s, _), st in stats.items() if s != FULL)
    lines = _header(rows, results_csv, out_dir, budget)
    lines += _miou_section(rows, stats, out_dir)
    lines += _reward_set_section(rows, out_dir)
    if chosen is not None:
        lines += _per_class_section(rows, chosen)
        lines += _distribution_section(rows, chosen, out_dir)
    if names and levels:
        lines += _labels_section(stats, names, levels)
    if run_dirs:
        figures.regions_on_images(run_dirs, out_dir / "regions_on_images.png", budget=chosen,
                                  load_images=load_images)
        lines += [
            "## Acquired regions on pool images",
            "",
            "![acquired regions](regions_on_images.png)",
            "",
            "Regions acquired by each strategy (first "
            f"{chosen} acquisitions; one run each: "
            + ", ".join(f"{s} = `{p}`" for s, p in sorted(run_dirs.items()))
            + ") on the pool images with the most acquisitions over all strategies.",
            "",
        ]
    if chosen is not None:
        lines += _verdict(rows, stats, chosen, levels or [])
    path = out_dir / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
