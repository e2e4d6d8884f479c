"""The benchmark grid: strategies x seeds x budgets, plus θ0, agents and the upper bound.

Layout of the grid directory::

    theta0/            θ0 pretrained on D_T (shared by every cell, as in the paper)
    agent-s<seed>/     RALIS agents (one per agent seed)
    <strategy>-s<seed>/  one AL run to the largest budget (every budget is a prefix of it)
    full/              the full-supervision upper bound
    results.csv        one row per strategy x seed x budget (rewritten after every cell)

Every cell resumes: finished cells are skipped and interrupted ones continue where they stopped.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

from rich.console import Console

from ralis.config import MACHINE_FIELDS, ALConfig, RunConfig, config_diff, load_config
from ralis.data.protocol import load_protocol
from ralis.errors import ConfigError
from ralis.loop.agent import train_agent
from ralis.loop.pretrain import pretrain, upper_bound
from ralis.loop.rundir import lock_dir, prepare_dir, unlock_dir
from ralis.loop.simulate import simulate

console = Console(stderr=True)

__all__ = ["MACHINE_FIELDS", "FINAL_TRAINING_FIELDS", "check_reuse", "finished", "run_grid"]
FINAL_TRAINING_FIELDS = (  # read only by the final training at each budget
    "train.final_lr", "train.final_from", "train.final_with_start_set",
    "train.final_samples_per_epoch", "train.final_schedule", "train.final_epochs",
    "train.final_patience",
)


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


def run_grid(
    cfg: RunConfig,
    out: Path,
    strategies: list[str],
    seeds: list[int],
    agent_seeds: list[int] | None = None,
    upper: bool = True,
    progress: bool = True,
) -> Path:
    """Run every missing cell of the grid and return the path of ``results.csv``.

    The grid folder is locked for the run (a second ``ralis benchmark`` on it is refused);
    every cell locks its own run directory.
    """
    out = prepare_dir(Path(out))
    if not seeds:
        raise ConfigError("--seeds needs at least one seed")
    lock_dir(out, "benchmark")
    try:
        return _run_grid(cfg, out, strategies, seeds, agent_seeds, upper, progress)
    finally:
        unlock_dir(out)


def _run_grid(cfg: RunConfig, out: Path, strategies: list[str], seeds: list[int],
              agent_seeds: list[int] | None, upper: bool, progress: bool) -> Path:
    from ralis.report import collect, write_csv

    shared = ("seed", "preset", *MACHINE_FIELDS, *FINAL_TRAINING_FIELDS)
    theta0_ignore = (*shared, "al", "agent", "train.lr")
    # the game reads K (al.regions_per_step) and nothing else of `al`
    agent_ignore = (*shared, *(f"al.{f.name}" for f in fields(ALConfig)
                               if f.name != "regions_per_step"))
    check_reuse(out / "theta0", cfg, "pretrain", theta0_ignore)
    for s in agent_seeds or seeds[:1]:
        check_reuse(out / f"agent-s{s}", cfg, "train-agent", agent_ignore)
    for seed in seeds:
        for strategy in strategies:
            agent = () if strategy == "ralis" else ("agent",)  # baselines never read it
            check_reuse(out / f"{strategy}-s{seed}", cfg, f"simulate:{strategy}",
                        ("seed", "preset", *MACHINE_FIELDS, *agent))
    proto = load_protocol(cfg.data, progress)
    theta0 = pretrain(cfg, out / "theta0", resume=True, progress=progress, proto=proto,
                      ignore=theta0_ignore)
    agent_seeds = agent_seeds or seeds[:1]
    policies: dict[int, Path] = {}
    if "ralis" in strategies:
        for s in agent_seeds:
            agent_dir = out / f"agent-s{s}"
            console.print(f"[bold]agent[/bold] seed {s} -> {agent_dir}")
            train_agent(replace(cfg, seed=s), agent_dir, resume=True, progress=progress,
                        proto=proto, ignore=agent_ignore)
            policies[s] = agent_dir / "policy.safetensors"
    run_dirs = []

    def table() -> Path:
        theta0_dir = out / "theta0" if (out / "theta0" / "metrics.json").exists() else None
        return write_csv(collect([d for d in run_dirs if (d / "results.json").exists()],
                                 base=out, theta0_dir=theta0_dir), out / "results.csv")

    for seed in seeds:
        for strategy in strategies:
            run_dir = out / f"{strategy}-s{seed}"
            run_dirs.append(run_dir)
            kwargs = {}
            if strategy == "ralis":
                kwargs["policy"] = policies.get(seed, policies[agent_seeds[0]])
            if not finished(run_dir, cfg.al.budgets):
                console.print(f"[bold]{strategy}[/bold] seed {seed} -> {run_dir}")
            # a finished cell is opened too: its record is checked and its views rewritten
            agent = () if strategy == "ralis" else ("agent",)
            simulate(replace(cfg, seed=seed), strategy, run_dir, pretrained=theta0, resume=True,
                     progress=progress, strategy_kwargs=kwargs, proto=proto,
                     ignore=("preset", *agent))
            table()
    if upper:
        upper_bound(replace(cfg, seed=seeds[0]), out / "full", resume=True, progress=progress,
                    proto=proto, ignore=(*FINAL_TRAINING_FIELDS, "preset", "al", "agent",
                                         "train.lr"))
        run_dirs.append(out / "full")
    return table()
