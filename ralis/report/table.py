"""The results table: one row per (run, budget), written and read back as CSV.

Every AL run directory (``ralis simulate``) and upper-bound directory (``ralis upper-bound``)
holds a ``results.json``; :func:`rows_from_run` turns it into rows, :func:`rows_from_theta0` turns
a θ0 pretrain directory into one row (strategy ``theta0``, 0 regions), :func:`collect` gathers
many runs, :func:`write_csv` / :func:`read_csv` store them with the stdlib ``csv`` module, and
:func:`load_results` reads whatever ``ralis report`` is given (a table, a run, a grid folder).

Units: ``miou``, ``val_miou``, ``iou_<class>`` and ``share_<class>`` are fractions in [0, 1]
exactly as the run wrote them (the report multiplies by 100); ``class_entropy`` is in nats;
``wall_time`` is the whole run's wall-clock seconds (pretraining excluded, as in results.json),
repeated on every budget row of that run.

Region kinds: every AL row has a ``region_kind`` (``rect``: the paper's rectangle grid,
``slic``: SLIC superpixels), from the run's results.json; tables and runs written before the
column existed are rect (:func:`region_kind`). Budgets of every kind are nominal region counts,
and ``pixel_fraction`` (labelled pixels / pool pixels) is what compares kinds at equal cost. When
a table holds more than one kind, :func:`series_rows` renames the AL rows of the other kinds to
series ``"<strategy> · <kind>"`` (rect rows keep the plain strategy name), so every helper below
keys by series without knowing about kinds.

Two strategy names are special: ``theta0`` (the start model every AL curve begins from) and
``full`` (the upper bound). Neither is an AL strategy: :func:`strategies`, :func:`budgets` and
everything built on them leave both out.

The small pure-number helpers the report is built on (:func:`aggregate`, :func:`mean_curve`,
:func:`regions_needed`, :func:`savings`, :func:`gap_closed`, ...) live here too, so they can be
tested on known answers without any figure or file.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ralis.errors import RalisError

COLUMNS: list[str] = [
    "strategy", "seed", "regions", "pixel_fraction", "region_kind", "miou", "val_miou",
    "miou_last", "regressed", "class_entropy", "wall_time", "preset", "dataset", "dataset_name", "git_revision", "config",
    "run_dir",
]
"""Base column order; ``iou_<class>`` then ``share_<class>`` columns follow, one per class."""

INT_COLUMNS = frozenset({"seed", "regions", "regressed"})
STR_COLUMNS = frozenset({
    "strategy", "region_kind", "preset", "dataset", "dataset_name", "git_revision", "config",
    "run_dir",
})
BASELINES: tuple[str, ...] = ("random", "entropy", "bald")
"""The strategies RALIS is compared against in the paper."""
FULL = "full"
"""Strategy name of the upper-bound (full supervision) rows."""
THETA0 = "theta0"
"""Strategy name of the start-model row (θ0, 0 regions): the common start of every AL curve."""
SPECIAL = frozenset({FULL, THETA0})
"""Strategy names that are not AL strategies."""
RECT = "rect"
"""The default region kind (the paper's rectangles): rows without ``region_kind`` are rect."""
SERIES_SEP = " · "
"""Between strategy and region kind in a series name (``entropy · slic``)."""


# ------------------------------------------------------------------------------- rows / CSV
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


def class_names(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Class names in first-seen order, from the ``iou_*`` and ``share_*`` keys."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            for prefix in ("iou_", "share_"):
                if key.startswith(prefix):
                    seen.setdefault(key[len(prefix):], None)
    return list(seen)


def columns_for(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The CSV header: :data:`COLUMNS`, then ``iou_<class>``, then ``share_<class>``."""
    names = class_names(rows)
    base = set(COLUMNS)
    extra = [k for row in rows for k in row if k not in base and not k.startswith(("iou_", "share_"))]
    return (COLUMNS + list(dict.fromkeys(extra)) + [f"iou_{c}" for c in names]
            + [f"share_{c}" for c in names])


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write ``rows`` (missing values and None as empty cells); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = columns_for(rows)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return path


def _typed(column: str, text: str) -> Any:
    if text == "":
        return None
    if column in STR_COLUMNS:
        return text
    if column in INT_COLUMNS:
        return int(float(text))
    try:
        return float(text)
    except ValueError:
        return text


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Read a CSV written by :func:`write_csv`: ints for seed/regions, floats, empty -> None."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = {"strategy", "seed", "regions", "miou"} - set(reader.fieldnames or [])
            if missing:
                raise RalisError(f"{path} is not a ralis results table (no column "
                                 f"{', '.join(sorted(missing))}); pass the results.csv of "
                                 "`ralis benchmark`")
            return [{k: _typed(k, v) for k, v in row.items()} for row in reader]
    except FileNotFoundError:
        raise RalisError(f"results table {path} does not exist") from None
    except ValueError as exc:
        raise RalisError(f"{path}: malformed value ({exc})") from None


# ------------------------------------------------------------------------ number helpers
@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (None below two values) and count."""

    mean: float
    std: float | None
    n: int


def mean_std(values: Iterable[float | None]) -> Stat | None:
    """Mean and sample std (ddof=1) of the non-None, non-NaN values; None if there are none."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return None
    mean = sum(vals) / len(vals)
    std = (math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
           if len(vals) > 1 else None)
    return Stat(mean, std, len(vals))


def aggregate(
    rows: Iterable[dict[str, Any]], key: str = "miou", scale: float = 1.0
) -> dict[tuple[str, int], Stat]:
    """``{(strategy, regions): Stat}`` of ``row[key] * scale`` over seeds (and runs)."""
    groups: dict[tuple[str, int], list[float | None]] = {}
    for row in rows:
        value = row.get(key)
        groups.setdefault((row["strategy"], row["regions"]), []).append(
            None if value is None else value * scale
        )
    out = {}
    for k, vals in groups.items():
        stat = mean_std(vals)
        if stat is not None:
            out[k] = stat
    return out


def split_series(name: str) -> tuple[str, str | None]:
    """``"entropy · slic"`` -> ``("entropy", "slic")``; a plain name -> ``(name, None)``."""
    if SERIES_SEP in name:
        base, kind = name.rsplit(SERIES_SEP, 1)
        return base, kind
    return name, None


def order_strategies(names: Iterable[str]) -> list[str]:
    """``theta0`` first, baselines in paper order, then the rest alphabetically, ``full`` last.

    Series of several region kinds (:func:`series_rows`): the plain names (rect) first, then
    each other kind's series (``entropy · slic``, ...) in the same order, kind by kind.
    """
    known = (*BASELINES, "ralis")

    def key(name: str) -> tuple:
        if name in SPECIAL:
            return (0 if name == THETA0 else 2,)
        base, kind = split_series(name)
        rank = known.index(base) if base in known else len(known)
        return (1, kind is not None, kind or "", rank, base)

    return sorted(set(names), key=key)


def strategies(rows: Iterable[dict[str, Any]], include_full: bool = False) -> list[str]:
    """The AL strategies of ``rows`` in report order (never ``theta0``; ``full`` only if asked)."""
    names = [s for s in order_strategies({r["strategy"] for r in rows}) if s != THETA0]
    return names if include_full else [s for s in names if s != FULL]


def budgets(rows: Iterable[dict[str, Any]], strategy: str | None = None) -> list[int]:
    """Sorted region budgets of the AL rows (of one strategy if given)."""
    return sorted({
        r["regions"] for r in rows
        if r["strategy"] not in SPECIAL and (strategy is None or r["strategy"] == strategy)
    })


def common_budget(rows: Sequence[dict[str, Any]]) -> int | None:
    """The largest budget every AL strategy reached (the largest of any, if none is shared)."""
    per = [set(budgets(rows, s)) for s in strategies(rows)]
    if not per:
        return None
    shared = set.intersection(*per)
    return max(shared) if shared else max(set.union(*per))


def mean_curve(stats: dict[tuple[str, int], Stat], strategy: str) -> list[tuple[int, float]]:
    """``[(regions, mean)]`` of one strategy, sorted by regions."""
    return sorted((b, s.mean) for (name, b), s in stats.items() if name == strategy)


def regions_needed(curve: Sequence[tuple[float, float]], level: float) -> float | None:
    """Regions at which a mean curve first reaches ``level``, interpolating linearly.

    ``curve`` is ``[(regions, value)]`` sorted by regions. A curve already at or above the
    level at its first budget returns that budget (the true need may be lower: the report
    writes it as "<= budget"); a curve that never reaches it returns None.
    """
    if not curve:
        return None
    x0, y0 = curve[0]
    if y0 >= level:
        return float(x0)
    for x1, y1 in curve[1:]:
        if y1 >= level:
            return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))
        x0, y0 = x1, y1
    return None


def best_baseline(
    needed: dict[str, float | None], baselines: Sequence[str] = BASELINES
) -> tuple[str, float] | None:
    """The baseline needing the fewest regions (ties: paper order), or None if none reached."""
    reached = [(needed[b], i, b) for i, b in enumerate(baselines) if needed.get(b) is not None]
    if not reached:
        return None
    value, _, name = min(reached)
    return name, value


def savings(
    needed: dict[str, float | None], baselines: Sequence[str] = BASELINES
) -> dict[str, float | None]:
    """Per strategy: % fewer regions than the best baseline (positive = fewer labels).

    None where the strategy never reaches the level or no baseline does.
    """
    best = best_baseline(needed, baselines)
    out: dict[str, float | None] = {}
    for name, value in needed.items():
        if value is None or best is None or best[1] <= 0:
            out[name] = None
        else:
            out[name] = 100.0 * (best[1] - value) / best[1]
    return out


def default_levels(
    values: Iterable[float], count: int = 4, step: float = 0.5
) -> list[float]:
    """``count`` evenly spaced levels strictly between min and max, rounded to ``step``."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return []
    lo, hi = min(vals), max(vals)
    if hi <= lo:
        return [round(lo / step) * step]
    levels = [lo + (hi - lo) * (i + 1) / (count + 1) for i in range(count)]
    return sorted(dict.fromkeys(round(v / step) * step for v in levels))


def pooled_std(a: Stat, b: Stat) -> float | None:
    """sqrt((s_a^2 + s_b^2) / 2), or None when either std is unknown (one seed)."""
    if a.std is None or b.std is None:
        return None
    return math.sqrt((a.std ** 2 + b.std ** 2) / 2)


def bold_best(values: dict[str, float | None], decimals: int = 1) -> dict[str, str]:
    """Format numbers to ``decimals``, the largest (ties at that precision too) in **bold**."""
    shown = {k: (None if v is None else round(v, decimals)) for k, v in values.items()}
    present = [v for v in shown.values() if v is not None]
    top = max(present) if present else None
    out = {}
    for k, v in shown.items():
        if v is None:
            out[k] = "–"
        else:
            text = f"{v:.{decimals}f}"
            out[k] = f"**{text}**" if v == top and len(present) > 1 else text
    return out


def pixel_fractions(rows: Iterable[dict[str, Any]]) -> dict[int, float]:
    """``{regions: mean pixel_fraction}`` over the AL rows."""
    groups: dict[int, list[float]] = {}
    for r in rows:
        if r["strategy"] not in SPECIAL and r.get("pixel_fraction") is not None:
            groups.setdefault(r["regions"], []).append(r["pixel_fraction"])
    return {b: sum(v) / len(v) for b, v in groups.items()}


def region_kind(row: dict[str, Any]) -> str:
    """The row's region kind; rect when the table has no ``region_kind`` (older tables)."""
    return row.get("region_kind") or RECT


def region_kinds(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Region kinds of the AL rows (``theta0`` and ``full`` are shared): rect first, then
    the others alphabetically."""
    kinds = {region_kind(r) for r in rows if r["strategy"] not in SPECIAL}
    return sorted(kinds, key=lambda k: (k != RECT, k))


def series_name(strategy: str, kind: str) -> str:
    """``strategy`` for rect (and the special rows), ``"<strategy> · <kind>"`` otherwise."""
    return strategy if kind == RECT or strategy in SPECIAL else f"{strategy}{SERIES_SEP}{kind}"


def series_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows keyed by series: with more than one region kind among the AL rows, each AL
    row of a kind other than rect is a copy whose ``strategy`` is :func:`series_name`; with
    one kind (the usual table) the rows as they are. ``theta0`` and ``full`` stay shared."""
    if len(region_kinds(rows)) <= 1:
        return list(rows)
    return [r if r["strategy"] in SPECIAL or region_kind(r) == RECT
            else {**r, "strategy": series_name(r["strategy"], region_kind(r))} for r in rows]


def kind_rows(rows: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The AL rows of one region kind plus the shared ``theta0`` and ``full`` rows."""
    return [r for r in rows if r["strategy"] in SPECIAL or region_kind(r) == kind]


def kind_fractions(rows: Sequence[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """``{kind: {regions: mean pixel_fraction}}``: what a nominal budget costs in each kind."""
    return {k: pixel_fractions(kind_rows(rows, k)) for k in region_kinds(rows)}


def reference(stats: dict[tuple[str, int], Stat], name: str) -> Stat | None:
    """The stat of a special row (``theta0`` or ``full``): its first budget, or None."""
    found = sorted((b, st) for (s, b), st in stats.items() if s == name)
    return found[0][1] if found else None


def gap_closed(miou: float | None, theta0: float | None, full: float | None) -> float | None:
    """% of the gap between θ0 and full supervision that ``miou`` closes.

    ``100 * (miou - theta0) / (full - theta0)``: 0 = no better than θ0, 100 = as good as full
    supervision (negative below θ0, above 100 beyond full). None when a value is missing or full
    supervision is not above θ0 (there is no gap to close).
    """
    if miou is None or theta0 is None or full is None or full <= theta0:
        return None
    return 100.0 * (miou - theta0) / (full - theta0)


def gaps_closed(stats: dict[tuple[str, int], Stat]) -> dict[str, tuple[int, float | None]]:
    """Per AL strategy: ``(largest budget, % of the θ0 -> full gap closed there)`` on mean mIoU.

    Empty when ``stats`` has no ``theta0`` or no ``full`` entry.
    """
    start, full = reference(stats, THETA0), reference(stats, FULL)
    if start is None or full is None:
        return {}
    out = {}
    for name in order_strategies({s for s, _ in stats} - SPECIAL):
        last = max(b for s, b in stats if s == name)
        out[name] = (last, gap_closed(stats[(name, last)].mean, start.mean, full.mean))
    return out


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
