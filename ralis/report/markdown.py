"""The Markdown report: paper-style tables and figures from a results CSV or a single run.

``write_report(results, out_dir)`` writes ``out_dir/report.md`` plus its PNG figures (linked
relatively); ``results`` is a results.csv, a run directory, its results.json, or a grid folder
(see :func:`ralis.report.runs.load_results`). All numbers come from
:mod:`ralis.report.numbers` and :mod:`ralis.report.stats`; each section is its own module
(:mod:`~ralis.report.header`, :mod:`~ralis.report.curves`, :mod:`~ralis.report.paired`,
:mod:`~ralis.report.classes`, :mod:`~ralis.report.needed`, :mod:`~ralis.report.agent_section`,
:mod:`~ralis.report.verdict`); the verdict paragraph states the seed count and never claims
significance. Differences between strategies are paired by seed, with percentile bootstrap
intervals and win / tie / loss verdicts read off the intervals (:mod:`ralis.report.stats`); the
labels-needed table carries bootstrap intervals over seeds. Sections that compare strategies or
seeds say so in a sentence when the input has only one; ``theta0`` (the start model) and ``full``
(the upper bound) are references, shown in italics and never ranked.

Region kinds: a table holding more than one (``rect`` rectangles, ``slic`` superpixels) is
reported by series, strategy and kind (:func:`ralis.report.series.series_rows`: ``entropy · slic``;
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

from ralis.errors import RalisError
from ralis.report import regions_figure
from ralis.report.agent_section import agent_section
from ralis.report.agents import find_agent_dirs
from ralis.report.classes import distribution_section, per_class_section
from ralis.report.curves import miou_section, reward_set_section
from ralis.report.header import header
from ralis.report.needed import labels_section
from ralis.report.numbers import aggregate, default_levels
from ralis.report.paired import kinds_section, paired_section
from ralis.report.runs import find_run_dirs, load_results
from ralis.report.series import (
    RECT,
    SPECIAL,
    budgets,
    common_budget,
    kind_rows,
    region_kinds,
    series_rows,
    strategies,
)
from ralis.report.verdict import mixed_verdict_section, verdict_section


def _regions_section(run_dirs: dict[str, Path], chosen: int | None, out_dir: Path,
                     load_images: regions_figure.ImageLoader | None, auto: bool) -> list[str]:
    """The acquired-regions figure; found automatically (``auto``), a failure is a sentence."""
    heading = ["## Acquired regions on pool images", ""]
    try:
        regions_figure.regions_on_images(run_dirs, out_dir / "regions_on_images.png", budget=chosen,
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


def write_report(
    results: Path,
    out_dir: Path,
    budget: int | None = None,
    levels: list[float] | None = None,
    run_dirs: dict[str, Path] | None = None,
    *,
    load_images: regions_figure.ImageLoader | None = None,
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
    :func:`regions_figure.regions_on_images`, default the runs' datasets). Without ``run_dirs`` and
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
    lines = header(srows, loaded, given, out_dir, budget, kinds,
                    agent_folders if runs is not None else ())
    lines += miou_section(srows, stats, out_dir, mixed)
    if mixed:
        for kind in kinds:
            mine = kind_rows(rows, kind)
            lines += paired_section(mine, strategies(mine), kind)
        lines += kinds_section(rows)
    else:
        lines += paired_section(rows, names)
    lines += reward_set_section(srows, out_dir, mixed)
    lines += per_class_section(srows, chosen)
    if chosen is not None:
        lines += distribution_section(srows, chosen, out_dir)
    if names and levels:
        if mixed:
            for kind in kinds:
                mine = kind_rows(rows, kind)
                lines += labels_section(mine, aggregate(mine, "miou", 100.0), strategies(mine),
                                         levels, kind)
        else:
            lines += labels_section(rows, stats, names, levels)
    lines += agent_section(find_agent_dirs(agent_folders), out_dir)
    if run_dirs:
        lines += _regions_section(run_dirs, chosen, out_dir, load_images, auto)
    if chosen is not None:
        lines += (mixed_verdict_section(rows, chosen, levels or []) if mixed
                  else verdict_section(rows, stats, chosen, levels or []))
    path = out_dir / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
