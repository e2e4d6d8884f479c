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
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from ralis.config import RunConfig, load_config, to_dict
from ralis.data.protocol import load_protocol
from ralis.errors import ConfigError
from ralis.loop.agent import train_agent
from ralis.loop.pretrain import pretrain, upper_bound
from ralis.loop.simulate import simulate

console = Console(stderr=True)


def flatten_config(d: dict, prefix: str = "") -> dict:
    """Nested config dict -> ``{"section.field": value}``."""
    flat: dict = {}
    for key, value in d.items():
        if isinstance(value, dict):
            flat.update(flatten_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


MACHINE_FIELDS = ("threads", "device")  # where a cell runs does not change what it computes
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
    path = run_dir / "config.json"
    if not path.exists():
        return
    meta_path = run_dir / "command.json"
    if meta_path.exists():
        there = json.loads(meta_path.read_text()).get("command")
        if there and there != command:
            raise ConfigError(f"{run_dir} holds a `{there}` run, not `{command}`; choose another "
                              "--out")
    saved = flatten_config(to_dict(load_config(path)))
    wanted = flatten_config(to_dict(cfg))
    diff = sorted(k for k in saved.keys() | wanted.keys()
                  if saved.get(k) != wanted.get(k)
                  and not any(k == p or k.startswith(p + ".") for p in ignore))
    if diff:
        k = diff[0]
        more = f" and {len(diff) - 1} more" if len(diff) > 1 else ""
        raise ConfigError(
            f"{run_dir} was run with other settings ({k}={saved.get(k)!r} there, "
            f"{wanted.get(k)!r} now{more}); delete it or choose another --out"
        )


def finished(run_dir: Path, budgets: tuple[int, ...]) -> bool:
    """True when the run's results.json holds every budget."""
    path = run_dir / "results.json"
    if not path.exists():
        return False
    done = {b["regions"] for b in json.loads(path.read_text()).get("budgets", [])}
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
    """Run every missing cell of the grid and return the path of ``results.csv``."""
    from ralis.report import collect, write_csv

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not seeds:
        raise ConfigError("--seeds needs at least one seed")
    shared = ("seed", "preset", *MACHINE_FIELDS, *FINAL_TRAINING_FIELDS)
    check_reuse(out / "theta0", cfg, "pretrain", (*shared, "al", "agent"))
    for s in agent_seeds or seeds[:1]:
        check_reuse(out / f"agent-s{s}", cfg, "train-agent", (*shared, "al"))
    for seed in seeds:
        for strategy in strategies:
            agent = () if strategy == "ralis" else ("agent",)  # baselines never read it
            check_reuse(out / f"{strategy}-s{seed}", cfg, f"simulate:{strategy}",
                        ("seed", "preset", *MACHINE_FIELDS, *agent))
    proto = load_protocol(cfg.data, progress)
    theta0 = pretrain(cfg, out / "theta0", resume=True, progress=progress, proto=proto)
    agent_seeds = agent_seeds or seeds[:1]
    policies: dict[int, Path] = {}
    if "ralis" in strategies:
        for s in agent_seeds:
            agent_dir = out / f"agent-s{s}"
            console.print(f"[bold]agent[/bold] seed {s} -> {agent_dir}")
            train_agent(replace(cfg, seed=s), agent_dir, resume=True, progress=progress,
                        proto=proto)
            policies[s] = agent_dir / "policy.pt"
    run_dirs = []
    for seed in seeds:
        for strategy in strategies:
            run_dir = out / f"{strategy}-s{seed}"
            run_dirs.append(run_dir)
            if finished(run_dir, cfg.al.budgets):
                continue
            kwargs = {}
            if strategy == "ralis":
                kwargs["policy"] = policies.get(seed, policies[agent_seeds[0]])
            console.print(f"[bold]{strategy}[/bold] seed {seed} -> {run_dir}")
            simulate(replace(cfg, seed=seed), strategy, run_dir, pretrained=theta0, resume=True,
                     progress=progress, strategy_kwargs=kwargs, proto=proto)
            write_csv(collect([d for d in run_dirs if (d / "results.json").exists()],
                              base=out), out / "results.csv")
    if upper:
        upper_bound(replace(cfg, seed=seeds[0]), out / "full", resume=True, progress=progress,
                    proto=proto)
        run_dirs.append(out / "full")
    path = out / "results.csv"
    write_csv(collect([d for d in run_dirs if (d / "results.json").exists()], base=out), path)
    return path
