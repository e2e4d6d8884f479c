"""The report's header: dataset, preset, strategies and seeds, budgets (with the % of pool pixels
each labels, per region kind), git revisions, runs, and the command that regenerates it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ralis.report.numbers import kind_fractions, pixel_fractions
from ralis.report.runs import Results
from ralis.report.series import FULL, RECT, THETA0, budgets, region_kind, strategies
from ralis.report.text import KIND_TEXT, kind_fractions_text, pct, plural, seeds_by_strategy


def distinct_values(rows: Sequence[dict[str, Any]], key: str) -> list[str]:
    return sorted({str(r[key]) for r in rows if r.get(key) not in (None, "")})


def count_runs(rows: Sequence[dict[str, Any]]) -> int:
    return len({(r.get("run_dir") or (r["strategy"], r["seed"]), region_kind(r)) for r in rows})


def dataset_text(rows: Sequence[dict[str, Any]]) -> str:
    """Display names of the datasets; the registry name in backticks where it differs."""
    shown = set()
    for r in rows:
        dataset = r.get("dataset") or None
        name = r.get("dataset_name") or dataset
        if name is None:
            continue
        shown.add(name if dataset in (None, name) else f"{name} (`{dataset}`)")
    return ", ".join(sorted(shown))


def header(rows, results: Results, given: Path, out_dir: Path, budget_arg: int | None,
            kinds: Sequence[str] = (RECT,), runs: Sequence[Path] = ()) -> list[str]:
    """``rows``: series rows (:func:`series_rows`); ``kinds``: the region kinds of the table."""
    seeds = seeds_by_strategy(rows)
    names = strategies(rows)
    fractions = pixel_fractions(rows)
    budget_text = ", ".join(f"{b} ({pct(fractions.get(b))} px)" for b in budgets(rows))
    budget_title = "labelled regions, % of pool pixels"
    if len(kinds) > 1:
        by_kind = kind_fractions(rows)
        budget_text = ", ".join(f"{b} ({kind_fractions_text(by_kind, b)} px)"
                                for b in budgets(rows))
        budget_title = "nominal regions, % of pool pixels per region kind"
    strat_text = ", ".join(f"{s} ({plural(len(seeds[s]), 'seed')})" for s in names) or "none"
    refs = []
    if THETA0 in seeds:
        refs.append(f"start model θ0 (`{THETA0}`): {plural(len(seeds[THETA0]), 'run')}")
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
        f"- **Dataset:** {dataset_text(rows) or '?'}",
        f"- **Preset:** {', '.join(distinct_values(rows, 'preset')) or '?'}",
        f"- **Strategies:** {strat_text}" + "".join(f"; {r}" for r in refs),
        f"- **Seeds:** {', '.join(map(str, all_seeds)) or '?'}",
        f"- **Budgets ({budget_title}):** {budget_text or 'none'}",
        f"- **Git revisions:** {', '.join(distinct_values(rows, 'git_revision')) or 'unknown'}",
        f"- **Runs:** {count_runs(rows)} ({plural(len(rows), 'row')} of `{results.source.name}`, "
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
