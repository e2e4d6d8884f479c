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


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "pool_sizes":
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_same_config(run_dir: Path, cfg: RunConfig, ignore: tuple[str, ...] = ("seed",)) -> None:
    """Refuse to reuse a cell that was run with other settings (a rerun with new flags)."""
    path = run_dir / "config.json"
    if not path.exists():
        return
    saved = _flat(to_dict(load_config(path)))
    wanted = _flat(to_dict(cfg))
    for key in wanted:
        if key.startswith(ignore) or key == "preset":
            continue
        if saved.get(key) != wanted[key]:
            raise ConfigError(
                f"{run_dir} was run with {key}={saved.get(key)!r}, not {wanted[key]!r}; use "
                "another --out for other settings"
            )


def _finished(run_dir: Path, budgets: tuple[int, ...]) -> bool:
    path = run_dir / "results.json"
    if not path.exists():
        return False
    done = {b["regions"] for b in json.loads(path.read_text())["budgets"]}
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
    check_same_config(out / "theta0", cfg, ("seed", "al.", "agent."))
    for s in agent_seeds or seeds[:1]:
        check_same_config(out / f"agent-s{s}", cfg, ("seed", "al."))
    for seed in seeds:
        for strategy in strategies:
            check_same_config(out / f"{strategy}-s{seed}", cfg)
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
            if _finished(run_dir, cfg.al.budgets):
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
