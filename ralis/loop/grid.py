"""The benchmark grid: strategies x seeds x budgets, plus θ0, agents and the upper bound.

Layout of the grid directory::

    theta0/            θ0 pretrained on D_T (shared by every cell, as in the paper)
    agent-s<seed>/     RALIS agents (one per agent seed)
    <strategy>-s<seed>/  one AL run to the largest budget (every budget is a prefix of it)
    full/              the full-supervision upper bound
    results.csv        one row per strategy x seed x budget (rewritten after every cell)

Every cell resumes: finished cells are skipped and interrupted ones continue where they stopped.
The cells run one at a time in this process, or side by side in a local process pool or on a Ray
cluster (:mod:`ralis.loop.executors`); the driver holds the grid folder's lock, checks every
cell's settings before any work and rewrites ``results.csv`` after each finished cell.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

from rich.markup import escape

from ralis.config import MACHINE_FIELDS, ALConfig, RunConfig, config_diff, load_config
from ralis.data.protocol import load_protocol
from ralis.errors import ConfigError, RalisError
from ralis.files.folders import lock_dir, unlock_dir
from ralis.loop.cells import Cell, Task
from ralis.loop.executors import Executor, SequentialExecutor
from ralis.loop.schedule import run_cells
from ralis.progress import console_for
from ralis.run.names import MODEL_NAME
from ralis.run.rundir import prepare_dir

console = console_for(stderr=True)

__all__ = ["MACHINE_FIELDS", "FINAL_TRAINING_FIELDS", "GridError", "check_reuse", "finished",
           "grid_cells", "run_grid"]
FINAL_TRAINING_FIELDS = (  # read only by the final training at each budget
    "train.final_lr", "train.final_from", "train.final_with_start_set",
    "train.final_samples_per_epoch", "train.final_schedule", "train.final_epochs",
    "train.final_patience",
)

REGION_FIELDS = ("data.regions", "data.superpixels", "data.slic_compactness")
"""The region kind: θ0 and the upper bound train on whole images, so both kinds share them."""
THETA0_IGNORE = ("seed", "preset", *MACHINE_FIELDS, *FINAL_TRAINING_FIELDS, *REGION_FIELDS,
                 "al", "agent", "train.lr")  # θ0 reads none of these
AGENT_IGNORE = ("seed", "preset", *MACHINE_FIELDS, *FINAL_TRAINING_FIELDS,
                *(f"al.{f.name}" for f in fields(ALConfig)
                  if f.name not in ("regions_per_step", "labelling")))
"""The agent's game reads K (``al.regions_per_step``) and the labelling, nothing else of ``al``."""
UPPER_IGNORE = (*FINAL_TRAINING_FIELDS, *REGION_FIELDS, "preset", "al", "agent", "train.lr")


def check_reuse(run_dir: Path, cfg: RunConfig, command: str, ignore: tuple[str, ...] = ()) -> None:
    """A started directory must hold the same kind of run with the same settings.

    ``ignore`` names fields or whole sections (``"seed"``, ``"al"``, ``"al.budgets"``) that may
    differ. A mismatch is a one-line ConfigError, raised before any work is done.
    """
    try:
        there = json.loads((run_dir / "command.json").read_text()).get("command")
    except (OSError, ValueError, AttributeError):
        there = None  # opening the cell checks its record in run.sqlite anyway
    if there and there != command:
        raise ConfigError(f"{run_dir} holds a `{there}` run, not `{command}`; choose another "
                          "--out")
    try:
        saved = load_config(run_dir / "config.json")
    except ConfigError:
        return  # missing or unreadable view: checked against run.sqlite when the cell opens
    diff = config_diff(saved, cfg, ignore)
    if diff:
        k, there, now = diff[0]
        more = f" and {len(diff) - 1} more" if len(diff) > 1 else ""
        raise ConfigError(
            f"{run_dir} was run with other settings ({k}={there!r} there, "
            f"{now!r} now{more}); delete it or choose another --out"
        )


def finished(run_dir: Path, budgets: tuple[int, ...]) -> bool:
    """True when the run's results.json holds every budget."""
    path = run_dir / "results.json"
    try:
        done = {b["regions"] for b in json.loads(path.read_text()).get("budgets", [])}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return False  # missing or damaged: the cell is opened (and checked) again
    return set(budgets) <= done


def _warnings(run_dir: Path) -> list[str]:
    """The regression warnings of a finished AL run (its results.json)."""
    try:
        return list(json.loads((run_dir / "results.json").read_text()).get("warnings") or [])
    except (OSError, ValueError, AttributeError, TypeError):
        return []


class GridError(RalisError):
    """Some cells of the grid failed; ``failures`` maps each one's name to its one-line error.
    ``results.csv`` holds the cells that finished."""

    def __init__(self, message: str, failures: dict[str, str], csv_path: Path) -> None:
        super().__init__(message)
        self.failures = failures
        self.csv_path = csv_path


def run_grid(
    cfg: RunConfig,
    out: Path,
    strategies: list[str],
    seeds: list[int],
    agent_seeds: list[int] | None = None,
    upper: bool = True,
    progress: bool = True,
    executor: Executor | None = None,
) -> Path:
    """Run every missing cell of the grid and return the path of ``results.csv``.

    The grid folder is locked for the run (a second ``ralis benchmark`` on it is refused);
    every cell locks its own run directory. ``executor`` runs the cells (default: one at a time
    in this process); see :mod:`ralis.loop.executors`. A cell that fails does not stop the
    others: once they finished, :class:`GridError` lists the failures (``results.csv`` then
    holds the cells that finished).
    """
    out = prepare_dir(Path(out))
    if not seeds:
        raise ConfigError("--seeds needs at least one seed")
    lock_dir(out, "benchmark", "grid folder")
    try:
        return _run_grid(cfg, out, strategies, seeds, agent_seeds, upper, progress, executor)
    finally:
        unlock_dir(out)


