"""The per-class sections: test IoU per class at a budget (the paper's Table 1, best in bold) and
the class distribution of the labelled pixels there."""

from __future__ import annotations

from pathlib import Path

from ralis.report import figures
from ralis.report.numbers import aggregate, bold_best
from ralis.report.series import FULL, SPECIAL, THETA0, strategies
from ralis.report.table import class_names
from ralis.report.text import (
    REFERENCE_LABELS,
    REFERENCE_NAMES,
    fmt_stat,
    md_table,
    seeds_by_strategy,
)


def per_class_section(rows, budget: int | None) -> list[str]:
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
                md_table(["strategy"] + classes + ["mIoU"], body), ""]
    seeds = seeds_by_strategy(at)
    n_text = ", ".join(f"{s}: {len(seeds.get(s, []))}" for s in names)
    ranked = ("; best strategy per column in **bold** (the paper's Table 1)." if len(names) > 1
              else "; one strategy, so nothing is ranked.")
    return [
        f"## Per-class IoU at {budget} regions",
        "",
        f"Test IoU (%) per class, mean over seeds ({n_text}){ranked}" + ref_text,
        "",
        md_table(["strategy"] + classes + ["mIoU"], body),
        "",
    ]


def distribution_section(rows, budget: int, out_dir: Path) -> list[str]:
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
                           for c in classes] + [fmt_stat(ent.get((s, budget)), 3)])
    return [
        f"## Class distribution of labelled pixels at {budget} regions",
        "",
        "![class distribution of labelled pixels](class_distribution.png)",
        "",
        "% of labelled pixels per class (mean over seeds) and the entropy (nats) of that "
        "distribution; a higher entropy means more balanced labels.",
        "",
        md_table(["strategy"] + classes + ["entropy"], body),
        "",
    ]
