"""Rows of the results table from run directories, and what ``ralis report`` is given.

Every AL run directory (``ralis simulate``) and upper-bound directory (``ralis upper-bound``)
holds a ``results.json``; :func:`rows_from_run` turns it into rows, :func:`rows_from_theta0` turns
a θ0 pretrain directory into one row (strategy ``theta0``, 0 regions), :func:`collect` gathers
many runs, and :func:`load_results` reads whatever ``ralis report`` is given (a table, a run, a
grid folder). :func:`find_run_dirs` finds the run directories of a grid's series (to draw their
acquired regions).

Units: ``miou``, ``val_miou``, ``iou_<class>`` and ``share_<class>`` are fractions in [0, 1]
exactly as the run wrote them (the report multiplies by 100); ``class_entropy`` is in nats;
``wall_time`` is the whole run's wall-clock seconds (pretraining excluded, as in results.json),
repeated on every budget row of that run. Budgets of every region kind are nominal region counts,
and ``pixel_fraction`` (labelled pixels / pool pixels) is what compares kinds at equal cost.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ralis.errors import RalisError
from ralis.report.series import RECT, SPECIAL, THETA0, region_kind, region_kinds, series_name
from ralis.report.table import read_csv


def _display_path(path: Path, base: Path | None) -> str:
    """``path`` relative to ``base`` (default: the working directory) when possible."""
    path = Path(path)
    base = Path(base) if base is not None else Path.cwd()
    try:
        return os.path.relpath(path.resolve(), base.resolve())
    except ValueError:  # another drive on Windows
        return str(path.resolve())


def _read_json(path: Path, missing: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RalisError(missing) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise RalisError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise RalisError(f"{path} is not a JSON object")
    return data


def rows_from_run(run_dir: Path, base: Path | None = None) -> list[dict[str, Any]]:
    """One row per budget of ``run_dir/results.json`` (an AL run or an upper bound).

    ``run_dir`` may also be the results ``.json`` file itself (its folder is then the run
    directory). ``region_kind`` is the results' ``region_kind`` (rect in files written before
    region kinds). ``config`` and ``run_dir`` are given relative to ``base`` (default: the working
    directory). ``wall_time`` is the run's total ``wall_time`` on every row (not the budget's own
    ``wall``). An upper bound has no class distribution: its ``share_*`` and ``class_entropy``
    are None. ``dataset_name`` is the results' display name, or ``dataset`` in older files.
    """
    run_dir = Path(run_dir)
    if run_dir.suffix == ".json" and not run_dir.is_dir():
        path, run_dir = run_dir, run_dir.parent
    else:
        path = run_dir / "results.json"
    res = _read_json(path, f"{run_dir} has no results.json; is it a finished run directory?"
                     if path.name == "results.json" else f"{path} does not exist")
    if not isinstance(res.get("budgets"), list) or "strategy" not in res:
        raise RalisError(f"{path} is not a ralis results.json (no strategy or budgets)")
    classes = list(res.get("classes") or [])
    kind = res.get("region_kind") or (res.get("regions") or {}).get("kind") or RECT
    rows = []
    for budget in res.get("budgets", []):
        iou = budget.get("iou") or {}
        share = budget.get("class_distribution") or {}
        row: dict[str, Any] = {
            "strategy": res.get("strategy"), "seed": res.get("seed"), "region_kind": kind,
            "regions": budget.get("regions"), "pixel_fraction": budget.get("pixel_fraction"),
            "miou": budget.get("miou"), "val_miou": budget.get("val_miou"),
            "miou_last": budget.get("miou_last"), "class_entropy": budget.get("class_entropy"),
            "regressed": None if "regressed" not in budget else int(bool(budget["regressed"])),
            "wall_time": res.get("wall_time"), "preset": res.get("preset"),
            "git_revision": res.get("git_revision"), "dataset": res.get("dataset"),
            "dataset_name": res.get("dataset_name") or res.get("dataset"),
            "config": _display_path(run_dir / "config.json", base),
            "run_dir": _display_path(run_dir, base),
        }
        names = classes or list(iou)
        row.update({f"iou_{c}": iou.get(c) for c in names})
        row.update({f"share_{c}": share.get(c) for c in names})
        rows.append(row)
    return rows


def rows_from_theta0(pretrain_dir: Path, base: Path | None = None) -> list[dict[str, Any]]:
    """The one row of a θ0 pretrain directory (``ralis pretrain``: config.json + metrics.json).

    Strategy ``theta0`` at 0 regions and pixel fraction 0; ``miou`` is θ0's test mIoU,
    ``val_miou`` its D_R mIoU, ``iou_<class>`` its per-class test IoU, ``seed`` / ``preset`` /
    ``dataset`` come from config.json and ``git_revision`` from metrics.json, or else
    command.json; ``region_kind`` is the config's ``data.regions`` (θ0 is trained on whole
    images, so it is shared by every kind). ``wall_time`` is the pretraining's wall-clock seconds; there is no class
    distribution of acquired regions, so ``share_*`` and ``class_entropy`` are None.
    """
    pretrain_dir = Path(pretrain_dir)
    metrics = _read_json(pretrain_dir / "metrics.json",
                         f"{pretrain_dir} has no metrics.json; is it a finished `ralis pretrain` "
                         "directory?")
    cfg = _read_json(pretrain_dir / "config.json",
                     f"{pretrain_dir} has no config.json; is it a `ralis pretrain` directory?")
    command_path = pretrain_dir / "command.json"
    command = _read_json(command_path, "") if command_path.exists() else {}
    if "test_miou" not in metrics:
        raise RalisError(f"{pretrain_dir / 'metrics.json'} has no test_miou; is it θ0's metrics?")
    data = cfg.get("data") or {}
    iou = metrics.get("iou") or {}
    row: dict[str, Any] = {
        "strategy": THETA0, "seed": cfg.get("seed"), "regions": 0, "pixel_fraction": 0.0,
        "region_kind": data.get("regions") or RECT, "miou": metrics.get("test_miou"),
        "val_miou": metrics.get("val_miou"), "miou_last": metrics.get("test_miou_last"),
        "regressed": None, "class_entropy": None, "wall_time": metrics.get("wall"),
        "preset": cfg.get("preset"), "dataset": data.get("dataset"),
        "dataset_name": metrics.get("dataset_name") or data.get("dataset"),
        "git_revision": metrics.get("git_revision") or command.get("git_revision"),
        "config": _display_path(pretrain_dir / "config.json", base),
        "run_dir": _display_path(pretrain_dir, base),
    }
    row.update({f"iou_{c}": v for c, v in iou.items()})
    row.update({f"share_{c}": None for c in iou})
    return [row]


def collect(
    run_dirs: Iterable[Path], base: Path | None = None, theta0_dir: Path | None = None
) -> list[dict[str, Any]]:
    """Rows of every run in ``run_dirs`` (see :func:`rows_from_run`), in the order given.

    With ``theta0_dir`` (a θ0 pretrain directory), its row (:func:`rows_from_theta0`) comes
    first. θ0's metrics carry no display name, so when every run names the same dataset, the θ0
    row takes the runs' ``dataset_name``.
    """
    rows: list[dict[str, Any]] = []
    for run_dir in run_dirs:
        rows.extend(rows_from_run(Path(run_dir), base))
    if theta0_dir is not None:
        start = rows_from_theta0(Path(theta0_dir), base)
        pairs = {(r.get("dataset"), r.get("dataset_name")) for r in rows}
        if len(pairs) == 1:
            dataset, name = next(iter(pairs))
            if (name and dataset == start[0]["dataset"]
                    and start[0]["dataset_name"] == start[0]["dataset"]):
                start[0]["dataset_name"] = name
        rows = start + rows
    return rows


# --------------------------------------------------------------------------- report input
@dataclass(frozen=True)
class Results:
    """What ``ralis report PATH`` read: rows and where they came from.

    ``kind`` is ``"table"`` (a results CSV), ``"run"`` (one run directory or its results.json)
    or ``"grid"`` (a folder holding results.csv). ``source`` is the file the rows were read
    from; ``folder`` the run directory (``run``) or the grid folder (``grid``).
    """

    rows: list[dict[str, Any]]
    kind: str
    source: Path
    folder: Path | None = None


def load_results(path: Path) -> Results:
    """Rows from a results CSV, a run directory, a results.json file or a grid folder."""
    path = Path(path)
    if path.is_dir():
        if (path / "results.json").is_file():
            return Results(rows_from_run(path, base=path.parent), "run", path / "results.json",
                           path)
        if (path / "results.csv").is_file():
            return Results(read_csv(path / "results.csv"), "grid", path / "results.csv", path)
        raise RalisError(f"{path} holds neither results.json (a run) nor results.csv (a grid); "
                         "pass a results table, a finished run directory or a grid folder")
    if not path.exists():
        raise RalisError(f"{path} not found; pass a results.csv, a run directory or its "
                         "results.json")
    if path.suffix.lower() == ".json":
        return Results(rows_from_run(path, base=path.parent.parent), "run", path, path.parent)
    return Results(read_csv(path), "table", path)


def run_region_kind(run_dir: Path) -> str:
    """A run directory's region kind: its results.json's ``region_kind``, else its
    config.json's ``data.regions``, else rect (runs written before region kinds)."""
    for name in ("results.json", "config.json"):
        try:
            data = json.loads((Path(run_dir) / name).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        if name == "results.json":
            regions = data.get("regions")
            kind = data.get("region_kind") or (
                regions.get("kind") if isinstance(regions, dict) else None)
        else:
            kind = (data.get("data") or {}).get("regions")
        if kind:
            return str(kind)
    return RECT


def find_run_dirs(rows: Iterable[dict[str, Any]], folder: Path | Sequence[Path]
                  ) -> dict[str, Path]:
    """Series -> its first seed's run directory in the grid folder ``folder``.

    The run is ``folder/<run_dir>`` (the row's ``run_dir``, relative to the grid folder in a
    grid's results.csv), else ``folder/<strategy>-s<seed>`` (the grid layout). ``folder`` may
    be several grid folders (one per region kind, say): the first that holds the run counts.
    Keys are the series of :func:`series_rows` (plain strategy names for a table of one region
    kind); with several kinds, a directory only counts for the series of its own kind
    (:func:`run_region_kind`). Only directories holding ``acquired_regions.csv`` count;
    ``theta0`` and ``full`` never do.
    """
    rows = list(rows)
    folders = [Path(folder)] if isinstance(folder, str | os.PathLike) else [
        Path(f) for f in folder]
    mixed = len(region_kinds(rows)) > 1
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if r["strategy"] not in SPECIAL:
            first.setdefault((r["strategy"], region_kind(r)), r)
    found: dict[str, Path] = {}
    for (strategy, kind), row in first.items():
        names = [f"{strategy}-s{row['seed']}"]
        if row.get("run_dir") and not Path(row["run_dir"]).is_absolute():
            names.insert(0, row["run_dir"])
        candidates = [f / n for f in folders for n in dict.fromkeys(names)]
        for d in candidates:
            if (d / "acquired_regions.csv").is_file() and (
                    not mixed or run_region_kind(d) == kind):
                found[series_name(strategy, kind) if mixed else strategy] = d
                break
    return found