def grid_cells(cfg: RunConfig, out: Path, strategies: list[str], seeds: list[int],
               agent_seeds: list[int] | None = None, upper: bool = True,
               upper_first: bool = False) -> list[Cell]:
    """The grid's cells in the order they start when ready: θ0, the agents (when ``ralis`` is
    among the strategies), every strategy x seed, the upper bound (right after the agents with
    ``upper_first``, so that a pool starts the longest cell early). Run directories are
    absolute: workers may start elsewhere."""
    out = Path(out).absolute()
    theta0 = Cell("theta0", "pretrain", cfg, out / "theta0", THETA0_IGNORE)
    agent_seeds = agent_seeds or seeds[:1]
    agents = [Cell(f"agent-s{s}", "agent", replace(cfg, seed=s), out / f"agent-s{s}",
                   AGENT_IGNORE) for s in agent_seeds] if "ralis" in strategies else []
    runs = []
    for seed in seeds:
        for strategy in strategies:
            needs, policy, agent = ("theta0",), None, ("agent",)  # baselines never read `agent`
            if strategy == "ralis":
                s = seed if seed in agent_seeds else agent_seeds[0]
                needs, policy, agent = ("theta0", f"agent-s{s}"), (
                    out / f"agent-s{s}" / "policy.safetensors"), ()
            runs.append(Cell(f"{strategy}-s{seed}", "simulate", replace(cfg, seed=seed),
                             out / f"{strategy}-s{seed}", ("preset", *agent), strategy,
                             pretrained=out / "theta0" / MODEL_NAME, policy=policy, needs=needs))
    full = [Cell("full", "upper", replace(cfg, seed=seeds[0]), out / "full", UPPER_IGNORE)
            ] if upper else []
    return [theta0, *agents, *full, *runs] if upper_first else [theta0, *agents, *runs, *full]


def _run_grid(cfg: RunConfig, out: Path, strategies: list[str], seeds: list[int],
              agent_seeds: list[int] | None, upper: bool, progress: bool,
              executor: Executor | None) -> Path:
    from ralis.report import collect, write_csv

    parallel = executor is not None and not isinstance(executor, SequentialExecutor)
    cells = grid_cells(cfg, out, strategies, seeds, agent_seeds, upper, upper_first=parallel)
    # settings are checked before any work, whichever executor will run which cell
    for cell in cells:  # (the bound is checked when its cell opens)
        command = {"pretrain": "pretrain", "agent": "train-agent",
                   "simulate": f"simulate:{cell.strategy}"}.get(cell.kind)
        if command is not None:
            check_reuse(cell.run_dir, cfg, command, ("seed", *MACHINE_FIELDS, *cell.ignore))
    proto = load_protocol(cfg.data, progress)  # bad data fails here, before any cell starts
    if executor is None:
        executor = SequentialExecutor(progress=progress, proto=proto)
    elif isinstance(executor, SequentialExecutor) and executor.proto is None:
        executor.proto = proto
    if parallel:
        console.print(f"{len(cells)} cells on {executor.describe()}")
    order = [c.name for c in cells if c.kind == "simulate"] + (["full"] if upper else [])
    finished_ok: set[str] = set()
    out_abs = Path(out).absolute()

    def table() -> Path:
        theta0_dir = out_abs / "theta0"
        theta0_dir = theta0_dir if (theta0_dir / "metrics.json").exists() else None
        dirs = [out_abs / n for n in order if n in finished_ok]
        return write_csv(collect([d for d in dirs if (d / "results.json").exists()],
                                 base=out_abs, theta0_dir=theta0_dir), out / "results.csv")

    def on_start(cell: Cell) -> None:
        if cell.kind == "simulate" and finished(cell.run_dir, cfg.al.budgets):
            return  # opened too (its record checked, its views rewritten), but nothing to say
        what = {"pretrain": "θ0", "agent": f"agent seed {cell.cfg.seed}",
                "upper": "upper bound", "simulate": f"{cell.strategy} seed {cell.cfg.seed}"}
        console.print(f"[bold]{what[cell.kind]}[/bold] -> {cell.run_dir}")

    def on_done(task: Task) -> None:
        if task.error is not None:
            if task.detail:  # an unexpected error (a bug?): its traceback
                console.print(task.detail.rstrip(), markup=False, highlight=False,
                              soft_wrap=True)
            console.print(f"[red]failed[/red] {task.cell.name}: {escape(task.error)}",
                          highlight=False, soft_wrap=True)
        else:
            finished_ok.add(task.cell.name)
            if parallel:
                console.print(f"done {task.cell.name}", highlight=False)
            for line in _warnings(task.cell.run_dir) if task.cell.kind == "simulate" else []:
                console.print(f"[bold yellow]warning[/bold yellow] {escape(line)}",
                              highlight=False, soft_wrap=True)
        table()

    failures = run_cells(cells, executor, on_start, on_done)
    csv_path = table()
    if failures:
        shown = "; ".join(f"{k}: {v}" for k, v in failures.items())
        raise GridError(f"{len(failures)} of {len(cells)} cells failed ({shown}); {csv_path} "
                        "holds the cells that finished; fix the cause and rerun the same "
                        "command to resume", failures, csv_path)
    return csv_path
