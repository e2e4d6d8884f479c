"""``ralis report``: a Markdown report with figures from a results table, a run or a grid folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ralis.cli.options import console


def report(
    results: Annotated[Path, typer.Argument(
        help="results.csv, a run directory (simulate or upper-bound), its results.json, or a "
             "grid folder holding results.csv.")],
    out: Annotated[Path, typer.Option(help="Folder for report.md and the figures.")] =
        Path("report"),
    budget: Annotated[int | None, typer.Option(
        help="Budget of the per-class table (default: the largest all strategies reached).")] = None,
    runs: Annotated[list[Path] | None, typer.Option(
        help="Grid folder (repeatable, e.g. one per region kind): each strategy's regions are "
             "drawn on images (first seed's runs) and its agent-* runs give the agent's "
             "learning curve (default: RESULTS itself when it is a grid folder or a run).")] = None,
    regions: Annotated[bool, typer.Option(
        "--regions/--no-regions",
        help="Draw acquired regions on pool images (loads the runs' dataset).")] = True,
) -> None:
    """Write a Markdown report with figures from a results table, a run or a grid folder."""
    from ralis.report import load_results, write_report
    from ralis.report.runs import find_run_dirs

    run_dirs = None
    if runs and regions:
        run_dirs = find_run_dirs(load_results(results).rows, runs)
        if not run_dirs:
            console.print(f"no run directory with acquired_regions.csv in "
                          f"{', '.join(map(str, runs))}; no regions drawn")
    path = write_report(results, out, budget=budget, run_dirs=run_dirs, regions=regions,
                        runs=runs or None)
    console.print(f"report: {path}")
