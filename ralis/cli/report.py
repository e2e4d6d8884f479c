"""``ralis report``: a Markdown report with figures from a results table, a run or a grid folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ralis.cli.options import console


def default_report_dir(results: Path) -> Path:
    """``report/`` beside a results file, or inside a run or grid folder: never the current
    folder, where it would show up in ``git status``."""
    return (results if results.is_dir() else results.parent) / "report"


def report(
    results: Annotated[Path, typer.Argument(
        help="results.csv, a run directory (simulate or upper-bound), its results.json, or a "
             "grid folder holding results.csv.")],
    out: Annotated[Path | None, typer.Option(
        help="Folder for report.md and the figures (default: report/ beside RESULTS, or inside "
             "it when it is a folder).")] = None,
    budget: Annotated[int | None, typer.Option(
        help="Budget of the per-class table (default: the largest all strategies reached).")] = None,
    runs: Annotated[list[Path] | None, typer.Option(
        help="Grid folder (repeatable, e.g. one per region kind): each strategy's regions are "
             "drawn on images (first seed's runs) and its agent-* runs give the agent's "
             "learning curve (default: RESULTS itself when it is a grid folder or a run).")] = None,
    no_regions: Annotated[bool, typer.Option(
        "--no-regions",
        help="Do not draw the acquired regions on pool images (drawing them loads the runs' "
             "dataset).")] = False,
) -> None:
    """Write a Markdown report with figures from a results table, a run or a grid folder."""
    regions = not no_regions
    out = out or default_report_dir(results)
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
