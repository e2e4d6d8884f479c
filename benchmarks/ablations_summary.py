"""The summary of ``benchmarks/ablations.py``: ``ablations.csv`` (one row per cell x budget) and
``ablations.md`` (one Markdown table per study, mean ± std over seeds, with the paper's numbers
beside them). Reads a plan built by ``ablations.py``; runs nothing."""

from __future__ import annotations

from typing import Any

from ablations_plan import Cell, Plan

from ralis.provenance import git_revision
from ralis.report.numbers import mean_std
from ralis.report.runs import collect
from ralis.report.table import write_csv

__all__ = ["write_summary"]

LABEL_HEADERS: dict[str, tuple[str, ...]] = {
    "features": ("variant",), "image_vs_region": ("unit", "strategy"),
    "regions_per_step": ("K", "strategy"),
}


def gather(plan: Plan) -> list[tuple[Cell, dict[str, Any]]]:
    """``(cell, row)`` for every budget row of every finished cell, with the study columns."""
    pairs = []
    for cell in plan.cells:
        if not (cell.run_dir / "results.json").exists():
            continue
        for row in collect([cell.run_dir], base=plan.out):
            row.update({
                "study": cell.study, "variant": cell.variant, "unit": cell.unit,
                "regions_per_step": cell.cfg.al.regions_per_step,
                "region_budget": row["regions"] * cell.regions_per_unit,
                "budget_pixels_fraction": row["pixel_fraction"],
            })
            pairs.append((cell, row))
    return pairs


def _fmt(values: list[float], seeds: int) -> str:
    stat = mean_std(100.0 * v for v in values if v is not None)
    if stat is None:
        return "–"
    text = f"{stat.mean:.2f}" + (f" ± {stat.std:.2f}" if stat.std is not None else "")
    return text + (f" (n={stat.n})" if stat.n < seeds else "")


def study_notes(plan: Plan, study: str) -> list[str]:
    cfg, seeds = plan.cfg, plan.seeds
    if study == "features":
        a = cfg.agent
        return [
            f"One agent per variant (`max`: max-pooled entropy only; `3H`: min, mean and max "
            f"pooling; `3H+KL`: 3H plus the two KL histograms, the full agent), trained with seed "
            f"{seeds[0]} ({a.episodes} episodes, {a.episode_budget} regions each, mode "
            f"{a.mode}), then evaluated greedily (N = {cfg.pool_size('ralis')}) on every seed; "
            f"`entropy` is the baseline on the same seeds.",
            "Paper (Cityscapes, N = 20 / 100 / 200): 1H 56.89 / 57.29 / 57.62, 3H 57.65 / "
            "58.10 / 57.65, 3H+KL 57.67 / 58.95 / 59.18; entropy 57.41 / 57.55 / 57.48.",
        ]
    if study == "image_vs_region":
        grid = plan.proto.grid
        (H, W), (h, w) = grid.image_size, grid.region_size
        ch, cw = cfg.train.crop_size
        notes = [
            f"`region`: K = {cfg.al.regions_per_step} regions of {h}x{w} per step; `image`: one "
            f"whole {H}x{W} image per step (region size = image size), budgets divided by the "
            f"{grid.per_image} regions per image, so both label the same pixels. Both start from "
            f"the same θ0 (the region grid's).",
            "RALIS runs under region labelling only (with `--policy`): a policy's state and "
            "action features are built on the region grid it was trained on "
            f"({grid.per_image} regions per image), so it cannot score whole images; scoring "
            "them would need an agent trained with one region per image." +
            ("" if plan.policy else " No `--policy` was given, so RALIS is not in this table."),
            f"Training crops are {ch}x{cw} around the labelled unit, so a whole image "
            "is seen one crop at a time, a region whole.",
            "Paper (CamVid, val IoU, budget not stated): image U 69.64, H 69.46, B 69.66, "
            "RALIS 69.44; regions U 70.35, H 70.40, B 70.63, RALIS 71.85.",
        ]
        if grid.rows * h != H or grid.cols * w != W:
            notes.append(f"The {h}x{w} grid leaves a margin of the {H}x{W} image unlabelled, so "
                         "whole images label slightly more pixels (see budget_pixels_fraction).")
        return notes
    when = (f"every al.eval_every = {cfg.al.eval_every} steps and at each budget"
            if cfg.al.eval_every else "at each budget only (al.eval_every = 0)")
    notes = [f"Strategy `{plan.strategy}`, K regions per step, same budgets; D_R is evaluated "
             f"{when}."]
    if 1 in plan.k_values:
        notes.append(f"**K = 1 is slow**: one AL step per region ({max(cfg.al.budgets)} steps "
                     "to the largest budget, each with its own selection and training pass).")
    notes.append("Paper (CamVid, RALIS, val IoU): K = 1 71.10, 12 70.93, 24 71.85, 36 71.24, "
                 "48 71.25, 72 71.20.")
    return notes


def study_table(plan: Plan, study: str, pairs: list[tuple[Cell, dict[str, Any]]]) -> list[str]:
    labels = list(dict.fromkeys(c.label for c in plan.cells if c.study == study))
    values: dict[tuple[tuple[str, ...], int], list[float]] = {}
    for cell, row in pairs:
        if cell.study == study:
            values.setdefault((cell.label, row["region_budget"]), []).append(row["miou"])
    budgets = list(plan.cfg.al.budgets)
    per_image = plan.regions_per_image

    def head(b: int) -> str:
        n = b // per_image
        images = f" = {n} image{'s' if n != 1 else ''}" if study == "image_vs_region" else ""
        return f"{b} regions{images} ({100 * plan.pixel_fraction(b):.1f}% px)"

    headers = [*LABEL_HEADERS[study], *(head(b) for b in budgets)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for label in labels:
        cells = [_fmt(values.get((label, b), []), len(plan.seeds)) for b in budgets]
        lines.append("| " + " | ".join([*label, *cells]) + " |")
    return lines


TITLES = {
    "features": "E.1 state and action features of the agent",
    "image_vs_region": "E.2 region vs whole-image labelling",
    "regions_per_step": "E.3 regions labelled per step",
}


def write_summary(plan: Plan, command: str) -> None:
    pairs = gather(plan)
    write_csv([row for _, row in pairs], plan.out / "ablations.csv")
    cfg = plan.cfg
    lines = [
        "# RALIS ablations (paper appendix E)", "",
        f"- command: `{command}`",
        f"- preset: `{cfg.preset}` ({cfg.data.dataset}, model {cfg.model.name})",
        f"- seeds: {', '.join(map(str, plan.seeds))}",
        f"- budgets (regions of {cfg.data.region_size[0]}x{cfg.data.region_size[1]}): "
        f"{', '.join(map(str, cfg.al.budgets))}",
        f"- git revision: {git_revision()}",
        f"- cells finished: {len({id(c) for c, _ in pairs})} of {len(plan.cells)}",
        "",
        "Test mIoU in %, mean ± sample std over seeds (n = seeds finished, when fewer than "
        "all); – = not finished. Rows: `ablations.csv`.",
    ]
    for study in plan.studies:
        lines += ["", f"## {TITLES[study]} (`{study}`)", ""]
        lines += study_table(plan, study, pairs)
        lines += [""] + [f"- {n}" for n in study_notes(plan, study)]
    (plan.out / "ablations.md").write_text("\n".join(lines) + "\n")


